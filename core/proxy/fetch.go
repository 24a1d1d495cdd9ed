package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/httpcache"
	"github.com/coralcdn/coral/core/store"
)

// Keys in store.Meta.Extra.
const (
	extraKind = "coral-kind" // "vary" marks a Vary index under the primary key
	extraVary = "coral-vary" // comma-separated field names the response varies on
	kindVary  = "vary"
)

// errStalled: the origin sent nothing for OriginTimeout in the middle of a body.
var errStalled = errors.New("proxy: origin stalled mid-body")

type outcome int

const (
	outStream outcome = iota + 1 // a response is streaming through the spool
	outStored                    // serve the stored object (revalidated, or stale)
	outError                     // no response: show fail
)

// fetch is one download of one object, shared by every visitor (and peer)
// that asks for the object while it runs.
type fetch struct {
	key      string // in-flight map key; "" for a private fetch
	pkey     string // primary key: CacheKey(canon)
	objKey   string // key of the stored object being revalidated or filled
	canon    string
	origin   coralurl.Origin
	reqHdr   http.Header // header of the request that started it
	stale    *store.Meta // stored copy being revalidated; nil on a miss
	noStore  bool
	personal bool // carries credentials: never shared, never from peers

	body  *spool
	ready chan struct{}
	once  sync.Once

	// Set before ready is closed.
	outcome    outcome
	label      string // X-Coral-Cache value
	status     int
	header     http.Header
	length     int64 // body length, -1 unknown
	varyFields []string
	varyVals   string
	shareable  bool // followers may be given this response
	storing    bool // the body is on its way into the store
	fail       originFailure
	reqTime    time.Time
	respTime   time.Time
}

// resolve publishes the outcome (first call wins).
func (f *fetch) resolve(fn func()) {
	f.once.Do(func() {
		fn()
		close(f.ready)
	})
}

func (p *Proxy) newFetch(key, pkey, objKey, canon string, o coralurl.Origin, reqHdr http.Header, stale *store.Meta) *fetch {
	return &fetch{
		key: key, pkey: pkey, objKey: objKey, canon: canon, origin: o,
		reqHdr: reqHdr.Clone(), stale: stale, length: -1,
		body:  newSpool(p.opts.SpoolDir, spoolMemLimit, pipeWindow, p.opts.OriginTimeout),
		ready: make(chan struct{}),
	}
}

// acquire joins the fetch in progress for key or starts one; the returned
// reader is attached at byte 0 for the caller. started reports whether this
// call started the fetch.
func (p *Proxy) acquire(ctx context.Context, f *fetch) (_ *fetch, _ *spoolReader, started bool) {
	p.mu.Lock()
	if cur, ok := p.inflight[f.key]; ok {
		if rd, err := cur.body.NewReader(ctx); err == nil {
			p.mu.Unlock()
			return cur, rd, false
		}
	}
	rd, _ := f.body.NewReader(ctx) // a fresh spool always accepts a reader
	p.inflight[f.key] = f
	p.mu.Unlock()
	p.start(f)
	return f, rd, true
}

// startPrivate starts a fetch nobody else can join.
func (p *Proxy) startPrivate(ctx context.Context, f *fetch) *spoolReader {
	f.key = ""
	rd, _ := f.body.NewReader(ctx)
	p.start(f)
	return rd
}

// startBackground revalidates without a visitor waiting (stale-while-
// revalidate), unless a fetch for the key is already running.
func (p *Proxy) startBackground(f *fetch) {
	p.mu.Lock()
	if _, ok := p.inflight[f.key]; ok {
		p.mu.Unlock()
		return
	}
	p.inflight[f.key] = f
	p.mu.Unlock()
	p.start(f)
}

// forget removes f from the in-flight map so new visitors stop joining it.
func (p *Proxy) forget(f *fetch) {
	if f.key == "" {
		return
	}
	p.mu.Lock()
	if p.inflight[f.key] == f {
		delete(p.inflight, f.key)
	}
	p.mu.Unlock()
}

func (p *Proxy) start(f *fetch) {
	p.closeMu.Lock()
	if p.closed {
		p.closeMu.Unlock()
		f.resolve(func() {
			f.outcome = outError
			f.fail = originFailure{http.StatusServiceUnavailable, "Coral is shutting down", "Try again shortly.", false}
		})
		p.forget(f)
		f.body.Finish(errors.New("proxy: closed"))
		return
	}
	p.wg.Add(1)
	p.closeMu.Unlock()
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithCancel(p.ctx)
		defer cancel()
		p.run(ctx, cancel, f)
		// Every path resolves and finishes; these catch any that did not.
		p.forget(f)
		f.resolve(func() {
			f.outcome = outError
			f.fail = originFailure{http.StatusBadGateway, "Origin error", "The fetch ended without a response.", false}
		})
		f.body.Finish(errors.New("proxy: fetch abandoned"))
	}()
}

