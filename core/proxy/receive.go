package proxy

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coralcdn/coral/core/httpcache"
	"github.com/coralcdn/coral/core/object"
)

// response is what receive takes in: from the origin, or from a peer when
// peerMeta is set.
type response struct {
	status   int
	header   http.Header
	length   int64 // -1 unknown
	body     io.ReadCloser
	label    string // X-Coral-Cache value
	peerMeta *object.Meta
}

// transfer is one response on its way to f's readers and, if it may be
// stored, into the store.
type transfer struct {
	p *Proxy
	f *fetch
	response

	src    io.ReadCloser      // the peer's body, or the origin's once resumed
	cancel context.CancelFunc // ends the current source's transfer

	storable  bool // decided on the response as it came
	shareable bool
	fields    []string // Vary
	varyVals  string
	sw        object.Writer // nil once not storing
	holdBack  bool          // a refetch not published until complete
	sum       hash.Hash     // a peer body's hash when it does not hash itself (see peerHash)
	digest    [32]byte      // a peer body's SHA-256, once verified
	guard     *transferGuard
	written   int64
	pending   []byte // the final byte, published only after the commit
	resumed   bool   // continued from the origin
	// peerResumes counts continuations from other peers' complete copies.
	peerResumes int
}

// receive streams a response to f's readers and, if it may be stored,
// into the store; the new version replaces the old only if it arrived
// complete. Its steps: judge the response, open the store writer and
// publish, copy the body (resuming a peer's from the origin), then commit.
func (p *Proxy) receive(ctx context.Context, cancel context.CancelFunc, f *fetch, resp response) {
	t := &transfer{p: p, f: f, response: resp, src: resp.body, cancel: cancel}
	defer func() { t.src.Close() }()
	defer func() {
		if t.resumed || t.peerResumes > 0 {
			t.cancel() // the resumed transfer's
		}
	}()
	storable, why := t.judge()
	t.open(storable, why)
	defer func() { t.guard.stop() }()

	rerr := t.copyBody(ctx)
	if rerr == nil && t.peerMeta != nil {
		sum := t.peerHash()
		sum.Sum(t.digest[:0])
		rerr = verifyPeerBody(t.peerMeta, t.written, sum)
	}
	if rerr != nil {
		t.brokeOff(rerr)
		return
	}
	if t.commit() {
		t.finish(ctx)
	}
}

