package object

import (
	"crypto/sha256"
	"hash"
	"io"
	"sync/atomic"
)

// HashingBody is a body that hashes itself as it streams in and checks the
// digest against its sender's before it reports io.EOF (a peer's body: see
// p2p.Host.FetchObject), so its receiver need not hash it again: it keeps
// Hash's digest for the store (Writer.CallerHashes).
type HashingBody interface {
	io.ReadCloser
	// Hash returns a copy of the SHA-256 state over the bytes read so far:
	// its Sum is their digest, and a receiver that continues the body
	// from elsewhere (the origin) writes the rest into it. It returns nil
	// when the body does not hash itself after all (a wrapper of one that
	// does not).
	Hash() hash.Hash
}

// HashOf is r's Hash when r hashes itself, else nil.
func HashOf(r io.Reader) hash.Hash {
	if hb, ok := r.(HashingBody); ok {
		return hb.Hash()
	}
	return nil
}

// bodyHashed counts the body bytes hashed by NewBodyHash's hashes in this
// process, so tests can count how often a transfer hashes a body.
var bodyHashed atomic.Int64

// NewBodyHash is the SHA-256 every body hash uses (store, proxy, p2p):
// counted, so that a test can tell how many times a body was hashed.
func NewBodyHash() hash.Hash { return &countedHash{Hash: sha256.New()} }

// BodyBytesHashed is the number of body bytes hashed in this process so
// far (by NewBodyHash's hashes): a transfer of n bytes that hashes the body
// once adds n.
func BodyBytesHashed() int64 { return bodyHashed.Load() }

type countedHash struct{ hash.Hash }

func (c *countedHash) Write(p []byte) (int, error) {
	bodyHashed.Add(int64(len(p)))
	return c.Hash.Write(p)
}

// Clone copies the state (sha256 implements hash.Cloner), so a receiver
// can continue a body's hash without hashing its first bytes again.
func (c *countedHash) Clone() (hash.Cloner, error) {
	inner, err := c.Hash.(hash.Cloner).Clone()
	if err != nil {
		return nil, err
	}
	return &countedHash{Hash: inner}, nil
}

// CloneHash returns an independent copy of h's state.
func CloneHash(h hash.Hash) hash.Hash {
	c, err := h.(hash.Cloner).Clone()
	if err != nil {
		panic("object: cannot clone a SHA-256 state: " + err.Error()) // sha256 always can
	}
	return c
}
