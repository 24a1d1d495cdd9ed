package p2p

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Object transfer, /coral/fetch/<version>. One stream per object:
//
//	receiver → sender  request  {key}
//	sender → receiver  header   {status, meta, stated size, stated sha256}
//	sender → receiver  chunk*   uvarint length + raw bytes, as they arrive
//	sender → receiver  end      a zero-length chunk
//	sender → receiver  trailer  {size, sha256, error}
//
// Every message but the raw chunk bytes is a length-delimited CBOR envelope.
//
// Decision: the body is always chunked and always followed by a trailer. A
// stored copy has a known size and hash, which go in the header (and again
// in the trailer); a copy the sender is still downloading has neither, so
// the header says size -1 and the trailer states them once the sender's own
// download is complete. Chunking lets the same stream carry both and lets
// the sender report a failed origin download in the trailer instead of by
// a bare reset. The receiver verifies the byte count and SHA-256 against
// the trailer (and the header, when stated) before reporting io.EOF, so a
// caller that commits only after io.EOF never stores a bad copy.
const (
	fetchChunkSize     = 64 << 10
	fetchHeaderTimeout = 30 * time.Second // request → header, covers opening an in-flight copy
	fetchIdleTimeout   = 60 * time.Second // longest wait for the next chunk
	fetchRouteAttempts = 3                // routes tried when links die under a request
)

const (
	fetchOK       = 0
	fetchNotFound = 1
	fetchFailed   = 2
)

// ErrBadObject means the sender's bytes contradicted what it stated (length
// or hash). The peer has been penalised; fall back to another source.
var ErrBadObject = errors.New("p2p: object failed verification")

// The host is cooperation's Fetcher (core/coop declares it).
var _ coop.Fetcher = (*Host)(nil)

type fetchRequest struct {
	Key string `cbor:"1,keyasint"`
}

type fetchHeader struct {
	Status int       `cbor:"1,keyasint"`
	Msg    string    `cbor:"2,keyasint,omitempty"`
	Meta   *wireMeta `cbor:"3,keyasint,omitempty"`
	Size   int64     `cbor:"4,keyasint"`           // -1: not known yet, see trailer
	SHA256 []byte    `cbor:"5,keyasint,omitempty"` // empty: not known yet
}

type fetchTrailer struct {
	Size   int64  `cbor:"1,keyasint"`
	SHA256 []byte `cbor:"2,keyasint,omitempty"`
	Err    string `cbor:"3,keyasint,omitempty"`
}

// wireMeta is object.Meta on the wire, with explicit tags so the store can
// change its Go struct without changing the protocol.
type wireMeta struct {
	Key          string              `cbor:"1,keyasint"`
	URL          string              `cbor:"2,keyasint"`
	Status       int                 `cbor:"3,keyasint"`
	Header       map[string][]string `cbor:"4,keyasint,omitempty"`
	RequestTime  time.Time           `cbor:"5,keyasint"`
	ResponseTime time.Time           `cbor:"6,keyasint"`
	Extra        map[string]string   `cbor:"7,keyasint,omitempty"`
}

func toWireMeta(m object.Meta) *wireMeta {
	return &wireMeta{Key: m.Key, URL: m.URL, Status: m.Status, Header: m.Header,
		RequestTime: m.RequestTime, ResponseTime: m.ResponseTime, Extra: m.Extra}
}

func (w *wireMeta) meta() object.Meta {
	m := object.Meta{Key: w.Key, URL: w.URL, Status: w.Status,
		RequestTime: w.RequestTime, ResponseTime: w.ResponseTime, Extra: w.Extra}
	if w.Header != nil {
		m.Header = http.Header(w.Header)
	}
	return m
}

// ServeObjects answers /coral/fetch streams from src.
func (h *Host) ServeObjects(src object.Source) {
	h.host.SetStreamHandler(h.protos.fetch, func(s network.Stream) { h.handleFetch(s, src) })
}

