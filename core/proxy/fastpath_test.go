package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/test/testkit"
)

// rawResponse is one response as it came off the wire.
type rawResponse struct {
	raw  []byte
	resp *http.Response
	body string
}

// exchange writes reqs (raw request heads, pipelined) on a new connection
// to addr and reads one response per method in methods.
func exchange(t *testing.T, addr, reqs string, methods ...string) []rawResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	return readResponses(t, c, methods...)
}

func readResponses(t *testing.T, c net.Conn, methods ...string) []rawResponse {
	t.Helper()
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw))
	var out []rawResponse
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d (%s): %v", len(out)+1, m, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		out = append(out, rawResponse{raw: bytes.Clone(raw.Bytes()), resp: resp, body: string(b)})
	}
	return out
}

func head(method, host, path string, kv ...string) string {
	s := method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\n"
	for i := 0; i < len(kv); i += 2 {
		s += kv[i] + ": " + kv[i+1] + "\r\n"
	}
	return s + "\r\n"
}

// hotObjects gives e an origin with a small object (/a), one whose header
// the gate wants to see (/gate) and one whose body is sent from its file
// (/big), each requested twice so the hot cache holds them.
func hotObjects(t *testing.T, e *env) (*origin, string) {
	small := strings.Repeat("a", 1024)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Etag", `"e"`)
		switch r.URL.Path {
		case "/gate":
			w.Header().Set("X-Gate-Sees", "1")
		case "/big":
			_, _ = io.WriteString(w, strings.Repeat("b", 100<<10))
			return
		}
		_, _ = io.WriteString(w, small)
	})
	for _, path := range []string{"/a", "/gate", "/big"} {
		expect(t, path, e.get(o, path), 200, CacheMiss, "*")
		expect(t, path+" again", e.get(o, path), 200, CacheHit, "*")
	}
	return o, small
}

// TestFastPathAnswersLikeNetHTTP: a hit answered on the connection is, byte
// for byte, what net/http writes for it; hits the fast path must leave to
// net/http (a header the gate wants, a body in a file, which net/http
// sends with sendfile) get the same bytes too.
func TestFastPathAnswersLikeNetHTTP(t *testing.T) {
	e := newEnv(t, nil)
	o, _ := hotObjects(t, e)
	for _, path := range []string{"/a", "/gate", "/big"} {
		for _, m := range []string{http.MethodGet, http.MethodHead} {
			before := e.gate.admits.Load()
			fast := exchange(t, e.srv.Listener.Addr().String(), head(m, o.host(), path), m)[0]
			plain := exchange(t, e.plain.Listener.Addr().String(), head(m, o.host(), path), m)[0]
			if !bytes.Equal(fast.raw, plain.raw) {
				t.Errorf("%s %s: the fast path wrote\n%q\nnet/http\n%q", m, path, trunc(string(fast.raw)), trunc(string(plain.raw)))
			}
			if fast.resp.Header.Get("X-Coral-Cache") != CacheHit {
				t.Errorf("%s %s: X-Coral-Cache %q", m, path, fast.resp.Header.Get("X-Coral-Cache"))
			}
			if took := e.gate.admits.Load() > before; took != (path == "/a") {
				t.Errorf("%s %s: answered on the fast path: %v", m, path, took)
			}
		}
	}
}

// TestFastPathPipelined: on one connection, pipelined hits, ranges,
// conditionals, a HEAD and a miss come back in order, each as the full
// path answers it; after a request with a body the connection is
// net/http's and still answers right.
func TestFastPathPipelined(t *testing.T) {
	e := newEnv(t, nil)
	o, small := hotObjects(t, e)
	h := o.host()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	reqs := head("GET", h, "/a") + head("GET", h, "/a", "Range", "bytes=1-2") + head("HEAD", h, "/a") +
		head("GET", h, "/a", "If-None-Match", `"e"`) + head("GET", h, "/new") + head("GET", h, "/a") + head("GET", h, "/a")
	before := e.gate.admits.Load()
	if _, err := io.WriteString(c, reqs); err != nil {
		t.Fatal(err)
	}
	got := readResponses(t, c, "GET", "GET", "HEAD", "GET", "GET", "GET", "GET")
	want := []struct {
		status int
		cache  string
		body   string
	}{
		{200, CacheHit, small}, {206, CacheHit, "aa"}, {200, CacheHit, ""}, {304, CacheHit, ""},
		{200, CacheMiss, small}, {200, CacheHit, small}, {200, CacheHit, small},
	}
	for i, w := range want {
		r := got[i]
		if r.resp.StatusCode != w.status || r.resp.Header.Get("X-Coral-Cache") != w.cache || r.body != w.body {
			t.Errorf("response %d: %d %s %q, want %d %s %q", i+1, r.resp.StatusCode, r.resp.Header.Get("X-Coral-Cache"),
				trunc(r.body), w.status, w.cache, trunc(w.body))
		}
	}
	if n := e.gate.admits.Load() - before; n != 4 {
		t.Errorf("%d requests answered on the fast path, want 4 (three GET hits and the HEAD)", n)
	}
	// A body: net/http has the connection from here.
	before = e.gate.admits.Load()
	if _, err := io.WriteString(c, "POST /a HTTP/1.1\r\nHost: "+h+"\r\nContent-Length: 3\r\n\r\nxyz"+head("GET", h, "/a")); err != nil {
		t.Fatal(err)
	}
	got = readResponses(t, c, "POST", "GET")
	if got[0].resp.StatusCode != http.StatusMethodNotAllowed || got[1].resp.StatusCode != 200 || got[1].body != small {
		t.Errorf("after a body: %d, then %d %q", got[0].resp.StatusCode, got[1].resp.StatusCode, trunc(got[1].body))
	}
	if e.gate.admits.Load() != before {
		t.Error("the fast path answered on a connection it had handed to net/http")
	}
}

