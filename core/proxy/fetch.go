package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
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

	trace *Trace // the fetch's path, shared by the visitors it serves
}

// resolve publishes the outcome (first call wins).
func (f *fetch) resolve(fn func()) {
	f.once.Do(func() {
		fn()
		close(f.ready)
	})
}

func (p *Proxy) newFetch(key, pkey, objKey, canon string, o coralurl.Origin, reqHdr http.Header, stale *store.Meta) *fetch {
	f := &fetch{
		key: key, pkey: pkey, objKey: objKey, canon: canon, origin: o,
		reqHdr: reqHdr.Clone(), stale: stale, length: -1,
		body:  newSpool(p.opts.SpoolDir, spoolMemLimit, pipeWindow, p.opts.OriginTimeout),
		ready: make(chan struct{}),
		trace: &Trace{},
	}
	f.body.room = p.admit
	f.body.onDiskTrouble = func(err error) {
		level := slog.LevelWarn
		if errors.Is(err, store.ErrDiskFull) {
			level = slog.LevelDebug // the watermark, not a failure: the store warns once
		}
		p.log.Log(context.Background(), level, "spool cannot use the disk: passing the body through", "url", canon, "err", err)
	}
	return f
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
		ctx, cancel := context.WithCancel(WithTrace(p.ctx, f.trace))
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
	// An origin the node may not fetch is refused before the DSHT hears
	// of it (a lookup with put+get announces a download).
	if err := p.guard.screen(ctx, f.origin, p.opts.OriginTimeout); err != nil {
		f.trace.Step("origin refused: %v", err)
		p.log.Info("origin refused", "origin", f.origin.String(), "err", err)
		p.failed(f, classify(err))
		return
	}
	if f.stale == nil && f.objKey == f.pkey && p.peers != nil && !f.personal {
		if p.fromPeers(ctx, f) {
			return
		}
	}

	release, err := p.acquireSlot(ctx, f.origin)
	if err != nil {
		p.failed(f, busyFailure(err))
		return
	}
	defer release()
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
		f.trace.Source("origin")
		resp, err := p.transport.RoundTrip(req)
		if err != nil {
			p.stats.originErrors.Add(1)
			fail := classify(err)
			if ctx.Err() != nil {
				fail = originFailure{http.StatusServiceUnavailable, "Coral is shutting down", "Try again shortly.", false}
			} else if fail.negative && p.opts.NegativeTTL > 0 {
				now := p.now()
				p.neg.put(f.origin.String(), fail, now.Add(p.opts.NegativeTTL))
			}
			p.log.Info("origin unreachable", "origin", f.origin.String(), "url", f.canon, "err", err)
			f.trace.Step("origin failed: %s", fail.title)
			p.failed(f, fail)
			return
		}
		f.respTime = p.now()
		httpcache.RemoveHopByHop(resp.Header)

		if f.stale != nil && resp.StatusCode == http.StatusNotModified {
			drainClose(resp.Body)
			if p.merge304(f, resp.Header) {
				f.trace.Step("revalidated with origin: 304")
				f.trace.Source("cache (revalidated)")
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
			f.trace.Step("origin failed: %d", resp.StatusCode)
			f.trace.Source("cache (stale)")
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
			f.trace.Source("cache (stale)")
			return
		}
		f.outcome, f.fail = outError, fail
	})
	f.body.Finish(nil)
}

// noteOversize remembers that f's object is larger than MaxObjectBytes, so
// that ranges of it go to the origin for a while instead of a whole
// download each.
func (p *Proxy) noteOversize(f *fetch) {
	now := p.now()
	p.oversize.put(f.pkey, originFailure{}, now.Add(oversizeMemory))
}