func (h *Host) handleFetch(s network.Stream, src object.Source) {
	defer h.recoverStream(s)
	from := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(fetchHeaderTimeout))
	br := bufio.NewReader(s)
	var req fetchRequest
	if err := ReadMsg(br, &req, maxFetchRequest); err != nil {
		h.streamFailed(s, from, err)
		return
	}
	if req.Key == "" {
		h.streamFailed(s, from, fmt.Errorf("%w: empty key", ErrMalformed))
		return
	}
	defer h.protectFetch(from)()
	ctx, cancel := context.WithCancel(object.WithRequester(h.ctx, from.String()))
	defer cancel()
	meta, body, err := src.OpenForPeer(ctx, req.Key)
	if err != nil {
		h.refuseFetch(s, from, req.Key, err)
		return
	}
	defer body.Close()
	h.sendObject(s, from, req.Key, meta, body)
}

// refuseFetch answers a fetch whose object the source could not open. A
// source with no free slot (object.ErrBusy) refuses as the resource manager
// does, with a reset carrying StreamResourceLimitExceeded, so the asking
// node treats both alike: it waits or asks another holder.
func (h *Host) refuseFetch(s network.Stream, from peer.ID, key string, err error) {
	if errors.Is(err, object.ErrBusy) {
		_ = s.ResetWithError(network.StreamResourceLimitExceeded)
		return
	}
	hdr := fetchHeader{Status: fetchFailed, Msg: "object unavailable", Size: -1}
	if errors.Is(err, object.ErrNotFound) {
		hdr.Status, hdr.Msg = fetchNotFound, "not found"
	} else {
		h.log.Debug("fetch: source failed", "key", key, "peer", from, "err", err)
	}
	if WriteMsg(s, &hdr) != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// sendObject writes the header, the chunks and the trailer of one object.
//
// A stored copy's size and hash are stated up front, and its body is not
// hashed here: the store's reader fails rather than end on bytes that do
// not match the recorded hash (ObjectSource), so the trailer repeats the
// recorded hash. Only a download in progress is hashed as it is sent.
func (h *Host) sendObject(s network.Stream, from peer.ID, key string, meta object.Meta, body io.Reader) {
	hdr := fetchHeader{Status: fetchOK, Meta: toWireMeta(meta), Size: -1}
	stated := meta.SHA256 != [32]byte{}
	if stated {
		hdr.Size, hdr.SHA256 = meta.Size, meta.SHA256[:]
	}
	if err := WriteMsg(s, &hdr); err != nil {
		_ = s.Reset()
		return
	}
	var sum hash.Hash
	if !stated {
		sum = object.NewBodyHash()
	}
	total, srcErr, werr := sendChunks(s, body, sum)
	if werr != nil {
		_ = s.Reset()
		return
	}
	tr := fetchTrailer{Size: total}
	switch {
	case srcErr != nil:
		h.log.Debug("fetch: source stopped", "key", key, "peer", from, "err", srcErr)
		tr.Err = "source download failed"
	case stated:
		if total != meta.Size {
			// The receiver sees the mismatch and drops the copy.
			h.log.Error("fetch: stored object does not match its recorded size", "key", key, "size", total, "want_size", meta.Size)
		}
		tr.SHA256 = meta.SHA256[:]
	default:
		tr.SHA256 = sum.Sum(nil)
	}
	_ = s.SetWriteDeadline(time.Now().Add(fetchIdleTimeout))
	if _, err := s.Write([]byte{0}); err != nil {
		_ = s.Reset()
		return
	}
	if err := WriteMsg(s, &tr); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// sendChunks copies body to s as length-prefixed chunks, adding each to
// sum when it is not nil: the bytes sent, and the error of the source
// (srcErr) or of the stream (werr) that ended the copy early.
func sendChunks(s network.Stream, body io.Reader, sum hash.Hash) (total int64, srcErr, werr error) {
	buf := make([]byte, binary.MaxVarintLen64+fetchChunkSize)
	for {
		n, rerr := body.Read(buf[binary.MaxVarintLen64:])
		if n > 0 {
			if sum != nil {
				sum.Write(buf[binary.MaxVarintLen64 : binary.MaxVarintLen64+n])
			}
			total += int64(n)
			// One write per chunk: the prefix goes right before the data.
			var pre [binary.MaxVarintLen64]byte
			k := binary.PutUvarint(pre[:], uint64(n))
			start := binary.MaxVarintLen64 - k
			copy(buf[start:], pre[:k])
			_ = s.SetWriteDeadline(time.Now().Add(fetchIdleTimeout))
			if _, err := s.Write(buf[start : binary.MaxVarintLen64+n]); err != nil {
				return total, nil, err
			}
		}
		if rerr == io.EOF {
			return total, nil, nil
		}
		if rerr != nil {
			return total, rerr, nil
		}
	}
}

// FetchObject asks peer from for the object stored under key. The returned
// Meta has Size and SHA256 as the sender stated them (Size -1 and a zero
// hash when it was still downloading). The body streams as the sender
// sends; Read returns io.EOF only after the byte count and SHA-256 matched
// what the sender stated, and an error wrapping ErrBadObject (the peer is
// penalised and dropped) if they did not — so commit to the store only
// after io.EOF. A missing object is reported as an error wrapping
// object.ErrNotFound. Close the body in every case.
//
// When the connection the request went out on turns out dead before the
// header arrived (the link watch closed it), the request is sent once more
// over a fresh route, typically through a relay (up to fetchRouteAttempts
// routes in all). With a Budget, the body comes in through the download
// cap, counted as its origin site's traffic.
func (h *Host) FetchObject(ctx context.Context, from, key string) (object.Meta, io.ReadCloser, error) {
	id, err := peer.Decode(from)
	if err != nil {
		return object.Meta{}, nil, fmt.Errorf("p2p: fetch %q: %w", key, err)
	}
	m, body, err := h.fetchObject(ctx, id, key)
	if err != nil {
		return m, body, err
	}
	return m, h.receiveShaped(ctx, coralurl.SiteOf(m.URL), body), nil
}

func (h *Host) fetchObject(ctx context.Context, from peer.ID, key string) (object.Meta, io.ReadCloser, error) {
	for attempt := 1; ; attempt++ {
		meta, body, linkDied, err := h.fetchOnce(ctx, from, key)
		if err == nil || !linkDied || attempt == fetchRouteAttempts || ctx.Err() != nil ||
			errors.Is(err, ErrBadObject) || errors.Is(err, ErrMalformed) {
			return meta, body, err
		}
		proxy.TraceFrom(ctx).Step("link to %s died: retrying on another route", proxy.ShortPeer(from.String()))
	}
}

// fetchOnce is one attempt of FetchObject; linkDied reports that it failed
// because a connection it was using was closed meanwhile.
func (h *Host) fetchOnce(ctx context.Context, from peer.ID, key string) (_ object.Meta, _ io.ReadCloser, linkDied bool, _ error) {
	release := h.protectFetch(from)
	meta, body, linkDied, err := h.fetchOnceProtected(ctx, from, key)
	if err != nil {
		release()
		return meta, nil, linkDied, err
	}
	body.release = release
	return meta, body, false, nil
}

// fetchOnceProtected is fetchOnce while the connections to from are
// protected from trimming.
func (h *Host) fetchOnceProtected(ctx context.Context, from peer.ID, key string) (_ object.Meta, _ *fetchBody, linkDied bool, _ error) {
	if err := h.ensureConnected(ctx, from); err != nil {
		return object.Meta{}, nil, false, err
	}
	if _, err := h.emulateDelay(ctx, from); err != nil {
		return object.Meta{}, nil, false, fmt.Errorf("p2p: fetch %q from %s: %w", key, from, err)
	}
	// Opening a stream may wait for the peer's protocol answer: a dead
	// link stalls here already.
	conns := h.host.Network().ConnsToPeer(from)
	unwatch := h.watchConns(conns)
	s, err := h.host.NewStream(network.WithAllowLimitedConn(ctx, "coral-fetch"), from, h.protos.fetch)
	unwatch()
	if err != nil {
		died := slices.ContainsFunc(conns, network.Conn.IsClosed)
		return object.Meta{}, nil, died, fmt.Errorf("p2p: fetch %q from %s: open stream: %w", key, from, markBusy(err))
	}
	conn := s.Conn()
	if relay, ok := relayOf(conn.RemoteMultiaddr()); ok {
		proxy.TraceFrom(ctx).Step("route to %s: via relay %s", proxy.ShortPeer(from.String()), proxy.ShortPeer(relay.String()))
	}
	meta, body, err := h.fetchOn(ctx, s, from, key)
	return meta, body, err != nil && conn.IsClosed(), err
}

// markBusy marks a refusal for lack of a slot with object.ErrBusy: the
// peer's resource manager (or its source) reset the stream with
// StreamResourceLimitExceeded, or this node's own limits refused to open it.
func markBusy(err error) error {
	var se *network.StreamError
	if (errors.As(err, &se) && se.ErrorCode == network.StreamResourceLimitExceeded) ||
		errors.Is(err, network.ErrResourceLimitExceeded) {
		return fmt.Errorf("%w: %w", object.ErrBusy, err)
	}
	return err
}

// fetchOn sends the request on s and reads the header.
func (h *Host) fetchOn(ctx context.Context, s network.Stream, from peer.ID, key string) (object.Meta, *fetchBody, error) {
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	fail := func(err error) (object.Meta, *fetchBody, error) {
		stop()
		_ = s.Reset()
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadObject) {
			err = cerr
		}
		return object.Meta{}, nil, fmt.Errorf("p2p: fetch %q from %s: %w", key, from, markBusy(err))
	}
	_ = s.SetDeadline(time.Now().Add(fetchHeaderTimeout))
	if err := WriteMsg(s, &fetchRequest{Key: key}); err != nil {
		return fail(err)
	}
	_ = s.CloseWrite()
	br := bufio.NewReaderSize(s, fetchChunkSize)
	var hdr fetchHeader
	unwatch := h.watchConns([]network.Conn{s.Conn()})
	err := ReadMsg(br, &hdr, maxFetchHeader)
	unwatch()
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			h.scorer.penalise(from, penaltyMalformed, "fetch header: "+err.Error())
		}
		return fail(err)
	}
	switch hdr.Status {
	case fetchOK:
	case fetchNotFound:
		stop()
		_ = s.Close()
		return object.Meta{}, nil, fmt.Errorf("p2p: fetch %q from %s: %w", key, from, object.ErrNotFound)
	case fetchFailed:
		stop()
		_ = s.Close()
		return object.Meta{}, nil, fmt.Errorf("p2p: fetch %q: %w", key, &RemoteError{Peer: from.String(), Msg: hdr.Msg})
	default:
		h.scorer.penalise(from, penaltyMalformed, "fetch header: unknown status")
		return fail(fmt.Errorf("%w: unknown status %d", ErrMalformed, hdr.Status))
	}
	if hdr.Meta == nil || hdr.Size < -1 || (len(hdr.SHA256) != 0 && len(hdr.SHA256) != sha256.Size) ||
		(hdr.Size >= 0) != (len(hdr.SHA256) != 0) {
		h.scorer.penalise(from, penaltyMalformed, "fetch header: inconsistent")
		return fail(fmt.Errorf("%w: inconsistent fetch header", ErrMalformed))
	}
	if hdr.Meta.Key != "" && hdr.Meta.Key != key {
		h.scorer.penalise(from, penaltyBadObject, "fetch: answered with another object")
		return fail(fmt.Errorf("%w: sender answered with key %q", ErrBadObject, hdr.Meta.Key))
	}
	meta := hdr.Meta.meta()
	meta.Key = key
	meta.Size = hdr.Size
	copy(meta.SHA256[:], hdr.SHA256)
	return meta, &fetchBody{
		h: h, s: s, br: br, from: from, stop: stop,
		statedSize: hdr.Size, statedHash: hdr.SHA256, sum: object.NewBodyHash(),
	}, nil
}

