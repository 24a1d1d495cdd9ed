package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/httpcache"
	"github.com/coralcdn/coral/core/object"
)

// serveCached answers a GET or HEAD through the cache.
func (p *Proxy) serveCached(w http.ResponseWriter, r *http.Request, o coralurl.Origin, canon string) {
	key := object.KeyOf(canon)
	pkey := key.String()
	rq := httpcache.RequestDirectives(r.Header)
	now := p.now()
	tr := &Trace{}
	r = r.WithContext(WithTrace(r.Context(), tr))
	began := time.Now()
	defer func() {
		p.traces.add(TraceSummary{Time: now, URL: canon, Result: tr.resultOf(), Path: tr.String(), Duration: time.Since(began)})
	}()
	var gen uint64
	hotOK := p.hot != nil && plainRequest(r)
	if hotOK {
		gen, hotOK = p.hs.Generation(pkey) // before the read, so a change in between is seen
	}
	objKey, meta, body, found := p.lookup(pkey, canon, r.Header)
	var stale *object.Meta
	if found {
		d := p.policy.Decide(r.Header, entryOf(meta), now)
		switch d.Action {
		case httpcache.Serve:
			tr.Source("cache")
			if hotOK && objKey == pkey && p.fillHot(w, r, o, pkey, gen, meta, body) {
				return
			}
			if p.serveObject(w, r, o, meta, body, CacheHit) {
				return
			}
		case httpcache.ServeStale:
			tr.Source("cache (stale, revalidating in the background)")
			if p.serveObject(w, r, o, meta, body, CacheStale) {
				if !isPersonal(r.Header, p.opts.StripCookies) {
					p.startBackground(p.newFetch(fetchSpec{key: key, objKey: objKey, canon: canon, origin: o, reqHdr: r.Header, stale: &meta}))
				}
				return
			}
		default:
			body.Close()
			stale = &meta
		}
	}
	if rq.OnlyIfCached {
		p.stats.errors.Add(1)
		p.errorPage(w, r, http.StatusGatewayTimeout, "Not in the cache",
			"The request asked for a cached copy only (only-if-cached) and this node has none it may use.")
		return
	}
	if fail, dead := p.neg.get(o.String(), now); dead {
		p.stats.negativeHits.Add(1)
		tr.Step("origin failed recently (negative cache)")
		if stale != nil && p.policy.StaleOnError(entryOf(*stale), now) {
			tr.Source("cache (stale)")
			if p.serveStored(w, r, o, objKey, CacheStale) {
				return
			}
		}
		p.failurePage(w, r, fail, true)
		return
	}
	if p.answerWithoutFetch(w, r, o, canon, pkey, objKey, stale, now) {
		return
	}
	f := p.newFetch(fetchSpec{key: key, objKey: objKey, canon: canon, origin: o, reqHdr: r.Header, stale: stale})
	f.noStore = rq.NoStore
	f.personal = isPersonal(r.Header, p.opts.StripCookies)
	if f.noStore || f.personal {
		p.serveFetch(w, r, o, f, p.startPrivate(r.Context(), f), true, false)
		return
	}
	f, rd, started := p.acquire(r.Context(), f)
	if !started {
		p.stats.coalesced.Add(1)
	}
	p.serveFetch(w, r, o, f, rd, started, false)
}

// answerWithoutFetch answers, without a fetch, what a fetch would not
// improve: a stale object whose new version broke off recently (its stale
// copy), and a range of an object too large to store (the origin answers
// it). false when the request needs a fetch.
func (p *Proxy) answerWithoutFetch(w http.ResponseWriter, r *http.Request, o coralurl.Origin, canon, pkey, objKey string,
	stale *object.Meta, now time.Time) bool {
	tr := TraceFrom(r.Context())
	if stale != nil {
		if _, broken := p.brokenRefetch.get(objKey, now); broken && p.policy.StaleOnError(entryOf(*stale), now) {
			tr.Step("the new version broke off recently")
			tr.Source("cache (stale)")
			return p.serveStored(w, r, o, objKey, CacheStale)
		}
		return false
	}
	if r.Method != http.MethodGet || r.Header.Get("Range") == "" {
		return false
	}
	if _, large := p.oversize.get(pkey, now); !large {
		return false
	}
	tr.Step("larger than max_object_bytes: range passed to the origin")
	tr.Source("origin")
	p.passThrough(w, r, o, canon, false)
	return true
}