// refetchFailed resolves a refetch whose new body broke off before anyone
// saw it: the stale copy when it may be served, else an error page; never
// the broken body. The stale copy is then served without a refetch for
// NegativeTTL, so a crowd does not wait on a failing origin one by one.
func (p *Proxy) refetchFailed(f *fetch, cause error) {
	fail := originFailure{http.StatusBadGateway, "Origin error",
		"The origin's response broke off before it was complete; try again.", false}
	if errors.Is(cause, errStalled) {
		fail = originFailure{http.StatusGatewayTimeout, "Origin timed out",
			"The origin stopped sending its response; try again.", false}
	}
	f.trace.Step("new version broke off: %v", cause)
	p.forget(f)
	now := p.now()
	f.resolve(func() {
		if f.stale != nil && p.policy.StaleOnError(entryOf(*f.stale), now) {
			f.outcome, f.label = outStored, CacheStale
			f.trace.Source("cache (stale)")
			return
		}
		f.outcome, f.fail = outError, fail
	})
	if p.opts.NegativeTTL > 0 {
		p.brokenRefetch.put(f.objKey, fail, now.Add(p.opts.NegativeTTL))
	}
}

// originRequest builds the GET sent to the origin for f.
func (p *Proxy) originRequest(ctx context.Context, f *fetch) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.canon, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy: origin request: %w", err)
	}
	req.Header = p.forwardHeader(f.reqHdr, true)
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
	src := body // the peer's body, or the origin's once resumed
	defer func() { src.Close() }()

	// Decided on the response as the origin sent it, Set-Cookie included.
	storable, why := httpcache.Storable(http.MethodGet, p.sentHeader(f.reqHdr), status, h)
	setsCookie := len(h.Values("Set-Cookie")) > 0
	hasCookie := false // a cookie that goes on to the visitor
	if p.opts.StripCookies {
		h.Del("Set-Cookie")
	} else {
		hasCookie = setsCookie
	}
	personalResp := setsCookie && !httpcache.SharedExplicitly(httpcache.ResponseDirectives(h))
	if httpcache.EncodedWithoutVary(h) {
		h.Add("Vary", "Accept-Encoding")
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

	switch {
	case !storable:
	case !httpcache.EncodingAcceptable(h, f.reqHdr.Get("Accept-Encoding")):
		storable, why = false, "content coding the request did not accept"
	case f.noStore:
		storable, why = false, "request asked for no-store"
	case hasCookie:
		storable, why = false, "response sets a cookie (strip_cookies is off)"
	case length > p.opts.MaxObjectBytes:
		storable, why = false, fmt.Sprintf("Content-Length %d exceeds max_object_bytes", length)
		p.noteOversize(f)
	case p.admit() != nil:
		// The store warns when this starts; spooling it would fill the
		// disk just the same.
		storable, why = false, "disk nearly full"
	case status >= 400:
		if lt, _ := p.policy.Lifetime(httpcache.Entry{Status: status, Header: h, RequestTime: f.reqTime, ResponseTime: f.respTime}); lt <= 0 {
			storable, why = false, "error response without freshness"
		}
	}
	cc := httpcache.CoralDirectives(h)
	fields, varyStar := httpcache.VaryFields(h)
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
			// "Vary: *" matches no other request, so no one joins it.
			f.shareable = !cc.Private && !cc.NoStore && !hasCookie && !personalResp && !f.personal && !varyStar
			f.storing = storable
		})
	}
	// A refetch of a stale copy holds the new body back until it arrived
	// complete (see the package doc), while it is being stored and within
	// refetchHoldBack bytes. An empty body completes at once: a visitor
	// would have the whole response as soon as it sees the header, so
	// commit before publishing.
	holdBack := f.stale != nil && sw != nil && length <= refetchHoldBack
	if length != 0 && !holdBack {
		publish()
	}

	var sum hash.Hash
	if peerMeta != nil {
		sum = sha256.New()
	}
	guard := newTransferGuard(p.opts.OriginTimeout, p.opts.MinOriginRate, length, cancel)
	defer func() { guard.stop() }()

	buf := make([]byte, copyBufSize)
	var written int64
	var pending []byte // the final byte, published only after the commit
	var rerr error
	resumed := false
	for {
		n, err := guard.read(src, buf)
		if n > 0 {
			chunk := buf[:n]
			if sum != nil {
				sum.Write(chunk)
			}
			if sw != nil {
				if _, werr := sw.Write(chunk); werr != nil {
					p.logNotStoring(ctx, f.canon, werr)
					if errors.Is(werr, store.ErrTooLarge) {
						p.noteOversize(f)
					}
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
			if holdBack && (sw == nil || written > refetchHoldBack) {
				holdBack = false // no longer stored, or too long to wait for
				publish()
			}
			if werr := f.body.Write(ctx, chunk); werr != nil {
				rerr = werr
				break
			}
		}
		if err == io.EOF && peerMeta != nil && !resumed && length >= 0 && written < length {
			err = io.ErrUnexpectedEOF // a peer that ended early: worth resuming
		}
		if err == io.EOF {
			break
		}
		if err == nil {
			continue
		}
		if guard.stalled() {
			err = errStalled
		}
		if peerMeta == nil || resumed || !p.mayResume(ctx, f, status, length, written) {
			rerr = err
			break
		}
		// A peer's transfer broke off after the visitors got part of the
		// body. Rather than break their connections, continue the same
		// body from the origin.
		resumed = true
		f.trace.Step("peer transfer broke off after %d bytes", written)
		p.log.Info("peer transfer broke off; resuming from the origin", "url", f.canon, "bytes", written, "err", err)
		next, ncancel, how, rsErr := p.resumeFromOrigin(ctx, f, h, length, written, sum)
		if rsErr != nil {
			f.trace.Step("resume from origin failed: %v", rsErr)
			rerr = fmt.Errorf("%w (resuming from the origin: %w)", err, rsErr)
			break
		}
		p.stats.peerResumes.Add(1)
		f.trace.Step("resumed from origin at byte %d (%s)", written, how)
		if from := f.trace.sourceOf(); from != "" {
			f.trace.Source("%s, then origin from byte %d", from, written)
		} else {
			f.trace.Source("origin from byte %d", written)
		}
		guard.stop()
		src.Close()
		cancel() // the peer transfer is over
		src, cancel = next, ncancel
		defer ncancel() // once at most: resumed is set
		rest := int64(-1)
		if length >= 0 {
			rest = length - written
		}
		guard = newTransferGuard(p.opts.OriginTimeout, p.opts.MinOriginRate, rest, ncancel)
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
			p.log.Info("transfer broke off; "+p.keptCopy(f.objKey), "url", f.canon, "bytes", written, "err", rerr)
		}
		p.forget(f)
		if holdBack {
			p.refetchFailed(f, rerr)
		} else {
			publish()
		}
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
			if holdBack {
				p.refetchFailed(f, err)
			} else {
				publish()
			}
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

// logNotStoring logs why a body that was being stored no longer is: at
// DEBUG for the disk watermark (the store warns once when the disk fills).
func (p *Proxy) logNotStoring(ctx context.Context, url string, err error) {
	level := slog.LevelInfo
	if errors.Is(err, store.ErrDiskFull) {
		level = slog.LevelDebug
	}
	p.log.Log(ctx, level, "not storing", "url", url, "reason", err)
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
//
// A peer is treated like an upstream cache: its header carries the copy's
// current Age, and the request and response times are this node's own, so
// the age (and with it freshness) is right whatever the peers' clocks say.
func (p *Proxy) fromPeers(ctx context.Context, f *fetch) bool {
	// No deadline here: the transfer may take long; stalls are caught by
	// receive, which cancels pctx (and then resumes from the origin).
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	reqTime := p.now()
	usable := func(m store.Meta) error {
		if _, _, _, why := p.judgePeerCopy(f, m, reqTime, p.now()); why != "" {
			return errors.New(why)
		}
		return nil
	}
	meta, body, err := p.peers.Fetch(pctx, f.pkey, f.canon, usable)
	respTime := p.now()
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			p.log.Debug("peer fetch failed", "url", f.canon, "err", err)
		}
		return false
	}
	h, reqTime, respTime, why := p.judgePeerCopy(f, meta, reqTime, respTime)
	if why != "" {
		// Copies this request may not use go to the origin.
		body.Close()
		f.trace.Step("peer copy not used: %s", why)
		return false
	}
	f.reqTime, f.respTime = reqTime, respTime
	if f.trace.sourceOf() == "" {
		f.trace.Source("peer")
	}
	p.receive(ctx, pcancel, f, meta.Status, h, meta.Size, body, CachePeer, &meta)
	return true
}

// judgePeerCopy treats a peer as an upstream cache: it returns the copy's
// header without hop-by-hop fields, the request and response times its age
// is reckoned from (the Peers implementation's readings around its own
// request to the peer when they fall within ours, else ours), and why this
// request may not use it ("" when it may).
func (p *Proxy) judgePeerCopy(f *fetch, meta store.Meta, reqTime, respTime time.Time) (http.Header, time.Time, time.Time, string) {
	// Times the Peers implementation measured around its own request to
	// the peer are tighter bounds than ours (which include the lookup);
	// anything else (a peer's clock readings) is not ours to use.
	if !meta.RequestTime.Before(reqTime) && !meta.ResponseTime.After(respTime) && !meta.ResponseTime.Before(meta.RequestTime) {
		reqTime, respTime = meta.RequestTime, meta.ResponseTime
	}
	h := meta.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	httpcache.RemoveHopByHop(h)
	e := httpcache.Entry{Status: meta.Status, Header: h, RequestTime: reqTime, ResponseTime: respTime}
	fields, star := httpcache.VaryFields(h)
	var why string
	switch d := p.policy.Decide(f.reqHdr, e, p.now()); {
	case star || len(fields) > 0:
		why = "it has variants"
	case !httpcache.EncodingAcceptable(h, f.reqHdr.Get("Accept-Encoding")):
		why = "its content coding is not one the visitor accepts"
	case meta.Status < 200:
		why = fmt.Sprintf("status %d", meta.Status)
	case d.Action != httpcache.Serve && !d.Fresh:
		why = fmt.Sprintf("stale (age %s, freshness lifetime %s)", httpcache.AgeHeader(d.Age), httpcache.AgeHeader(d.Lifetime))
	case d.Action != httpcache.Serve:
		why = "the request wants the origin's answer"
	}
	return h, reqTime, respTime, why
}

// mayResume reports whether a peer transfer that broke off after written
// bytes can be continued from the origin.
func (p *Proxy) mayResume(ctx context.Context, f *fetch, status int, length, written int64) bool {
	if ctx.Err() != nil || status != http.StatusOK || (length >= 0 && written >= length) {
		// Shutting down; or a status whose body another response might not
		// share; or every byte arrived and failed verification, so the
		// bytes the visitor holds are suspect and only a break is honest.
		return false
	}
	_, dead := p.neg.get(f.origin.String(), p.now())
	return !dead
}

// errResumeMismatch: the origin's body does not continue the peer's.
var errResumeMismatch = errors.New("proxy: the origin's copy differs from the peer's")

// resumeFromOrigin continues a peer's body from byte written with the
// origin: a Range request guarded by If-Range when the copy has a strong
// validator, otherwise (or when the origin ignores the range) the whole body
// again, whose first written bytes must hash to what was already sent. The
// returned body yields only the missing bytes; closing it releases the
// origin slot. how says which way it went.
func (p *Proxy) resumeFromOrigin(ctx context.Context, f *fetch, h http.Header, length, written int64,
	sum hash.Hash) (_ io.ReadCloser, _ context.CancelFunc, how string, _ error) {
	slot, err := p.acquireSlot(ctx, f.origin)
	if err != nil {
		return nil, nil, "", fmt.Errorf("no origin fetch slot: %w", err)
	}
	p.stats.inflight.Add(1)
	done := p.peers.Downloading(f.pkey, f.canon)
	release := func() {
		done()
		p.stats.inflight.Add(-1)
		slot()
	}
	rctx, rcancel := context.WithCancel(ctx)
	fail := func(err error) (io.ReadCloser, context.CancelFunc, string, error) {
		rcancel()
		release()
		return nil, nil, "", err
	}
	req, err := p.originRequest(rctx, f)
	if err != nil {
		return fail(err)
	}
	validator := ifRangeValidator(h)
	if written > 0 && validator != "" {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", written))
		req.Header.Set("If-Range", validator)
	}
	p.stats.originFetches.Add(1)
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		p.stats.originErrors.Add(1)
		return fail(err)
	}
	httpcache.RemoveHopByHop(resp.Header)
	var rd io.ReadCloser
	switch {
	case !sameVersion(h, resp.Header):
		err = errResumeMismatch
	case resp.StatusCode == http.StatusPartialContent && req.Header.Get("Range") != "":
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != written || (length >= 0 && total != length) {
			err = fmt.Errorf("%w: Content-Range %q for bytes %d-", errResumeMismatch, resp.Header.Get("Content-Range"), written)
			break
		}
		rd, how = resp.Body, "range request"
	case resp.StatusCode == http.StatusOK:
		if length >= 0 && resp.ContentLength >= 0 && resp.ContentLength != length {
			err = fmt.Errorf("%w: %d bytes, the peer's has %d", errResumeMismatch, resp.ContentLength, length)
			break
		}
		rd, how = &prefixSkipper{r: resp.Body, left: written, sum: sha256.New(), want: sum.Sum(nil)}, "full refetch"
	default:
		err = fmt.Errorf("origin answered %d", resp.StatusCode)
	}
	if err != nil {
		drainClose(resp.Body)
		return fail(err)
	}
	return &releasingBody{ReadCloser: rd, release: release}, rcancel, how, nil
}