// bodyStream is the part of network.Stream a fetchBody uses.
type bodyStream interface {
	SetReadDeadline(time.Time) error
	Reset() error
	Close() error
}

// fetchBody reads chunks and verifies the object at the end.
type fetchBody struct {
	h    *Host
	s    bodyStream
	br   *bufio.Reader
	from peer.ID
	stop func() bool
	// release ends the connection protection (protectFetch); nil in tests.
	release func()

	statedSize int64
	statedHash []byte
	sum        hash.Hash
	total      int64
	remaining  int

	mu   sync.Mutex // Close may race with a Read blocked in the stream
	err  error
	done bool
}

func (b *fetchBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	err := b.err
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for b.remaining == 0 {
		_ = b.s.SetReadDeadline(time.Now().Add(fetchIdleTimeout))
		n, err := readFrameLen(b.br, maxFetchChunk)
		if err != nil {
			return 0, b.fail(err)
		}
		if n == 0 {
			return 0, b.finish()
		}
		b.remaining = n
	}
	if len(p) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= n
	b.total += int64(n)
	b.sum.Write(p[:n])
	if b.statedSize >= 0 && b.total > b.statedSize {
		return 0, b.bad(fmt.Sprintf("more than the stated %d bytes", b.statedSize))
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, b.fail(err)
	}
	return n, nil
}