// isPersonal reports whether a request carries credentials that will reach
// the origin; its fetch is then never shared with other visitors.
func isPersonal(h http.Header, stripCookies bool) bool {
	return h.Get("Authorization") != "" || (!stripCookies && h.Get("Cookie") != "")
}

// lookup finds the stored object for a request, following a Vary index to
// the variant the request selects, and opens it: meta and body come from
// one read of the store. objKey is where that object is (or would be)
// stored, found whether it is there; when found, the caller closes body.
func (p *Proxy) lookup(pkey, canon string, h http.Header) (objKey string, m object.Meta, body object.Body, found bool) {
	m, body, err := p.st.Get(pkey)
	if err != nil {
		if !errors.Is(err, object.ErrNotFound) {
			p.log.Warn("store lookup failed", "key", pkey, "err", err)
		}
		return pkey, object.Meta{}, nil, false
	}
	if m.Extra[extraKind] != kindVary {
		if !httpcache.EncodingAcceptable(m.Header, h.Get("Accept-Encoding")) {
			// A copy stored before encodings got their Vary.
			body.Close()
			return pkey, object.Meta{}, nil, false
		}
		return pkey, m, body, true
	}
	body.Close()
	fields := strings.Split(m.Extra[extraVary], ",")
	vkey := variantKey(canon, httpcache.VaryValues(fields, h))
	vm, vbody, err := p.st.Get(vkey)
	if err != nil || vm.Extra[extraKind] == kindVary {
		if err == nil {
			vbody.Close()
		}
		return vkey, object.Meta{}, nil, false
	}
	return vkey, vm, vbody, true
}

// serveFetch answers a visitor from a fetch (its own or one it joined).
// retried is set for the private fetch of a follower that could not share.
func (p *Proxy) serveFetch(w http.ResponseWriter, r *http.Request, o coralurl.Origin, f *fetch, rd *spoolReader, own, retried bool) {
	defer rd.Close()
	select {
	case <-f.ready:
	case <-r.Context().Done():
		return
	}
	tr := TraceFrom(r.Context())
	if !own {
		tr.Step("joined a fetch in progress")
	}
	tr.include(f.trace)
	switch f.outcome {
	case outError:
		p.failurePage(w, r, f.fail, false)
		return
	case outStored:
		rd.Close()
		if p.serveStored(w, r, o, f.objKey, f.label) {
			return
		}
	case outStream:
		mayShare := own || (f.shareable &&
			(len(f.varyFields) == 0 || httpcache.VaryValues(f.varyFields, r.Header) == f.varyVals))
		if mayShare {
			p.writeStream(w, r, o, f, rd)
			return
		}
	}
	rd.Close()
	if retried {
		p.stats.errors.Add(1)
		p.errorPage(w, r, http.StatusBadGateway, "Origin error", "The object could not be fetched; try again.")
		return
	}
	// This visitor cannot use the shared result (another variant, a private
	// response, or a copy that vanished): fetch for it alone.
	nf := p.newFetch(fetchSpec{key: f.urlKey, objKey: f.pkey, canon: f.canon, origin: o, reqHdr: r.Header})
	nf.personal = true
	p.serveFetch(w, r, o, nf, p.startPrivate(r.Context(), nf), true, true)
}