// ifRangeValidator is what an If-Range may carry for a copy: a strong ETag,
// else Last-Modified; "" when there is neither.
func ifRangeValidator(h http.Header) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return et
	}
	return h.Get("Last-Modified")
}

// sameVersion reports whether an origin response may continue a copy with
// header stored: validators the two share agree, and so does the encoding.
func sameVersion(stored, resp http.Header) bool {
	for _, k := range []string{"ETag", "Last-Modified"} {
		a, b := stored.Get(k), resp.Get(k)
		if a != "" && b != "" && a != b {
			return false
		}
	}
	return stored.Get("Content-Encoding") == resp.Get("Content-Encoding")
}

// parseContentRange parses "bytes first-last/total" (total known).
func parseContentRange(v string) (first, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total, err3 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || total <= last {
		return 0, 0, false
	}
	return first, total, true
}

// prefixSkipper drops the first left bytes of a body, which must hash to
// want (they are the bytes the visitors already have), and passes the rest.
// While skipping, each Read consumes one chunk and returns (0, nil), so the
// caller's stall guard sees progress.
type prefixSkipper struct {
	r    io.ReadCloser
	left int64
	sum  hash.Hash
	want []byte
	buf  []byte
}

func (s *prefixSkipper) Read(p []byte) (int, error) {
	if s.left == 0 {
		return s.r.Read(p)
	}
	if s.buf == nil {
		s.buf = make([]byte, copyBufSize)
	}
	n, err := s.r.Read(s.buf[:min(int64(len(s.buf)), s.left)])
	s.sum.Write(s.buf[:n])
	s.left -= int64(n)
	if s.left == 0 && !bytes.Equal(s.sum.Sum(nil), s.want) {
		return 0, fmt.Errorf("%w: the first bytes differ", errResumeMismatch)
	}
	switch {
	case err == io.EOF && s.left > 0:
		return 0, fmt.Errorf("%w: shorter than the bytes already sent", errResumeMismatch)
	case err != nil:
		return 0, err
	}
	return 0, nil
}

func (s *prefixSkipper) Close() error { return s.r.Close() }

// releasingBody runs release once when closed.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// stallGuard cancels a transfer that delivers nothing for a while.
type stallGuard struct {
	t     *time.Timer
	d     time.Duration
	fired atomic.Bool
}

func newStallGuard(d time.Duration, cancel context.CancelFunc) *stallGuard {
	g := &stallGuard{d: d}
	g.t = time.AfterFunc(d, func() { g.fired.Store(true); cancel() })
	g.t.Stop()
	return g
}

// read is one Read of r under the guard.
func (g *stallGuard) read(r io.Reader, buf []byte) (int, error) {
	g.t.Reset(g.d)
	n, err := r.Read(buf)
	g.t.Stop()
	return n, err
}

func (g *stallGuard) stalled() bool { return g.fired.Load() }
func (g *stallGuard) stop()         { g.t.Stop() }

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

// keptCopy says, for a log line about a download that broke off, whether a
// stored copy stays in place (nothing replaces it) or there was none.
func (p *Proxy) keptCopy(objKey string) string {
	if _, err := p.st.Stat(objKey); err == nil {
		return "keeping the old copy"
	}
	return "nothing stored (there was no copy)"
}