// judge decides, on the response as the origin sent it (Set-Cookie
// included), whether it may be stored and shared, and readies its header
// for the visitors.
func (t *transfer) judge() (storable bool, why string) {
	p, f, h := t.p, t.f, t.header
	storable, why = httpcache.Storable(http.MethodGet, p.sentHeader(f.reqHdr), t.status, h)
	setsCookie := len(h.Values("Set-Cookie")) > 0
	hasCookie := false // a cookie that goes on to the visitor
	if p.opts.StripCookies {
		h.Del("Set-Cookie")
	} else {
		p.dropWideCookies(h, f.origin)
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
	if !bodyAllowed(t.status) {
		t.length = 0
	}
	if t.status == http.StatusGone {
		p.remove(f.pkey)
		if f.objKey != f.pkey {
			p.remove(f.objKey)
		}
	}
	if storable {
		storable, why = p.mayStore(f, t.status, h, t.length, hasCookie)
	}
	cc := httpcache.CoralDirectives(h)
	fields, varyStar := httpcache.VaryFields(h)
	t.fields = fields
	// "Vary: *" matches no other request, so no one joins it.
	t.shareable = !cc.Private && !cc.NoStore && !hasCookie && !personalResp && !f.personal && !varyStar
	return storable, why
}

// mayStore checks a response the HTTP rules let a cache store against this
// request and this node: why not ("" when it may).
func (p *Proxy) mayStore(f *fetch, status int, h http.Header, length int64, hasCookie bool) (bool, string) {
	switch {
	case !httpcache.EncodingAcceptable(h, f.reqHdr.Get("Accept-Encoding")):
		return false, "content coding the request did not accept"
	case f.noStore:
		return false, "request asked for no-store"
	case hasCookie:
		return false, "response sets a cookie (strip_cookies is off)"
	case length > p.opts.MaxObjectBytes:
		p.noteOversize(f)
		return false, fmt.Sprintf("Content-Length %d exceeds max_object_bytes", length)
	case p.admit() != nil:
		// The store warns when this starts; spooling it would fill the
		// disk just the same.
		return false, "disk nearly full"
	case status >= 400:
		if lt, _ := p.policy.Lifetime(httpcache.Entry{Status: status, Header: h, RequestTime: f.reqTime, ResponseTime: f.respTime}); lt <= 0 {
			return false, "error response without freshness"
		}
	}
	return true, ""
}

// open starts the store writer (or lets the visitors already attached have
// the body alone) and publishes the response unless it is held back.
func (t *transfer) open(storable bool, why string) {
	p, f := t.p, t.f
	t.storable = storable
	storeKey := f.pkey
	if len(t.fields) > 0 {
		t.varyVals = httpcache.VaryValues(t.fields, f.reqHdr)
		storeKey = variantKey(f.canon, t.varyVals)
	}
	if storable {
		t.sw = p.st.Create(storeKey, p.opts.MaxObjectBytes)
	} else {
		p.log.Debug("not storing", "url", f.canon, "status", t.status, "reason", why)
		// Nothing to keep: pipe the body to the visitors already attached
		// and let later ones start their own fetch.
		f.body.StopRetaining()
		p.forget(f)
	}
	// A refetch of a stale copy holds the new body back until it arrived
	// complete (see the package doc), while it is being stored and within
	// refetchHoldBack bytes. An empty body completes at once: a visitor
	// would have the whole response as soon as it sees the header, so
	// commit before publishing.
	t.holdBack = f.stale != nil && t.sw != nil && t.length <= refetchHoldBack
	if t.length != 0 && !t.holdBack {
		t.publish()
	}
	if t.peerMeta != nil {
		t.hashPeerBody()
	}
	t.guard = newTransferGuard(p.opts.OriginTimeout, p.opts.MinOriginRate, t.length, t.cancel)
}

// hashPeerBody readies the one hash of a peer's body: the body's own when
// it hashes itself as it streams in (a p2p transfer), else the transfer's.
// Either way the store is given the digest rather than hash it again.
func (t *transfer) hashPeerBody() {
	if object.HashOf(t.src) == nil {
		t.sum = object.NewBodyHash()
	}
	if t.sw != nil {
		t.sw.CallerHashes()
	}
}

// peerHash is the hash of the peer body's bytes so far: the transfer's
// own (set when the body does not hash itself, or once it resumed from
// the origin), else the body's.
func (t *transfer) peerHash() hash.Hash {
	if t.sum != nil {
		return t.sum
	}
	return object.HashOf(t.src)
}

// publish lets the visitors waiting on f have the response (once).
func (t *transfer) publish() {
	f := t.f
	f.resolve(func() {
		f.outcome, f.label = outStream, t.label
		f.status, f.header, f.length = t.status, t.header, t.length
		f.varyFields, f.varyVals = t.fields, t.varyVals
		f.shareable = t.shareable
		f.storing = t.storable
	})
}

// copyBody moves the body to the readers and the store until its end; a
// peer's body that breaks off continues from the origin once.
func (t *transfer) copyBody(ctx context.Context) error {
	buf := make([]byte, copyBufSize)
	for {
		n, err := t.guard.read(t.src, buf)
		if n > 0 {
			if werr := t.pass(ctx, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF && t.peerMeta != nil && !t.resumed && t.length >= 0 && t.written < t.length {
			err = io.ErrUnexpectedEOF // a peer that ended early: worth resuming
		}
		if err == io.EOF {
			return nil
		}
		if err == nil {
			continue
		}
		if t.guard.stalled() {
			err = errStalled
		}
		if t.peerMeta == nil || t.resumed || !t.p.mayResume(ctx, t.f, t.status, t.length, t.written) {
			return err
		}
		if rerr := t.resume(ctx, err); rerr != nil {
			return rerr
		}
	}
}

// pass hands one chunk to the hash, the store and the readers.
func (t *transfer) pass(ctx context.Context, chunk []byte) error {
	n := len(chunk)
	if t.sum != nil {
		t.sum.Write(chunk)
	}
	if t.sw != nil {
		if _, werr := t.sw.Write(chunk); werr != nil {
			t.stopStoring(ctx, werr)
		}
	}
	// With a known length, a visitor holds the complete response once the
	// last byte arrives; keep it back until the commit so that its next
	// request finds the stored copy.
	if t.sw != nil && t.length > 0 && t.written+int64(n) == t.length {
		t.pending = []byte{chunk[n-1]}
		chunk = chunk[:n-1]
	}
	t.written += int64(n)
	if t.holdBack && (t.sw == nil || t.written > refetchHoldBack) {
		t.holdBack = false // no longer stored, or too long to wait for
		t.publish()
	}
	return t.f.body.Write(ctx, chunk)
}

// stopStoring gives up storing the body (the readers still get it).
func (t *transfer) stopStoring(ctx context.Context, werr error) {
	t.p.logNotStoring(ctx, t.f.canon, werr)
	if errors.Is(werr, object.ErrTooLarge) {
		t.p.noteOversize(t.f)
	}
	t.sw.Abort()
	t.sw = nil
	t.f.body.StopRetaining()
	t.p.forget(t.f)
}

// resume continues a peer's transfer that broke off (err) after the
// visitors got part of the body from the origin, rather than break their
// connections.
func (t *transfer) resume(ctx context.Context, err error) error {
	p, f := t.p, t.f
	f.trace.Step("peer transfer broke off after %d bytes", t.written)
	if t.resumeFromPeer(ctx) {
		return nil
	}
	t.resumed = true
	p.log.Info("peer transfer broke off; resuming from the origin", "url", f.canon, "bytes", t.written, "err", err)
	sum := t.peerHash() // of the bytes so far; the origin's rest goes on into it
	next, ncancel, how, rsErr := p.resumeFromOrigin(ctx, f, t.header, t.length, t.written, sum)
	if rsErr != nil {
		f.trace.Step("resume from origin failed: %v", rsErr)
		t.resumed = false // nothing of the origin's to cancel
		return fmt.Errorf("%w (resuming from the origin: %w)", err, rsErr)
	}
	p.stats.peerResumes.Add(1)
	f.trace.Step("resumed from origin at byte %d (%s)", t.written, how)
	if from := f.trace.sourceOf(); from != "" {
		f.trace.Source("%s, then origin from byte %d", from, t.written)
	} else {
		f.trace.Source("origin from byte %d", t.written)
	}
	t.guard.stop()
	t.src.Close()
	t.cancel() // the peer transfer is over
	t.src, t.cancel, t.sum = next, ncancel, sum
	rest := int64(-1)
	if t.length >= 0 {
		rest = t.length - t.written
	}
	t.guard = newTransferGuard(p.opts.OriginTimeout, p.opts.MinOriginRate, rest, ncancel)
	return nil
}

// maxPeerResumes bounds how often one transfer continues from another
// peer's copy before it turns to the origin.
const maxPeerResumes = 2

// resumeFromPeer continues a peer's transfer that broke off from another
// node's copy (ResumePeers), skipping the bytes already sent once
// their hash matches; false when there is none (then the origin). In a
// flash crowd a node that dies mid-transfer leaves many receivers behind,
// and the copies around them spare the origin their requests.
func (t *transfer) resumeFromPeer(ctx context.Context) bool {
	p, f := t.p, t.f
	rp, ok := p.peers.(ResumePeers)
	sum := t.peerHash() // of the bytes so far; the new copy's rest goes on into it
	if !ok || sum == nil || t.peerResumes >= maxPeerResumes {
		return false
	}
	t.peerResumes++
	rctx, rcancel := context.WithCancel(ctx)
	usable := func(m object.Meta) error {
		if m.Status != t.status || !sameVersion(t.header, m.Header) || (t.length >= 0 && m.Size >= 0 && m.Size != t.length) {
			return errors.New("another version")
		}
		return nil
	}
	m, body, err := rp.FetchForResume(rctx, f.urlKey, f.canon, usable)
	if err != nil {
		rcancel()
		f.trace.Step("no peer copy to resume from")
		return false
	}
	p.stats.peerResumes.Add(1)
	f.trace.Step("resumed from a peer's copy at byte %d", t.written)
	if m.SHA256 != ([32]byte{}) {
		t.peerMeta = &m // the whole body must match the complete copy's hash
	}
	t.guard.stop()
	t.src.Close()
	t.cancel()
	t.src, t.cancel = &prefixSkipper{r: body, left: t.written, sum: object.NewBodyHash(), want: sum.Sum(nil)}, rcancel
	t.sum = sum
	rest := int64(-1)
	if t.length >= 0 {
		rest = t.length - t.written
	}
	t.guard = newTransferGuard(p.opts.OriginTimeout, p.opts.MinOriginRate, rest, rcancel)
	return true
}

// brokeOff ends a transfer that failed: nothing is stored, and a held-back
// refetch gives way to the stale copy.
func (t *transfer) brokeOff(rerr error) {
	p, f := t.p, t.f
	if t.sw != nil {
		t.sw.Abort()
	}
	if !errors.Is(rerr, errNoReaders) {
		p.stats.originErrors.Add(1)
		p.log.Info("transfer broke off; "+p.keptCopy(f.objKey), "url", f.canon, "bytes", t.written, "err", rerr)
	}
	p.forget(f)
	if t.holdBack {
		p.refetchFailed(f, rerr)
	} else {
		t.publish()
	}
	f.body.Finish(fmt.Errorf("proxy: transfer of %s broke off: %w", f.canon, rerr))
}

// commit stores the complete body; false when the transfer ended here
// (the store found it incomplete).
func (t *transfer) commit() bool {
	p, f := t.p, t.f
	if t.sw == nil {
		return true
	}
	meta := object.Meta{
		URL: f.canon, Status: t.status, Header: t.header.Clone(),
		RequestTime: f.reqTime, ResponseTime: f.respTime, Size: t.length,
	}
	if len(t.fields) > 0 {
		meta.Extra = map[string]string{extraVary: strings.Join(t.fields, ",")}
	}
	if t.peerMeta != nil {
		meta.SHA256 = t.digest // hashed once, as it came (hashPeerBody)
		if bound := p.opts.PeerCopyMaxAge; bound > 0 {
			if meta.Extra == nil {
				meta.Extra = map[string]string{}
			}
			meta.Extra[extraPeerMaxAge] = strconv.FormatInt(int64(bound/time.Second), 10)
		}
	}
	m, err := t.sw.Commit(meta)
	switch {
	case errors.Is(err, object.ErrIncomplete):
		p.forget(f)
		if t.holdBack {
			p.refetchFailed(f, err)
		} else {
			t.publish()
		}
		f.body.Finish(fmt.Errorf("proxy: transfer of %s incomplete: %w", f.canon, err))
		return false
	case err != nil:
		p.log.Warn("store commit failed", "url", f.canon, "err", err)
	default:
		if len(t.fields) > 0 {
			p.writeVaryIndex(f.pkey, f.canon, t.fields)
		}
		if p.peers != nil {
			p.peers.Cached(f.urlKey, m)
		}
	}
	return true
}

// finish publishes the response, hands over the last byte and ends the
// readers' body.
func (t *transfer) finish(ctx context.Context) {
	t.p.forget(t.f)
	t.publish()
	if len(t.pending) > 0 {
		if err := t.f.body.Write(ctx, t.pending); err != nil {
			t.f.body.Finish(err)
			return
		}
	}
	t.f.body.Finish(nil)
}