// TestFastPathGate: a hit is answered on the connection only when the gate
// admits it, with its bytes counted; otherwise the node's handlers answer.
func TestFastPathGate(t *testing.T) {
	e := newEnv(t, nil)
	o, small := hotObjects(t, e)
	gate := &testGate{}
	handlers := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handlers", "1")
		e.p.ServeHTTP(w, r)
	})
	srv := fastServer(t, handlers, e.p, gate, FastTimeouts{Idle: time.Minute, Header: 10 * time.Second})
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	hits := e.p.Stats().Hits
	r := exchange(t, addr, head("GET", o.host(), "/a"), "GET")[0]
	if r.resp.Header.Get("X-Handlers") != "" || r.body != small {
		t.Errorf("admitted: handlers %q, %d bytes", r.resp.Header.Get("X-Handlers"), len(r.body))
	}
	// Counted once written, head and body.
	testkit.Eventually(t, 5*time.Second, "the hit's head and body counted", func() bool {
		return gate.sent.Load() > int64(len(small))
	})
	if e.p.Stats().Hits != hits+1 {
		t.Errorf("hits %d, want %d", e.p.Stats().Hits, hits+1)
	}
	gate.refuse.Store(true)
	r = exchange(t, addr, head("GET", o.host(), "/a"), "GET")[0]
	if r.resp.Header.Get("X-Handlers") != "1" || r.body != small || r.resp.Header.Get("X-Coral-Cache") != CacheHit {
		t.Errorf("refused: handlers %q, %q %q", r.resp.Header.Get("X-Handlers"), r.resp.Header.Get("X-Coral-Cache"), trunc(r.body))
	}
}

// pipeListener hands the server in-memory connections, whose reads return
// exactly what one write sent: a test controls how a head arrives.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *pipeListener) Close() error   { close(l.done); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

// pipeServer serves e's proxy through the fast path on in-memory
// connections; dial gives the client's end of a new one.
func pipeServer(t *testing.T, e *env, to FastTimeouts) (dial func() net.Conn) {
	pl := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ln, hook := e.p.FastListener(pl, e.gate, to)
	srv := &http.Server{Handler: e.p, ConnState: hook, ReadHeaderTimeout: to.Header, IdleTimeout: to.Idle}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return func() net.Conn {
		client, server := net.Pipe()
		pl.conns <- server
		_ = client.SetDeadline(time.Now().Add(20 * time.Second))
		t.Cleanup(func() { client.Close() })
		return client
	}
}

// TestFastPathSplitHead: a head arriving in pieces is answered once whole;
// one that never completes, and a connection idle after a hit, are closed
// after the server's timeouts, as net/http closes them.
func TestFastPathSplitHead(t *testing.T) {
	e := newEnv(t, nil)
	o, small := hotObjects(t, e)
	dial := pipeServer(t, e, FastTimeouts{Idle: 300 * time.Millisecond, Header: 300 * time.Millisecond})
	req := head("GET", o.host(), "/a")

	c := dial()
	before := e.gate.admits.Load()
	for _, piece := range []string{req[:9], req[9:30], req[30:]} {
		if _, err := io.WriteString(c, piece); err != nil {
			t.Fatal(err)
		}
	}
	if r := readResponses(t, c, "GET")[0]; r.body != small || e.gate.admits.Load() != before+1 {
		t.Fatalf("split head: %q, answered on the fast path: %v", trunc(r.body), e.gate.admits.Load() > before)
	}
	expectClosed(t, "idle after a hit", c)

	c = dial()
	if _, err := io.WriteString(c, req[:20]); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, "head never completed", c)
}

