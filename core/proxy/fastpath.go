package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path answers hot-cache hits on the connection itself, before
// net/http sees them: a listener wrapper (FastListener) whose connections
// read the visitor's bytes first. While net/http waits for a request on the
// connection (its ConnState is new or idle, so nothing of it is being
// answered), each plain GET or HEAD whose answer is a hot entry with its
// body in memory is answered from a response head prebuilt once a second
// (status line, the entry's header, Age and Date, byte for byte what
// net/http writes for it) and the body, in one writev for all the requests
// the visitor pipelined. Everything else is handed to net/http unchanged:
// a well-formed bodyless GET or HEAD request by request (conditionals,
// Range, misses, hits on bodies in files, which net/http sends with
// sendfile, ...), and anything unusual (a body, another method or
// version, a head over 4 KiB, a bare CR or LF, a request arriving while
// net/http answers and the buffer is full) together with the rest of the
// connection, for good. A head split across reads is waited for, under the
// server's header timeout.
//
// The trade-off: net/http's cost per response (a header map cloned, sorted
// and sanitised, a context, a response object, two buffered writers) is
// most of what a 1 KiB hit costs, and this path skips it; the price is a
// second, small HTTP/1.1 reader facing the internet (fastparse.go, strict
// by design and fuzzed), and the duty to apply the same gate as net/http:
// the node's FastGate (serving state, site budget and caps, byte
// accounting), the same freshness and generation check as serveHot, the
// same counters and traces, the http.Server's idle and header timeouts.
// HTTP/2, TLS, bodies and everything the full path decides go through
// net/http as before. A graceful Shutdown sees a connection the fast path
// is answering on as idle; its close waits for the responses being written
// (fastConn.Close), so a shutting-down node still finishes what it began.

// FastGate is what the fast path asks the node before answering a hit
// (the checks its HTTP handler chain makes before the proxy).
type FastGate interface {
	// Admit says whether a request with this Host may be answered now
	// without the node's handlers, and names the site its bytes count
	// for. It must refuse whenever the handlers would not simply pass
	// the request to the proxy (paused, quota reached, a cap in force).
	Admit(host string) (site string, ok bool)
	// Uplink is the upload budget every byte on a visitor's connection
	// goes through (uplink.go), the fast path's answers as net/http's.
	Uplink
	// Answers says whether responses with this header may be answered
	// without the node's handlers (which may act on a response's
	// fields).
	Answers(h http.Header) bool
}

// FastTimeouts are the http.Server's, applied while the fast path holds a
// connection: Idle between requests, Header for a head to arrive whole.
// Write bounds every write to the visitor, the fast path's and net/http's
// (see writebound.go): default VisitorWriteTimeout.
type FastTimeouts struct{ Idle, Header, Write time.Duration }

// FastListener wraps ln for an http.Server serving p (see above); install
// the returned hook as the server's ConnState and ConnContext as its
// ConnContext. Without a hot cache (or a gate) there is no fast path, but
// the connections still get the write bound, and the gate's upload budget
// (uplink.go).
func (p *Proxy) FastListener(ln net.Listener, gate FastGate, t FastTimeouts) (net.Listener, func(net.Conn, http.ConnState)) {
	t.Write = orDefault(t.Write, VisitorWriteTimeout)
	l := &fastListener{Listener: ln, p: p, gate: gate, t: t, fast: p.hot != nil && gate != nil}
	if gate != nil {
		l.up = gate
	}
	return l, fastConnState
}

// fastConnState tells a connection when net/http waits for a request on
// it, and forgets the last response's site when a request begins (what is
// written before its handler names one, such as an error page, counts for
// no site).
func fastConnState(c net.Conn, s http.ConnState) {
	if fc, ok := c.(*fastConn); ok {
		fc.waiting.Store(s == http.StateNew || s == http.StateIdle)
		if s == http.StateActive {
			fc.respSite.Store(nil)
		}
	}
}

type fastListener struct {
	net.Listener
	p    *Proxy
	gate FastGate
	up   Uplink // nil: no budget
	t    FastTimeouts
	fast bool // false: every request goes to net/http
}

func (l *fastListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	fc := &fastConn{Conn: c, l: l, passthrough: !l.fast}
	fc.ctx, fc.cancel = context.WithCancel(context.Background())
	fc.waiting.Store(l.fast)
	return fc, nil
}

// fastReadSize is a fast connection's read buffer: one head at most.
const fastReadSize = fastHeadMax

// fastBatchMax bounds the buffers of pipelined responses written at once.
const fastBatchMax = 64