func (p *Proxy) run(ctx context.Context, cancel context.CancelFunc, f *fetch) {
	if f.stale == nil && f.objKey == f.pkey && p.peers != nil && !f.personal {
		if p.fromPeers(ctx, cancel, f) {
			return
		}
	}

	err := p.acquireSlot(ctx)
	if err != nil {
		p.failed(f, originFailure{http.StatusServiceUnavailable, "Coral is busy",
			"Too many origin fetches are in progress on this node; try again shortly.", false})
		return
	}
	defer p.sem.Release(1)
	p.stats.inflight.Add(1)
	defer p.stats.inflight.Add(-1)
	if p.peers != nil {
		done := p.peers.Downloading(f.pkey, f.canon)
		defer done()
	}

	for {
		req, err := p.originRequest(ctx, f)
		if err != nil {
			p.failed(f, originFailure{http.StatusBadGateway, "Bad request URL", err.Error(), false})
			return
		}
		f.reqTime = p.now()
		p.stats.originFetches.Add(1)
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			p.stats.originErrors.Add(1)
			fail := classify(err)
			if ctx.Err() != nil {
				fail = originFailure{http.StatusServiceUnavailable, "Coral is shutting down", "Try again shortly.", false}
			} else if fail.negative && p.opts.NegativeTTL > 0 {
				now := p.now()
				p.neg.put(f.origin.String(), fail, now.Add(p.opts.NegativeTTL), now)
			}
			p.log.Info("origin unreachable", "origin", f.origin.String(), "url", f.canon, "err", err)
			p.failed(f, fail)
			return
		}
		f.respTime = p.now()
		httpcache.RemoveHopByHop(resp.Header)

		if f.stale != nil && resp.StatusCode == http.StatusNotModified {
			drainClose(resp.Body)
			if p.merge304(f, resp.Header) {
				// Forget before resolving: a visitor served the result must
				// not find this finished fetch on its next request.
				p.forget(f)
				f.resolve(func() { f.outcome, f.label = outStored, CacheRevalidated })
				f.body.Finish(nil)
				return
			}
			// The 304 is for another version, or the copy vanished:
			// ask again without conditions.
			f.stale = nil
			continue
		}
		if f.stale != nil && httpcache.OriginFailed(resp.StatusCode) &&
			p.policy.StaleOnError(entryOf(*f.stale), p.now()) {
			drainClose(resp.Body)
			p.log.Info("origin failing, serving stale", "url", f.canon, "status", resp.StatusCode)
			p.forget(f)
			f.resolve(func() { f.outcome, f.label = outStored, CacheStale })
			f.body.Finish(nil)
			return
		}
		p.receive(ctx, cancel, f, resp.StatusCode, resp.Header, resp.ContentLength, resp.Body, CacheMiss, nil)
		return
	}
}

// failed resolves f after the origin could not be used: the stale copy if
// one may be served, else an error page.
func (p *Proxy) failed(f *fetch, fail originFailure) {
	p.forget(f)
	f.resolve(func() {
		if f.stale != nil && p.policy.StaleOnError(entryOf(*f.stale), p.now()) {
			f.outcome, f.label = outStored, CacheStale
			return
		}
		f.outcome, f.fail = outError, fail
	})
	f.body.Finish(nil)
}

// originRequest builds the GET sent to the origin for f.
func (p *Proxy) originRequest(ctx context.Context, f *fetch) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.canon, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy: origin request: %w", err)
	}
	req.Header = p.forwardHeader(f.reqHdr)
	// The proxy fetches whole objects and answers the visitor's own
	// conditions and ranges itself.
	for _, h := range []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"} {
		req.Header.Del(h)
	}
	if f.stale != nil {
		cond, _ := httpcache.RevalidationHeaders(f.stale.Header)
		for k, v := range cond {
			req.Header[k] = v
		}
	}
	req.Host = f.origin.Authority()
	return req, nil
}

// forwardHeader is a visitor's request header as sent on to an origin.
func (p *Proxy) forwardHeader(in http.Header) http.Header {
	h := in.Clone()
	if h == nil {
		h = http.Header{}
	}
	httpcache.RemoveHopByHop(h)
	if p.opts.StripCookies {
		h.Del("Cookie")
	}
	h.Add("Via", p.via())
	return h
}