// expectClosed waits for the server to close c without a response.
func expectClosed(t *testing.T, what string, c net.Conn) {
	t.Helper()
	n, err := c.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("%s: read %d bytes, %v; want the connection closed", what, n, err)
	}
}

// TestFastPathExpires: an entry past its freshness, or whose stored object
// changed, is not answered on the connection.
func TestFastPathExpires(t *testing.T) {
	e := newEnv(t, nil)
	o, _ := hotObjects(t, e)
	addr := e.srv.Listener.Addr().String()
	if err := e.st.Delete(object.KeyOf(o.canon("/a")).String()); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if r := exchange(t, addr, head("GET", o.host(), "/a"), "GET")[0]; r.resp.Header.Get("X-Coral-Cache") != CacheMiss {
		t.Errorf("after the object was deleted: %s", r.resp.Header.Get("X-Coral-Cache"))
	}
	_ = exchange(t, addr, head("GET", o.host(), "/a"), "GET") // hot again
	e.clock.Advance(601 * time.Second)
	if r := exchange(t, addr, head("GET", o.host(), "/a"), "GET")[0]; r.resp.Header.Get("X-Coral-Cache") != CacheRevalidated &&
		r.resp.Header.Get("X-Coral-Cache") != CacheMiss {
		t.Errorf("after it expired: %s", r.resp.Header.Get("X-Coral-Cache"))
	}
}

// TestFastPathHalfClose: a visitor that pipelines a miss and a hit and
// closes its side gets both answers, as from net/http alone.
func TestFastPathHalfClose(t *testing.T) {
	e := newEnv(t, nil)
	o, small := hotObjects(t, e)
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head("GET", o.host(), "/other")+head("GET", o.host(), "/a")); err != nil {
		t.Fatal(err)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got := readResponses(t, c, "GET", "GET")
	if got[0].resp.Header.Get("X-Coral-Cache") != CacheMiss || got[0].body != small ||
		got[1].resp.Header.Get("X-Coral-Cache") != CacheHit || got[1].body != small {
		t.Errorf("got %s %q, %s %q", got[0].resp.Header.Get("X-Coral-Cache"), trunc(got[0].body),
			got[1].resp.Header.Get("X-Coral-Cache"), trunc(got[1].body))
	}
	expectClosed(t, "after the last answer", c)
}

// closeSpy is a server-side connection that reports the first attempt to
// close it (a Close, or the deadline a deferred close sets).
type closeSpy struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *closeSpy) signal()      { c.once.Do(func() { close(c.closed) }) }
func (c *closeSpy) Close() error { c.signal(); return c.Conn.Close() }
func (c *closeSpy) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		c.signal()
	}
	return c.Conn.SetWriteDeadline(t)
}

// TestFastPathShutdownFinishesResponse: a graceful shutdown that comes
// while the fast path writes a body (net/http sees the connection as idle
// and closes it) still lets the visitor read the whole body.
func TestFastPathShutdownFinishesResponse(t *testing.T) {
	e := newEnv(t, nil)
	o, small := hotObjects(t, e)
	pl := &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
	ln, hook := e.p.FastListener(pl, e.gate, FastTimeouts{Idle: time.Minute, Header: 10 * time.Second})
	srv := &http.Server{Handler: e.p, ConnState: hook}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	client, server := net.Pipe() // synchronous: the body's write waits for the visitor's reads
	spy := &closeSpy{Conn: server, closed: make(chan struct{})}
	pl.conns <- spy
	_ = client.SetDeadline(time.Now().Add(30 * time.Second))
	defer client.Close()
	br := bufio.NewReader(client)

	// A range goes through net/http: the connection is idle to it after.
	_, _ = io.WriteString(client, head(http.MethodGet, o.host(), "/a", "Range", "bytes=0-9"))
	first, err := http.ReadResponse(br, nil)
	if err != nil || first.StatusCode != http.StatusPartialContent {
		t.Fatalf("range through net/http: %v %v", first, err)
	}
	_, _ = io.Copy(io.Discard, first.Body)

	// The hit is answered on the fast path; read its head only (the pipe
	// holds the body's write until it is read).
	before := e.gate.admits.Load()
	_, _ = io.WriteString(client, head(http.MethodGet, o.host(), "/a"))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK || e.gate.admits.Load() == before {
		t.Fatalf("hot /a on the fast path: %v %v (admitted %v)", resp, err, e.gate.admits.Load() > before)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	select {
	case <-spy.closed:
	case <-time.After(20 * time.Second):
		t.Fatal("the shutdown never closed the connection")
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != small {
		t.Fatalf("body during shutdown: %d of %d bytes, %v", len(body), len(small), err)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