// writeStream sends a response that is still arriving.
func (p *Proxy) writeStream(w http.ResponseWriter, r *http.Request, o coralurl.Origin, f *fetch, rd *spoolReader) {
	p.count(f.label)
	h := f.header.Clone()
	if f.label == CachePeer {
		// A peer is an upstream cache; the copy's age keeps growing here.
		h.Set("Age", httpcache.AgeHeader(httpcache.Age(httpcache.Entry{Status: f.status, Header: f.header,
			RequestTime: f.reqTime, ResponseTime: f.respTime}, p.now())))
	}
	p.decorate(h, r, o, f.label)
	if httpcache.NotModified(r.Header, f.status, f.header) {
		p.writeNotModified(w, h)
		return
	}
	// A range needs the length; without one the whole body goes.
	status, off, n := f.status, int64(0), f.length
	if f.length >= 0 && bodyAllowed(f.status) {
		status, off, n = p.rangeOf(r, f.status, h, f.length)
	}
	copyHeader(w.Header(), h)
	w.WriteHeader(status)
	if r.Method == http.MethodHead || !bodyAllowed(status) || status == http.StatusRequestedRangeNotSatisfiable {
		return
	}
	var body io.Reader = rd
	if status == http.StatusPartialContent {
		// The range goes out as soon as its bytes arrive; the fetch
		// carries on with the whole object for the cache.
		if _, err := io.CopyN(io.Discard, rd, off); err != nil {
			panic(http.ErrAbortHandler)
		}
		body = io.LimitReader(rd, n)
	}
	p.copyBody(w, r, body, true)
}

// serveStored sends the stored object under key; false (nothing written)
// when it is not there.
func (p *Proxy) serveStored(w http.ResponseWriter, r *http.Request, o coralurl.Origin, key, label string) bool {
	m, body, err := p.st.Get(key)
	if err != nil {
		if !errors.Is(err, object.ErrNotFound) {
			p.log.Warn("store read failed", "key", key, "err", err)
		}
		return false
	}
	if m.Extra[extraKind] == kindVary {
		body.Close()
		return false
	}
	return p.serveObject(w, r, o, m, body, label)
}

// serveObject answers from a stored object, whole or the range asked for,
// and closes its body. It returns false, having written nothing, when the
// body turned out damaged (the store then dropped it).
func (p *Proxy) serveObject(w http.ResponseWriter, r *http.Request, o coralurl.Origin, m object.Meta, body object.Body, label string) bool {
	defer body.Close()
	h := m.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Age", httpcache.AgeHeader(httpcache.Age(entryOf(m), p.now())))
	status, off, n := m.Status, int64(0), int64(0)
	var sec io.Reader
	if bodyAllowed(m.Status) && !httpcache.NotModified(r.Header, m.Status, m.Header) {
		status, off, n = p.rangeOf(r, m.Status, h, m.Size)
		if r.Method == http.MethodGet && status != http.StatusRequestedRangeNotSatisfiable {
			var err error
			if sec, err = body.Section(off, n); err != nil {
				p.log.Warn("stored body unusable", "url", m.URL, "err", err)
				return false
			}
		}
	}
	p.count(label)
	p.decorate(h, r, o, label)
	if httpcache.NotModified(r.Header, m.Status, m.Header) {
		p.writeNotModified(w, h)
		return true
	}
	copyHeader(w.Header(), h)
	w.WriteHeader(status)
	if sec != nil {
		p.sendSection(w, sec, n)
	}
	return true
}

// rangeOf decides between the whole body and a range for a GET (RFC 9110
// §14): the status to send, the section of the body, and the matching
// Content-Length, Content-Range and Accept-Ranges fields in h. Only a single
// byte range of a 200 is served; several ranges get the whole body.
func (p *Proxy) rangeOf(r *http.Request, status int, h http.Header, size int64) (int, int64, int64) {
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if status != http.StatusOK {
		return status, 0, size
	}
	h.Set("Accept-Ranges", "bytes")
	rv := r.Header.Get("Range")
	if rv == "" || r.Method != http.MethodGet || !httpcache.IfRangeMatches(r.Header, h) {
		return status, 0, size
	}
	br, kind := httpcache.ParseRange(rv, size)
	switch kind {
	case httpcache.RangeServe:
		h.Set("Content-Range", br.ContentRange(size))
		h.Set("Content-Length", strconv.FormatInt(br.Length, 10))
		return http.StatusPartialContent, br.Start, br.Length
	case httpcache.RangeUnsatisfiable:
		h.Set("Content-Range", httpcache.UnsatisfiedRange(size))
		h.Set("Content-Length", "0")
		h.Del("Content-Type")
		h.Del("Content-Encoding")
		return http.StatusRequestedRangeNotSatisfiable, 0, 0
	}
	return status, 0, size
}

