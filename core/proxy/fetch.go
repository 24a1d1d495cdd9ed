package proxy

import (
	"bytes"
	"context"
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
	"github.com/coralcdn/coral/core/object"
)

// Keys in object.Meta.Extra.
const (
	extraKind = "coral-kind" // "vary" marks a Vary index under the primary key
	extraVary = "coral-vary" // comma-separated field names the response varies on
	// extraPeerMaxAge marks a copy that came from a peer: its freshness
	// bound in seconds (Options.PeerCopyMaxAge when it was stored).
	extraPeerMaxAge = "coral-peer-max-age"
	kindVary        = "vary"
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
	key      string     // in-flight map key; "" for a private fetch
	urlKey   object.Key // canon's key, computed once per request
	pkey     string     // primary store key: urlKey.String()
	objKey   string     // key of the stored object being revalidated or filled
	canon    string
	origin   coralurl.Origin
	reqHdr   http.Header  // header of the request that started it
	stale    *object.Meta // stored copy being revalidated; nil on a miss
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

// fetchSpec names what a fetch downloads, and for which request.
type fetchSpec struct {
	key    object.Key // canon's key (object.KeyOf)
	objKey string     // the stored object revalidated or filled; also the in-flight key
	canon  string
	origin coralurl.Origin
	reqHdr http.Header  // the request that starts it (copied)
	stale  *object.Meta // the stored copy being revalidated; nil on a miss
}

func (p *Proxy) newFetch(s fetchSpec) *fetch {
	f := &fetch{
		key: s.objKey, urlKey: s.key, pkey: s.key.String(), objKey: s.objKey, canon: s.canon, origin: s.origin,
		reqHdr: s.reqHdr.Clone(), stale: s.stale, length: -1,
		body:  newSpool(p.opts.SpoolDir, spoolMemLimit, pipeWindow, p.opts.OriginTimeout),
		ready: make(chan struct{}),
		trace: &Trace{},
	}
	f.body.room = p.admit
	f.body.onDiskTrouble = func(err error) {
		level := slog.LevelWarn
		if errors.Is(err, object.ErrDiskFull) {
			level = slog.LevelDebug // the watermark, not a failure: the store warns once
		}
		p.log.Log(context.Background(), level, "spool cannot use the disk: passing the body through", "url", s.canon, "err", err)
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
		done := p.peers.Downloading(f.urlKey, f.canon)
		defer done()
	}

	p.fromOrigin(ctx, cancel, f)
}

// fromOrigin asks the origin (again without conditions when a 304 does
// not match the stored copy) and receives its answer.
func (p *Proxy) fromOrigin(ctx context.Context, cancel context.CancelFunc, f *fetch) {
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
			p.originUnreachable(ctx, f, err)
			return
		}
		f.respTime = p.now()
		httpcache.RemoveHopByHop(resp.Header)
		if f.stale != nil && resp.StatusCode == http.StatusNotModified {
			drainClose(resp.Body)
			if p.revalidated(f, resp.Header) {
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
			p.resolveStored(f, CacheStale, "cache (stale)")
			return
		}
		p.receive(ctx, cancel, f, response{status: resp.StatusCode, header: resp.Header, length: resp.ContentLength, body: resp.Body, label: CacheMiss})
		return
	}
}

// originUnreachable resolves f when the origin gave no response at all,
// and remembers a failure worth remembering (negative cache).
func (p *Proxy) originUnreachable(ctx context.Context, f *fetch, err error) {
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
}

// revalidated applies a 304 to the stored copy and resolves f to serve it;
// false when the 304 does not match it.
func (p *Proxy) revalidated(f *fetch, h http.Header) bool {
	if !p.merge304(f, h) {
		return false
	}
	f.trace.Step("revalidated with origin: 304")
	p.resolveStored(f, CacheRevalidated, "cache (revalidated)")
	return true
}