// Hash implements object.HashingBody: the body is hashed here, once, as
// it streams in, and its receiver keeps this digest rather than hash the
// bytes again.
func (b *fetchBody) Hash() hash.Hash { return object.CloneHash(b.sum) }

func (b *fetchBody) finish() error {
	_ = b.s.SetReadDeadline(time.Now().Add(fetchIdleTimeout))
	var tr fetchTrailer
	if err := ReadMsg(b.br, &tr, maxFetchTrailer); err != nil {
		return b.fail(err)
	}
	if tr.Err != "" {
		return b.fail(&RemoteError{Peer: b.from.String(), Msg: tr.Err})
	}
	got := b.sum.Sum(nil)
	switch {
	case tr.Size != b.total:
		return b.bad(fmt.Sprintf("sent %d bytes, trailer states %d", b.total, tr.Size))
	case b.statedSize >= 0 && b.statedSize != b.total:
		return b.bad(fmt.Sprintf("sent %d bytes, header stated %d", b.total, b.statedSize))
	case !bytes.Equal(tr.SHA256, got):
		return b.bad("SHA-256 differs from the trailer's")
	case b.statedHash != nil && !bytes.Equal(b.statedHash, got):
		return b.bad("SHA-256 differs from the header's")
	}
	b.mu.Lock()
	b.done = true
	b.err = io.EOF
	b.mu.Unlock()
	b.end()
	_ = b.s.Close()
	return io.EOF
}