// sendSection writes n bytes of a stored body that is complete and
// verified. io.Copy lets net/http send a file section with sendfile. A
// short or failed copy aborts the connection: the header is sent, and
// that is the only way to tell the visitor the body is incomplete.
func (p *Proxy) sendSection(w http.ResponseWriter, sec io.Reader, n int64) {
	sent, err := io.Copy(w, sec)
	p.stats.bytes.Add(uint64(sent))
	if err != nil || sent != n {
		panic(http.ErrAbortHandler)
	}
}

// copyBody streams a body to the visitor, flushing as bytes arrive when
// flush is set (a body still arriving from elsewhere). If the
// body breaks off, the connection is aborted: with the header already sent,
// that is the only way to tell the visitor the response is incomplete.
func (p *Proxy) copyBody(w http.ResponseWriter, r *http.Request, body io.Reader, flush bool) {
	rc := http.NewResponseController(w)
	buf := make([]byte, copyBufSize)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			p.stats.bytes.Add(uint64(m))
			if werr != nil {
				return // the visitor left
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if r.Context().Err() != nil {
				return
			}
			p.log.Debug("aborting response", "url", r.Host+r.URL.RequestURI(), "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

func (p *Proxy) writeNotModified(w http.ResponseWriter, h http.Header) {
	nm := httpcache.NotModifiedHeader(h)
	for _, k := range []string{"Age", "Via", "X-Coral-Cache", TraceHeader} {
		if v, ok := h[k]; ok {
			nm[k] = v
		}
	}
	copyHeader(w.Header(), nm)
	w.WriteHeader(http.StatusNotModified)
}

// decorate adds the proxy's own response fields and rewrites origin links.
func (p *Proxy) decorate(h http.Header, r *http.Request, o coralurl.Origin, label string) {
	// Surrogate-Control speaks to Coral (and its peers, which get the
	// stored header), never to the visitor.
	h.Del("Surrogate-Control")
	h.Add("Via", p.via())
	h.Set("X-Coral-Cache", label)
	if tr := TraceFrom(r.Context()); tr != nil {
		tr.setResult(label)
		if wantsTrace(r.Header) {
			h.Set(TraceHeader, tr.header())
		}
	}
	p.rewriteLocations(h, o, r.Host)
}

// rewriteLocations points Location and Content-Location headers that name
// the origin at the origin's Coralized name, so redirects keep visitors on
// Coral. Other hosts' URLs and relative references are left alone.
func (p *Proxy) rewriteLocations(h http.Header, o coralurl.Origin, visitorHost string) {
	_, port := coralurl.StripPort(visitorHost)
	for _, field := range []string{"Location", "Content-Location"} {
		v := h.Get(field)
		if v == "" {
			continue
		}
		u, err := url.Parse(v)
		if err != nil || u.Host == "" || u.Opaque != "" {
			continue
		}
		scheme := u.Scheme
		if scheme == "" {
			scheme = o.Scheme // scheme-relative reference
		}
		lo, _, err := coralurl.ParseOrigin(scheme + "://" + u.Host)
		if err != nil || lo != o {
			continue
		}
		nu := *u
		nu.Scheme, nu.User = "http", nil
		nu.Host = o.CoralHost(p.zone)
		// The visitor's own port, when it is one (a Host header is the
		// visitor's text: "x:abc" must not make the URL unparsable).
		if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65536 && n != 80 {
			nu.Host += ":" + strconv.Itoa(n)
		}
		h.Set(field, nu.String())
	}
}

func (p *Proxy) count(label string) {
	switch label {
	case CacheHit:
		p.stats.hits.Add(1)
	case CacheMiss:
		p.stats.misses.Add(1)
	case CacheStale:
		p.stats.stale.Add(1)
	case CacheRevalidated:
		p.stats.revalidated.Add(1)
	case CachePeer:
		p.stats.peerHits.Add(1)
	}
}

// passThrough forwards a request to the origin uncached: an unsafe method
// (unsafe set), which when it succeeds invalidates what the cache holds
// for the URL (RFC 9111 §4.4), or a range of an object too large to store.
//
// It is an httputil.ReverseProxy on the guarded origin transport (so the
// origin guard screens every address it dials): the negative cache and the
// fetch slots are checked before it, its Rewrite sends only what
// forwardHeader keeps, ModifyResponse decorates and invalidates, and its
// errors get the same pages as a cached fetch's.
func (p *Proxy) passThrough(w http.ResponseWriter, r *http.Request, o coralurl.Origin, canon string, unsafe bool) {
	if !unsafe {
		p.stats.misses.Add(1)
	} else {
		p.stats.passed.Add(1)
	}
	now := p.now()
	if fail, dead := p.neg.get(o.String(), now); dead {
		p.stats.negativeHits.Add(1)
		p.failurePage(w, r, fail, true)
		return
	}
	target, err := url.Parse(canon)
	if err != nil {
		p.stats.errors.Add(1)
		p.errorPage(w, r, http.StatusBadRequest, "Bad request", err.Error())
		return
	}
	release, err := p.acquireSlot(r.Context(), o)
	if err != nil {
		p.failurePage(w, r, busyFailure(err), false)
		return
	}
	defer release()
	p.stats.inflight.Add(1)
	defer p.stats.inflight.Add(-1)
	p.stats.originFetches.Add(1)
	// ReverseProxy would carry a protocol upgrade over into a tunnel that
	// no cap or guard sees; Coral forwards HTTP only (forwardHeader drops
	// these hop-by-hop fields anyway).
	r.Header.Del("Upgrade")
	r.Header.Del("Connection")
	p.originProxy(r, o, target, canon, unsafe).ServeHTTP(&countingWriter{ResponseWriter: w, n: &p.stats.bytes}, r)
}

// originProxy is the ReverseProxy for one pass-through request.
func (p *Proxy) originProxy(r *http.Request, o coralurl.Origin, target *url.URL, canon string, unsafe bool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport:     p.transport,
		FlushInterval: -1, // a response passed through streams as it comes
		ErrorLog:      slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = o.Authority()
			pr.Out.Header = p.forwardHeader(r.Header, false)
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				return errSwitchedProtocols // a tunnel, not HTTP: ErrorHandler answers
			}
			if unsafe && resp.StatusCode < 400 {
				p.invalidate(canon, o, resp.Header)
			}
			httpcache.RemoveHopByHop(resp.Header)
			if p.opts.StripCookies {
				resp.Header.Del("Set-Cookie")
			} else {
				p.dropWideCookies(resp.Header, o)
			}
			p.decorate(resp.Header, r, o, CacheMiss)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			p.stats.originErrors.Add(1)
			fail := classify(err)
			if errors.Is(err, errSwitchedProtocols) {
				fail = originFailure{http.StatusBadGateway, "Origin error",
					"The origin answered by switching protocols; Coral passes HTTP only.", false}
			}
			if fail.negative && p.opts.NegativeTTL > 0 && req.Context().Err() == nil {
				now := p.now()
				p.neg.put(o.String(), fail, now.Add(p.opts.NegativeTTL))
			}
			p.failurePage(w, r, fail, false)
		},
	}
}

