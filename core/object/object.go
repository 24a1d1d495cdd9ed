// Package object holds what crosses between the object store and the
// packages that use it — the proxy, cooperation and the p2p transfer: an
// object's meta, the body and writer interfaces the store implements, the
// store's errors, and the Source a node serves its peers from. It links
// nothing but the standard library, so the users of the store do not link
// Badger (only core/store does; test/layers checks it).
package object

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"
)

// Key is the digest of a canonical URL, computed once where a request
// enters: its hex form (String) is the key the object is stored under and
// the form in logs and on the wire, its bytes the key of the URL's
// referrals in the DSHT (dsht.ID(key)).
type Key [32]byte

// KeyOf is the key of a canonical URL (or of any other name kept in the
// DSHT): its SHA-256.
func KeyOf(canonicalURL string) Key { return sha256.Sum256([]byte(canonicalURL)) }

// String is the key's hex form, the store's key for the object.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// Meta is everything the proxy needs to serve a stored response.
type Meta struct {
	Key          string            // cache key the object is stored under (opaque to the store)
	URL          string            // canonical origin URL
	Status       int               // HTTP status code of the stored response
	Header       http.Header       // stored response header (hop-by-hop already removed by the proxy)
	RequestTime  time.Time         // when the request that produced it was sent (RFC 9111 age calc)
	ResponseTime time.Time         // when the response arrived
	Size         int64             // body length in bytes, set by Commit
	SHA256       [32]byte          // body hash, set by Commit
	Extra        map[string]string // proxy's own annotations (e.g. vary header list)
}

// Errors of the store, kept here so its users test for them without
// linking it. The texts are the store's.
var (
	ErrNotFound   = errors.New("store: object not found")
	ErrIncomplete = errors.New("store: body length does not match")
	ErrTooLarge   = errors.New("store: object exceeds size limit")
	// ErrDiskFull: the store's filesystem is below its free-space
	// watermark, so the store admits no new objects (or, closer to full,
	// writes nothing).
	ErrDiskFull = errors.New("store: disk nearly full")
	// ErrBusy: the node that holds the object refused to send it for lack
	// of a free slot (its libp2p resource limits or its own); the copy is
	// there, so waiting or asking another holder beats the origin.
	ErrBusy = errors.New("peer busy: no free slot to send the object")
)

// Body streams one stored body and verifies its length and SHA-256 at the
// end: a damaged body ends in an error, never in io.EOF. Read and Close may
// be called from different goroutines.
type Body interface {
	io.ReadCloser
	// Size is the body length in bytes.
	Size() int64
	// Section returns a reader of the n bytes at off, for sending all or
	// part of the body; nothing may have been read before, and afterwards
	// only Close. A body not verified yet is hashed whole first.
	Section(off, n int64) (io.Reader, error)
	// InFile reports whether the body is read from a file (not inline),
	// which net/http can send with sendfile.
	InFile() bool
}

// Writer receives a new body for a key. Nothing becomes visible until
// Commit; past its cap Write fails with ErrTooLarge.
type Writer interface {
	io.Writer
	// Commit makes the body current under meta (Key, Size and SHA256 are
	// set from the body, SHA256 from meta after CallerHashes) and returns
	// the meta stored.
	Commit(meta Meta) (Meta, error)
	// Abort drops the body; the previous version stays.
	Abort()
	// CallerHashes tells the writer, before the first Write, that the
	// caller hashes the body itself (a peer's body, verified against its
	// sender's digest as it streamed in: see HashingBody) and states the
	// SHA-256 in Commit's meta, so the body is not hashed twice. The store
	// records that digest as the body's.
	CallerHashes()
}

// Source serves cached objects to peers: core/proxy implements it, p2p
// calls it for each fetch another node makes. OpenForPeer returns a stored
// copy, or an in-flight download streamed as bytes arrive (Meta.SHA256
// zero: size and hash not known yet), or an error wrapping ErrNotFound.
type Source interface {
	OpenForPeer(ctx context.Context, key string) (Meta, io.ReadCloser, error)
}

type requesterKey struct{}

// WithRequester tells OpenForPeer which peer asks (its ID as text, as
// referrals carry it): a download waiting on that same peer for the same
// object must not make it wait in turn.
func WithRequester(ctx context.Context, peer string) context.Context {
	return context.WithValue(ctx, requesterKey{}, peer)
}

// RequesterOf is the peer WithRequester named, or "".
func RequesterOf(ctx context.Context) string {
	s, _ := ctx.Value(requesterKey{}).(string)
	return s
}
