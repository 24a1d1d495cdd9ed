package store

import (
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/coralcdn/coral/core/object"
)

var errBodyClosed = errors.New("store: body already closed")

// getAttempts bounds how often Get retries when key changes while it looks
// it up.
const getAttempts = 8

// Body streams one stored body. It reads the version that was current when
// Get returned, whatever happens to the key afterwards, and verifies length
// and SHA-256 at the end: a damaged body ends in an error, never in io.EOF.
// A file body this process already verified is read without the hash (see
// verify.go: the scrub rechecks it); its length is still checked. Read and
// Close may be called from different goroutines.
type Body struct {
	s    *Store
	key  string
	ver  uint64
	size int64
	want [32]byte

	mu   sync.Mutex
	data []byte   // unread rest of an inline body
	f    *os.File // file body
	got  int64
	h    hash.Hash
	held bool // holds a reference on ver in s.refs
	// verified: a file body this process already hashed whole and found
	// intact; it is read without hashing (the scrub rechecks it).
	verified bool
	closed   bool
	err      error // sticky: io.EOF or the failure
}

// Get returns the meta and body of key. The body is a consistent snapshot
// even if key is replaced or deleted while it is read; the caller must Close
// it. Get counts as an access for eviction.
func (s *Store) Get(key string) (Meta, object.Body, error) {
	for attempt := 0; ; attempt++ {
		var (
			m      Meta
			rec    record
			inline []byte
		)
		err := s.view(func(txn *badger.Txn) error {
			item, err := txn.Get(metaKey(key))
			if err != nil {
				return err
			}
			err = item.Value(func(v []byte) error {
				var err error
				m, rec, err = s.decodeFor(key, v)
				return err
			})
			if err != nil || !rec.Inline || rec.Size == 0 {
				return err
			}
			// An inline body comes from the same snapshot as its meta.
			item, err = txn.Get(inlineKey(rec.Version))
			if errors.Is(err, badger.ErrKeyNotFound) {
				return fmt.Errorf("%w: inline body missing", errCorrupt)
			}
			if err != nil {
				return err
			}
			inline, err = item.ValueCopy(nil)
			return err
		})
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			return Meta{}, nil, ErrNotFound
		case errors.Is(err, errCorrupt):
			s.dropBroken(key, rec.Version, err)
			return Meta{}, nil, ErrNotFound
		case err != nil:
			return Meta{}, nil, fmt.Errorf("store: get %q: %w", key, err)
		}

		b := &Body{s: s, key: key, ver: rec.Version, size: rec.Size, want: m.SHA256, data: inline, h: object.NewBodyHash()}
		s.mu.Lock()
		e := s.index[key]
		if e == nil || e.body.ver != rec.Version {
			// Replaced or deleted between our snapshot and now, so a file
			// body may already be gone. Wait for that change to finish and
			// look again.
			s.mu.Unlock()
			if attempt >= getAttempts {
				return Meta{}, nil, ErrNotFound
			}
			s.wmu.Lock()
			s.wmu.Unlock() //nolint:staticcheck // a barrier: waits for the change in progress
			continue
		}
		s.touchLocked(e)
		if !rec.Inline {
			s.refs[b.ver]++ // keeps the file until Close
			b.held = true
			b.verified = e.verified
		}
		s.mu.Unlock()

		if rec.Inline && int64(len(inline)) != rec.Size {
			b.corrupt(fmt.Errorf("%w: inline body has %d bytes, meta says %d", errCorrupt, len(inline), rec.Size))
			return Meta{}, nil, ErrNotFound
		}
		if !rec.Inline {
			f, err := os.Open(s.bodyPath(b.ver))
			if err != nil {
				b.Close()
				if errors.Is(err, os.ErrNotExist) {
					b.corrupt(fmt.Errorf("%w: body file missing", errCorrupt))
					return Meta{}, nil, ErrNotFound
				}
				return Meta{}, nil, fmt.Errorf("store: get %q: %w", key, err)
			}
			b.f = f
		}
		return m, b, nil
	}
}

// Size is the body length in bytes.
func (b *Body) Size() int64 { return b.size }

// Read implements io.Reader.
func (b *Body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.err != nil {
		return 0, b.err
	}
	left := b.size - b.got
	if left == 0 {
		b.err = b.checkSum()
		return 0, b.err
	}
	if int64(len(p)) > left {
		p = p[:left]
	}
	var n int
	if b.f == nil {
		n = copy(p, b.data)
		b.data = b.data[n:]
	} else {
		var err error
		n, err = b.f.Read(p)
		switch {
		case n == 0 && errors.Is(err, io.EOF):
			b.err = b.corrupt(fmt.Errorf("%w: body file ends after %d of %d bytes", errCorrupt, b.got, b.size))
			return 0, b.err
		case n == 0 && err != nil:
			b.err = fmt.Errorf("store: read %q: %w", b.key, err)
			return 0, b.err
		}
	}
	if !b.verified {
		b.h.Write(p[:n])
	}
	b.got += int64(n)
	return n, nil
}

// checkSum ends a complete read: io.EOF when the body is intact (a file
// body is then known verified), the corruption otherwise.
func (b *Body) checkSum() error {
	if b.verified {
		return io.EOF
	}
	var sum [32]byte
	b.h.Sum(sum[:0])
	if sum != b.want {
		return b.corrupt(fmt.Errorf("%w: body hash mismatch", errCorrupt))
	}
	if b.f != nil {
		b.s.markVerified(b.key, b.ver)
	}
	return io.EOF
}

// Close releases the body; it never fails.
func (b *Body) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	b.data = nil
	if b.f != nil {
		_ = b.f.Close()
		b.f = nil
	}
	b.release()
	return nil
}

func (b *Body) release() {
	if b.held {
		b.held = false
		b.s.unref(b.ver)
	}
}

// corrupt reports a damaged body and removes it from the store so it is
// fetched again rather than served broken.
func (b *Body) corrupt(err error) error {
	err = fmt.Errorf("store: read %q: %w", b.key, err)
	b.s.dropBroken(b.key, b.ver, err)
	return err
}