// errSwitchedProtocols: an origin answered a passed-through request with
// 101; Coral does not tunnel.
var errSwitchedProtocols = errors.New("proxy: origin switched protocols")

// countingWriter adds the body bytes written to n.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Uint64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	k, err := c.ResponseWriter.Write(b)
	c.n.Add(uint64(k))
	return k, err
}

// Unwrap lets http.ResponseController reach the connection (to flush).
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// invalidate drops the stored copies of a URL changed by an unsafe method,
// and of the same-origin URLs its Location and Content-Location name.
func (p *Proxy) invalidate(canon string, o coralurl.Origin, h http.Header) {
	p.remove(object.KeyOf(canon).String())
	for _, field := range []string{"Location", "Content-Location"} {
		v := h.Get(field)
		if v == "" {
			continue
		}
		base, err := url.Parse(canon)
		if err != nil {
			continue
		}
		ref, err := url.Parse(v)
		if err != nil {
			continue
		}
		abs := base.ResolveReference(ref)
		lo, _, err := coralurl.ParseOrigin(abs.Scheme + "://" + abs.Host)
		if err != nil || lo != o {
			continue
		}
		p.remove(object.KeyOf(CanonicalURL(o, abs.RequestURI())).String())
	}
}

// The proxy is what a node serves its peers from.
var _ object.Source = (*Proxy)(nil)