// resolveStored resolves f to serve the stored copy with label.
func (p *Proxy) resolveStored(f *fetch, label, source string) {
	f.trace.Source("%s", source)
	// Forget before resolving: a visitor served the result must not find
	// this finished fetch on its next request.
	p.forget(f)
	f.resolve(func() { f.outcome, f.label = outStored, label })
	f.body.Finish(nil)
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
	now := p.now()
	// Remembered before the fetch is forgotten and its visitors answered:
	// a request arriving in between would otherwise start a refetch.
	if p.opts.NegativeTTL > 0 {
		p.brokenRefetch.put(f.objKey, fail, now.Add(p.opts.NegativeTTL))
	}
	p.forget(f)
	f.resolve(func() {
		if f.stale != nil && p.policy.StaleOnError(entryOf(*f.stale), now) {
			f.outcome, f.label = outStored, CacheStale
			f.trace.Source("cache (stale)")
			return
		}
		f.outcome, f.fail = outError, fail
	})
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
	// A peer's copy is not revalidated: its validators are the peer's word
	// too, and a 304 for a forged body's copied ETag would keep it.
	if f.stale != nil && peerMaxAge(*f.stale) == 0 {
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
	err := p.st.UpdateMeta(f.objKey, func(m *object.Meta) error {
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

// logNotStoring logs why a body that was being stored no longer is: at
// DEBUG for the disk watermark (the store warns once when the disk fills).
func (p *Proxy) logNotStoring(ctx context.Context, url string, err error) {
	level := slog.LevelInfo
	if errors.Is(err, object.ErrDiskFull) {
		level = slog.LevelDebug
	}
	p.log.Log(ctx, level, "not storing", "url", url, "reason", err)
}

// writeVaryIndex records under the primary key which request fields select
// among the variants stored under variant keys.
func (p *Proxy) writeVaryIndex(pkey, canon string, fields []string) {
	w := p.st.Create(pkey, 0)
	if _, err := w.Commit(object.Meta{URL: canon, Size: 0,
		Extra: map[string]string{extraKind: kindVary, extraVary: strings.Join(fields, ",")}}); err != nil {
		p.log.Warn("vary index not stored", "url", canon, "err", err)
	}
}

// remove deletes a stored object and tells the peers.
func (p *Proxy) remove(key string) {
	err := p.st.Delete(key)
	if err != nil && !errors.Is(err, object.ErrNotFound) {
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
	// The Peers implementation judges each delivered copy with usable and
	// returns the one accepted: its judgment is kept, not made again.
	var accepted *peerJudgment
	usable := func(m object.Meta) error {
		j := p.judgePeerCopy(f, m, reqTime, p.now())
		if j.why != "" {
			return errors.New(j.why)
		}
		accepted = &j
		return nil
	}
	meta, body, err := p.peers.Fetch(pctx, f.urlKey, f.canon, usable)
	if err != nil {
		if !errors.Is(err, object.ErrNotFound) {
			p.log.Debug("peer fetch failed", "url", f.canon, "err", err)
		}
		return false
	}
	j := accepted
	if j == nil { // an implementation that does not call usable
		jj := p.judgePeerCopy(f, meta, reqTime, p.now())
		j = &jj
	}
	if j.why != "" {
		// Copies this request may not use go to the origin.
		body.Close()
		f.trace.Step("peer copy not used: %s", j.why)
		return false
	}
	h, reqTime, respTime := j.header, j.reqTime, j.respTime
	f.reqTime, f.respTime = reqTime, respTime
	if f.trace.sourceOf() == "" {
		f.trace.Source("peer")
	}
	p.receive(ctx, pcancel, f, response{status: meta.Status, header: h, length: meta.Size, body: body, label: CachePeer, peerMeta: &meta})
	return true
}

// peerJudgment is judgePeerCopy's verdict on one peer copy: its header
// without hop-by-hop fields, the request and response times its age is
// reckoned from, and why this request may not use it ("" when it may).
type peerJudgment struct {
	header            http.Header
	reqTime, respTime time.Time
	why               string
}

// judgePeerCopy treats a peer as an upstream cache: the times its age is
// reckoned from are the Peers implementation's readings around its own
// request to the peer when they fall within ours, else ours.
func (p *Proxy) judgePeerCopy(f *fetch, meta object.Meta, reqTime, respTime time.Time) peerJudgment {
	// Times the Peers implementation measured around its own request to
	// the peer are tighter bounds than ours (which include the lookup);
	// anything else (a peer's clock readings) is not ours to use.
	if !meta.RequestTime.Before(reqTime) && !meta.ResponseTime.After(respTime) && !meta.ResponseTime.Before(meta.RequestTime) {
		reqTime, respTime = meta.RequestTime, meta.ResponseTime
	}
	h := httpcache.CleanHeader(meta.Header)
	httpcache.RemoveHopByHop(h)
	e := httpcache.Entry{Status: meta.Status, Header: h, RequestTime: reqTime, ResponseTime: respTime,
		MaxLifetime: p.opts.PeerCopyMaxAge}
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
	return peerJudgment{header: h, reqTime: reqTime, respTime: respTime, why: why}
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
	done := p.peers.Downloading(f.urlKey, f.canon)
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
		rd, how = &prefixSkipper{r: resp.Body, left: written, sum: object.NewBodyHash(), want: sum.Sum(nil)}, "full refetch"
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
func verifyPeerBody(m *object.Meta, written int64, sum hash.Hash) error {
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

func entryOf(m object.Meta) httpcache.Entry {
	return httpcache.Entry{Status: m.Status, Header: m.Header, RequestTime: m.RequestTime, ResponseTime: m.ResponseTime,
		MaxLifetime: peerMaxAge(m)}
}

// peerMaxAge is the freshness bound of a stored copy that came from a
// peer; 0 for the origin's own copies.
func peerMaxAge(m object.Meta) time.Duration {
	secs, err := strconv.ParseInt(m.Extra[extraPeerMaxAge], 10, 64)
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
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