// fastConn is a visitor connection under the fast path. Its Read is
// net/http's; only net/http's goroutines call it, one at a time.
type fastConn struct {
	net.Conn
	l *fastListener
	// waiting: net/http waits for a request, nothing is being answered.
	waiting atomic.Bool

	in          []byte // read buffer
	buf         []byte // read, not yet answered or handed over (a window of in)
	handoff     []byte // bytes for net/http
	passthrough bool   // net/http has the connection for good
	eof         bool   // the visitor closed its side after what buf holds
	headStart   time.Time
	out         [][]byte // responses not yet written: heads and bodies, shared, never changed
	host        string   // the last Host answered, to look entries up without allocating
	site        string   // the site of the responses in out (one site per batch)

	// ctx ends when the connection closes: waits for the upload cap end
	// with it. respSite is the site of net/http's response (SetSite).
	ctx      context.Context
	cancel   context.CancelFunc
	respSite atomic.Pointer[string]

	closeMu sync.Mutex
	writing bool // responses are being written: a Close waits for them
	closing bool // a Close came while writing: the writer closes
}

// fastCloseGrace bounds how long a Close waits for responses being written
// (a visitor that stopped reading holds the write).
const fastCloseGrace = 5 * time.Second

// Close closes the connection, except while the fast path writes responses
// on it: net/http sees such a connection as idle, and a graceful Shutdown
// closes idle connections, which would cut the response short. Then the
// writer closes it after the last byte, within fastCloseGrace.
func (c *fastConn) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.writing {
		c.closing = true
		_ = c.Conn.SetWriteDeadline(time.Now().Add(fastCloseGrace))
		return nil
	}
	c.cancel()
	return c.Conn.Close()
}

// write runs w, which writes answered responses, so that a Close meanwhile
// takes effect after it.
func (c *fastConn) write(w func() error) error {
	c.closeMu.Lock()
	c.writing = true
	c.closeMu.Unlock()
	err := w()
	c.closeMu.Lock()
	c.writing = false
	closing := c.closing
	c.closeMu.Unlock()
	if closing {
		c.cancel()
		_ = c.Conn.Close()
		if err == nil {
			err = net.ErrClosed
		}
	}
	return err
}

func (c *fastConn) Read(p []byte) (int, error) {
	for {
		if len(c.handoff) > 0 {
			n := copy(p, c.handoff)
			c.handoff = c.handoff[n:]
			return n, nil
		}
		if c.passthrough {
			n, err := c.Conn.Read(p)
			c.readFailed(err)
			return n, err
		}
		if !c.waiting.Load() {
			return c.readWhileAnswering(p)
		}
		if err := c.serve(); err != nil {
			return 0, err
		}
	}
}

// readWhileAnswering is net/http's read while it answers a request: it
// only watches for the visitor leaving, until it aborts the read with a
// deadline once the response is out. Requests the visitor pipelined
// meanwhile are kept for the fast path; a read error is net/http's, as
// is a full buffer (and the rest of the connection with it).
func (c *fastConn) readWhileAnswering(p []byte) (int, error) {
	for {
		if c.eof && len(c.buf) > 0 {
			return 0, nil // requests to answer after this one
		}
		if len(c.buf) >= fastReadSize {
			c.handOver()
			return c.Read(p)
		}
		if err := c.readMore(); err != nil {
			if errors.Is(err, io.EOF) && len(c.buf) > 0 {
				// The visitor sent its last requests and closed
				// its side: not gone, answer them first.
				c.eof = true
				return 0, nil
			}
			c.readFailed(err)
			return 0, err
		}
	}
}

// readFailed ends the connection's waits for the upload cap when a read
// shows the visitor gone (net/http cancels the request then too): a
// visitor who leaves neither keeps its place in the cap's queue nor uses
// up cap. A read net/http aborts with a deadline is not the visitor's.
func (c *fastConn) readFailed(err error) {
	if err != nil && !timedOut(err) {
		c.cancel()
	}
}

// handOver gives net/http everything from here on.
func (c *fastConn) handOver() {
	c.handoff, c.buf, c.passthrough = c.buf, nil, true
}

// serve answers the hits at the start of the buffer, then hands the next
// request to net/http or reads more.
func (c *fastConn) serve() error {
	served := false
	for {
		req, n, v := parseFastRequest(c.buf)
		if v == fastIncomplete {
			if err := c.flush(); err != nil {
				return err
			}
			return c.fill(served)
		}
		c.headStart = time.Time{}
		switch v {
		case fastPlain:
			ok, err := c.answer(req)
			if err != nil {
				return err
			}
			if ok {
				c.buf = c.buf[n:]
				served = true
				if len(c.out) < fastBatchMax {
					continue
				}
				if err := c.flush(); err != nil {
					return err
				}
				continue
			}
			c.handoff, c.buf = c.buf[:n], c.buf[n:]
		case fastOther:
			c.handoff, c.buf = c.buf[:n], c.buf[n:]
		default:
			c.handOver()
		}
		return c.flush()
	}
}