// bad records a verification failure: the peer is penalised (and, this
// being a lie rather than a glitch, dropped and blocked).
func (b *fetchBody) bad(why string) error {
	b.h.scorer.penalise(b.from, penaltyBadObject, "fetch: "+why)
	return b.fail(fmt.Errorf("%w: %s", ErrBadObject, why))
}

func (b *fetchBody) fail(err error) error {
	if errors.Is(err, ErrMalformed) {
		b.h.scorer.penalise(b.from, penaltyMalformed, "fetch body: "+err.Error())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = fmt.Errorf("p2p: fetch from %s: %w", b.from, err)
	}
	b.end()
	_ = b.s.Reset()
	return b.err
}

// end stops watching the request's context and ends the protection.
func (b *fetchBody) end() {
	b.stop()
	if b.release != nil {
		b.release()
	}
}

// protectFetch keeps libp2p's connection manager from trimming the
// connections to p while an object transfer runs on them (both ends). In a
// flash crowd at 100 nodes each node passes the high watermark (ConnHigh)
// and a trim closed transfers mid-body: their receivers resumed from the
// origin. Each transfer has its own tag, so one ending does not unprotect
// another; release is idempotent.
func (h *Host) protectFetch(p peer.ID) (release func()) { return h.protect(p, fetchProtectTag) }

// protect protects the connections to p under a tag of its own (prefix and
// a sequence number) until release.
func (h *Host) protect(p peer.ID, prefix string) (release func()) {
	tag := fmt.Sprintf("%s-%d", prefix, h.fetchSeq.Add(1))
	cm := h.host.ConnManager()
	cm.Protect(p, tag)
	var once sync.Once
	return func() { once.Do(func() { cm.Unprotect(p, tag) }) }
}

// fetchProtectTag prefixes the connection-manager tags of transfers.
const fetchProtectTag = "coral-fetch"

// Close releases the stream; closing before io.EOF abandons the transfer.
func (b *fetchBody) Close() error {
	b.mu.Lock()
	done := b.done
	if b.err == nil {
		b.err = errors.New("p2p: fetch body closed")
	}
	b.mu.Unlock()
	b.end()
	if !done {
		_ = b.s.Reset()
	}
	return nil
}