// merge304 applies a 304 to the stored copy; false when it does not match
// the stored version or the copy is gone.
func (p *Proxy) merge304(f *fetch, h http.Header) bool {
	fresh := h.Clone()
	fresh.Del("Set-Cookie") // never store cookies
	err := p.st.UpdateMeta(f.objKey, func(m *store.Meta) error {
		if m.Extra[extraKind] == kindVary || !httpcache.Matches304(m.Header, fresh) {
			return errors.New("proxy: 304 does not match the stored version")
		}
		if m.Header == nil {
			m.Header = http.Header{}
		}
		httpcache.Merge304(m.Header, fresh)
		httpcache.StripQualified(m.Header)
		if fresh.Get("Date") == "" {
			m.Header.Set("Date", f.respTime.UTC().Format(http.TimeFormat))
		}
		if fresh.Get("Age") == "" {
			m.Header.Del("Age") // the old Age was relative to the old Date
		}
		m.RequestTime, m.ResponseTime = f.reqTime, f.respTime
		return nil
	})
	if err != nil {
		p.log.Debug("304 not merged", "url", f.canon, "err", err)
		return false
	}
	return true
}

// receive streams a response (from the origin, or from a peer when
// peerMeta is set) to f's readers and, if it may be stored, into the store;
// the new version replaces the old only if it arrived complete.
func (p *Proxy) receive(ctx context.Context, cancel context.CancelFunc, f *fetch, status int, h http.Header,
	length int64, body io.ReadCloser, label string, peerMeta *store.Meta) {
	defer body.Close()

	hasCookie := false
	if p.opts.StripCookies {
		h.Del("Set-Cookie")
	} else {
		hasCookie = len(h.Values("Set-Cookie")) > 0
	}
	httpcache.StripQualified(h)
	if h.Get("Date") == "" {
		h.Set("Date", f.respTime.UTC().Format(http.TimeFormat))
	}
	h.Del("Content-Length") // set from the real length when serving
	if !bodyAllowed(status) {
		length = 0
	}

	if status == http.StatusGone {
		p.remove(f.pkey)
		if f.objKey != f.pkey {
			p.remove(f.objKey)
		}
	}

	storable, why := httpcache.Storable(http.MethodGet, f.reqHdr, status, h)
	switch {
	case !storable:
	case f.noStore:
		storable, why = false, "request asked for no-store"
	case hasCookie:
		storable, why = false, "response sets a cookie (strip_cookies is off)"
	case length > p.opts.MaxObjectBytes:
		storable, why = false, fmt.Sprintf("Content-Length %d exceeds max_object_bytes", length)
	case status >= 400:
		if lt, _ := p.policy.Lifetime(httpcache.Entry{Status: status, Header: h, RequestTime: f.reqTime, ResponseTime: f.respTime}); lt <= 0 {
			storable, why = false, "error response without freshness"
		}
	}
	cc := httpcache.ResponseDirectives(h)
	fields, _ := httpcache.VaryFields(h)
	storeKey, varyVals := f.pkey, ""
	if len(fields) > 0 {
		varyVals = httpcache.VaryValues(fields, f.reqHdr)
		storeKey = variantKey(f.canon, varyVals)
	}
	if !storable {
		p.log.Debug("not storing", "url", f.canon, "status", status, "reason", why)
		// Nothing to keep: pipe the body to the visitors already attached
		// and let later ones start their own fetch.
		f.body.StopRetaining()
		p.forget(f)
	}
	var sw *store.Writer
	if storable {
		sw = p.st.Create(storeKey, p.opts.MaxObjectBytes)
	}
	publish := func() {
		f.resolve(func() {
			f.outcome, f.label = outStream, label
			f.status, f.header, f.length = status, h, length
			f.varyFields, f.varyVals = fields, varyVals
			f.shareable = !cc.Private && !cc.NoStore && !hasCookie && !f.personal
			f.storing = storable
		})
	}
	// An empty body completes at once: a visitor would have the whole
	// response as soon as it sees the header, so commit before publishing.
	if length != 0 {
		publish()
	}

	var sum hash.Hash
	if peerMeta != nil {
		sum = sha256.New()
	}
	var stalled atomic.Bool
	stall := time.AfterFunc(p.opts.OriginTimeout, func() { stalled.Store(true); cancel() })
	defer stall.Stop()

	buf := make([]byte, copyBufSize)
	var written int64
	var pending []byte // the final byte, published only after the commit
	var rerr error
	for {
		stall.Reset(p.opts.OriginTimeout)
		n, err := body.Read(buf)
		stall.Stop()
		if n > 0 {
			chunk := buf[:n]
			if sum != nil {
				sum.Write(chunk)
			}
			if sw != nil {
				if _, werr := sw.Write(chunk); werr != nil {
					p.log.Info("not storing", "url", f.canon, "reason", werr)
					sw.Abort()
					sw = nil
					f.body.StopRetaining()
					p.forget(f)
				}
			}
			// With a known length, a visitor holds the complete response
			// once the last byte arrives; keep it back until the commit so
			// that its next request finds the stored copy.
			if sw != nil && length > 0 && written+int64(n) == length {
				pending = []byte{chunk[n-1]}
				chunk = chunk[:n-1]
			}
			written += int64(n)
			if werr := f.body.Write(ctx, chunk); werr != nil {
				rerr = werr
				break
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			if stalled.Load() {
				rerr = errStalled
			}
			break
		}
	}
	if rerr == nil && peerMeta != nil {
		rerr = verifyPeerBody(peerMeta, written, sum)
	}
	if rerr != nil {
		if sw != nil {
			sw.Abort()
		}
		if !errors.Is(rerr, errNoReaders) {
			p.stats.originErrors.Add(1)
			p.log.Info("transfer broke off; keeping the old copy", "url", f.canon, "bytes", written, "err", rerr)
		}
		p.forget(f)
		publish()
		f.body.Finish(fmt.Errorf("proxy: transfer of %s broke off: %w", f.canon, rerr))
		return
	}
	if sw != nil {
		meta := store.Meta{
			URL: f.canon, Status: status, Header: h.Clone(),
			RequestTime: f.reqTime, ResponseTime: f.respTime, Size: length,
		}
		if len(fields) > 0 {
			meta.Extra = map[string]string{extraVary: strings.Join(fields, ",")}
		}
		m, err := sw.Commit(meta)
		switch {
		case errors.Is(err, store.ErrIncomplete):
			p.forget(f)
			publish()
			f.body.Finish(fmt.Errorf("proxy: transfer of %s incomplete: %w", f.canon, err))
			return
		case err != nil:
			p.log.Warn("store commit failed", "url", f.canon, "err", err)
		default:
			if len(fields) > 0 {
				p.writeVaryIndex(f.pkey, f.canon, fields)
			}
			if p.peers != nil {
				p.peers.Cached(m)
			}
		}
	}
	p.forget(f)
	publish()
	if len(pending) > 0 {
		if err := f.body.Write(ctx, pending); err != nil {
			f.body.Finish(err)
			return
		}
	}
	f.body.Finish(nil)
}

// writeVaryIndex records under the primary key which request fields select
// among the variants stored under variant keys.
func (p *Proxy) writeVaryIndex(pkey, canon string, fields []string) {
	w := p.st.Create(pkey, 0)
	if _, err := w.Commit(store.Meta{URL: canon, Size: 0,
		Extra: map[string]string{extraKind: kindVary, extraVary: strings.Join(fields, ",")}}); err != nil {
		p.log.Warn("vary index not stored", "url", canon, "err", err)
	}
}

// remove deletes a stored object and tells the peers.
func (p *Proxy) remove(key string) {
	err := p.st.Delete(key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		p.log.Warn("delete failed", "key", key, "err", err)
		return
	}
	if err == nil && p.peers != nil {
		p.peers.Removed(key)
	}
}

// fromPeers tries the cooperative proxies on a miss; true when a peer's
// response was taken (whatever happened to its body afterwards).
func (p *Proxy) fromPeers(ctx context.Context, cancel context.CancelFunc, f *fetch) bool {
	// No deadline here: the transfer may take long; stalls are caught
	// by receive, which cancels ctx.
	meta, body, err := p.peers.Fetch(ctx, f.pkey, f.canon)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Debug("peer fetch failed", "url", f.canon, "err", err)
		}
		return false
	}
	h := meta.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	httpcache.RemoveHopByHop(h)
	e := httpcache.Entry{Status: meta.Status, Header: h, RequestTime: meta.RequestTime, ResponseTime: meta.ResponseTime}
	fields, star := httpcache.VaryFields(h)
	if star || len(fields) > 0 || meta.Status < 200 ||
		p.policy.Decide(f.reqHdr, e, p.now()).Action != httpcache.Serve {
		// Variants and copies this request may not use go to the origin.
		body.Close()
		return false
	}
	f.reqTime, f.respTime = meta.RequestTime, meta.ResponseTime
	p.receive(ctx, cancel, f, meta.Status, h, meta.Size, body, CachePeer, &meta)
	return true
}

// verifyPeerBody checks a peer's body against the length and hash it claimed.
func verifyPeerBody(m *store.Meta, written int64, sum hash.Hash) error {
	if m.Size >= 0 && written != m.Size {
		return fmt.Errorf("peer sent %d bytes, announced %d", written, m.Size)
	}
	if m.SHA256 != ([32]byte{}) {
		var got [32]byte
		copy(got[:], sum.Sum(nil))
		if got != m.SHA256 {
			return errors.New("peer body does not match its SHA-256")
		}
	}
	return nil
}

func entryOf(m store.Meta) httpcache.Entry {
	return httpcache.Entry{Status: m.Status, Header: m.Header, RequestTime: m.RequestTime, ResponseTime: m.ResponseTime}
}

// bodyAllowed reports whether a response with this status has a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// drainClose reads a little of an unwanted body so the connection can be
// reused, then closes it.
func drainClose(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 4<<10)
	_ = b.Close()
}