// fill reads more of the visitor's bytes, under the server's header
// timeout for a head begun and its idle timeout after an answer (net/http
// set its own deadline otherwise).
func (c *fastConn) fill(served bool) error {
	t := c.l.t
	switch {
	case len(c.buf) > 0 && t.Header > 0:
		if c.headStart.IsZero() {
			c.headStart = time.Now()
		}
		_ = c.Conn.SetReadDeadline(c.headStart.Add(t.Header))
	case served && t.Idle > 0:
		_ = c.Conn.SetReadDeadline(time.Now().Add(t.Idle))
	}
	return c.readMore()
}

// readMore appends what the visitor sent next to the buffer.
func (c *fastConn) readMore() error {
	if c.eof {
		return io.EOF
	}
	if c.in == nil {
		c.in = make([]byte, fastReadSize)
	}
	k := copy(c.in, c.buf)
	n, err := c.Conn.Read(c.in[k:])
	c.buf = c.in[:k+n]
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// flush writes the responses so far, all for c.site, and counts their
// bytes: in one writev, or through the upload cap should one have come
// into force since they were admitted.
func (c *fastConn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	err := c.write(func() error {
		if c.capped() {
			for _, b := range c.out {
				if _, err := c.send(c.site, b); err != nil {
					return err
				}
			}
			return nil
		}
		bufs := net.Buffers(c.out)
		var sent int64
		// WriteTo consumes what it wrote: after a timeout with progress
		// the rest goes on under a renewed deadline.
		err := c.bounded(func() (int64, error) {
			n, err := bufs.WriteTo(c.Conn)
			sent += n
			return n, err
		})
		c.sent(c.site, int(sent))
		return err
	})
	clear(c.out) // pins no entry's body
	c.out = c.out[:0]
	return err
}

// answer answers req when it is a hit on a hot entry the fast path may
// answer: its body in memory is queued. false,
// having done nothing, otherwise; an error when the connection broke.
func (c *fastConn) answer(req fastRequest) (bool, error) {
	p := c.l.p
	if string(req.host) != c.host {
		c.host = string(req.host)
	}
	e := p.hot.get(hotKey{c.host, string(req.target)})
	if e == nil || e.file {
		// A body in a file goes through net/http, which sends it with
		// sendfile for a fifth of the CPU the fast path's own send took
		// (75 vs 325 us per 1 MiB hit, test/bench/cachehit): the head
		// the fast path would save is nothing beside the body.
		return false, nil
	}
	now := p.now()
	if !now.Before(e.until) {
		return false, nil
	}
	head := p.fastHead(e, now, c.l.gate)
	if head == nil {
		return false, nil
	}
	site, ok := c.l.gate.Admit(e.key.host)
	if !ok {
		return false, nil
	}
	if gen, ok := p.hs.Generation(e.pkey); !ok || gen != e.gen {
		p.hot.remove(e)
		return false, nil
	}
	if site != c.site {
		// A batch holds one site's responses: its bytes count for it.
		if err := c.flush(); err != nil {
			return false, err
		}
		c.site = site
	}
	p.stats.requests.Add(1)
	p.stats.hits.Add(1)
	c.out = append(c.out, head)
	if !req.head {
		c.out = append(c.out, e.body)
		p.stats.bytes.Add(uint64(len(e.body)))
	}
	p.traceHot(e, now)
	return true, nil
}

// fastHeadOf is an entry's response head for one Age and one Date.
type fastHeadOf struct {
	age, date int64
	b         []byte // nil: the entry is not for the fast path
}

// fastHead is e's response head at now: what net/http writes for the hit
// (writeHot) to the byte, Date included. nil when e is not for the fast
// path: a body net/http would change (no Content-Type: sniffed), a status
// without a body or a text, or a header the gate wants to see.
func (p *Proxy) fastHead(e *hotEntry, now time.Time, gate FastGate) []byte {
	wall := time.Now()
	age, date := int64(e.ageAt(now)/time.Second), wall.Unix()
	if h := e.fast.Load(); h != nil && h.age == age && h.date == date {
		return h.b
	}
	h := &fastHeadOf{age: age, date: date}
	if bodyAllowed(e.status) && http.StatusText(e.status) != "" && e.header.Get("Content-Type") != "" &&
		gate.Answers(e.header) {
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 " + strconv.Itoa(e.status) + " " + http.StatusText(e.status) + "\r\n")
		hdr := e.header.Clone()
		hdr["Age"] = []string{strconv.FormatInt(age, 10)}
		_ = hdr.Write(&b)
		if _, ok := hdr["Date"]; !ok { // net/http adds one only then
			b.WriteString("Date: " + wall.UTC().Format(http.TimeFormat) + "\r\n")
		}
		b.WriteString("\r\n")
		h.b = b.Bytes()
	}
	e.fast.Store(h)
	return h.b
}

// CloseWrite keeps net/http's half-close of a TCP connection.
func (c *fastConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