// waitsOnRequester reports whether f has no response header yet and its
// fetch waits on the peer asking (object.RequesterOf) for one: two nodes
// whose test-and-sets met each other's values (stored at different nodes,
// each after the other's) would otherwise each wait for the other's header
// until a timeout (24 s), and every node referred to either with them.
// Answering not found at once lets the asker turn elsewhere (the global
// root, or the election), and this node's wait then ends too.
func (p *Proxy) waitsOnRequester(ctx context.Context, f *fetch, key string) bool {
	wp, ok := p.peers.(WaitingPeers)
	requester := object.RequesterOf(ctx)
	if !ok || requester == "" {
		return false
	}
	select {
	case <-f.ready:
		return false
	default:
	}
	return wp.AwaitsHeader(key, requester)
}

// OpenForPeer gives another proxy the object stored under key: the stored
// copy, or a download in progress streamed as its bytes arrive (Size -1 and
// a zero SHA256 when not yet known). Objects with Vary are not shared.
// It returns an error wrapping object.ErrNotFound otherwise.
//
// Like any cache answering another, it states the copy's current age in the
// Age header, so the receiver's freshness does not depend on the two
// clocks agreeing (RequestTime and ResponseTime stay this node's readings).
func (p *Proxy) OpenForPeer(ctx context.Context, key string) (object.Meta, io.ReadCloser, error) {
	p.mu.Lock()
	f := p.inflight[key]
	var rd *spoolReader
	if f != nil {
		rd, _ = f.body.NewReader(ctx)
	}
	p.mu.Unlock()
	if rd != nil && p.waitsOnRequester(ctx, f, key) {
		rd.Close()
		return object.Meta{}, nil, fmt.Errorf("proxy: %s: this node's download waits on the asking peer: %w", key, object.ErrNotFound)
	}
	if rd != nil {
		select {
		case <-f.ready:
		case <-ctx.Done():
			rd.Close()
			return object.Meta{}, nil, ctx.Err()
		}
		if f.outcome == outStream && f.storing && f.shareable && len(f.varyFields) == 0 && f.key == f.pkey {
			m := object.Meta{
				Key: key, URL: f.canon, Status: f.status, Header: f.header.Clone(),
				RequestTime: f.reqTime, ResponseTime: f.respTime, Size: f.length,
			}
			m.Header.Set("Age", httpcache.AgeHeader(httpcache.Age(entryOf(m), p.now())))
			return m, rd, nil
		}
		rd.Close()
	}
	m, body, err := p.st.Get(key)
	if err != nil {
		return object.Meta{}, nil, err
	}
	if m.Extra[extraKind] == kindVary || len(m.Extra[extraVary]) > 0 {
		body.Close()
		return object.Meta{}, nil, fmt.Errorf("proxy: %s has variants: %w", key, object.ErrNotFound)
	}
	m.Header = m.Header.Clone()
	if m.Header == nil {
		m.Header = http.Header{}
	}
	m.Header.Set("Age", httpcache.AgeHeader(httpcache.Age(entryOf(m), p.now())))
	return m, body, nil
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}
