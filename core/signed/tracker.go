package signed

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"
)

// Tracker holds the document of one kind in force on one node: the last
// one accepted, kept in a file so that it applies across restarts with or
// without the network. It is safe for concurrent use.
type Tracker[D any] struct {
	kind Kind[D]
	key  ed25519.PublicKey // nil: no key trusted
	path string

	mu      sync.Mutex
	current *D
	raw     []byte // the signed envelope of current, to pass on to peers
}

// NewTracker loads the last accepted document from path, if any. trusted
// may be nil (the tracker then accepts nothing). A stored document that no
// longer verifies (the key changed, the file was damaged) is not applied,
// and the error says why; the tracker is usable either way.
func NewTracker[D any](kind Kind[D], path string, trusted ed25519.PublicKey) (*Tracker[D], error) {
	t := &Tracker[D]{kind: kind, key: trusted, path: path}
	if trusted == nil {
		return t, nil
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return t, fmt.Errorf("%s: %w", kind.Name, err)
	}
	doc, err := kind.Open(raw, trusted)
	if err != nil {
		return t, fmt.Errorf("%s: stored document %s not applied: %w", kind.Name, path, err)
	}
	t.current, t.raw = &doc, raw
	return t, nil
}

// Trusts reports whether the tracker trusts a key.
func (t *Tracker[D]) Trusts() bool { return t.key != nil }

// Key is the trusted key (nil if none).
func (t *Tracker[D]) Key() ed25519.PublicKey { return t.key }

// Offer considers a signed document from anywhere (a peer, a command, the
// config). It is accepted — stored, then in force — only if it verifies
// with the trusted key, is well-formed and has a higher serial than the
// one in force. Otherwise the state stays as it was and the error (wrapping
// one of the Err values, or Kind.NoKey) says why.
func (t *Tracker[D]) Offer(raw []byte) (D, error) {
	var zero D
	doc, err := t.kind.Open(raw, t.key)
	if err != nil {
		return zero, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current != nil {
		if s, in := t.kind.Serial(doc), t.kind.Serial(*t.current); s <= in {
			return zero, fmt.Errorf("%w: serial %d, in force %d", ErrNotNewer, s, in)
		}
	}
	if err := WriteAtomic(t.path, raw); err != nil {
		return zero, fmt.Errorf("%s: keeping the document: %w", t.kind.Name, err)
	}
	t.current, t.raw = &doc, append([]byte(nil), raw...)
	return doc, nil
}

// Current is the document in force and its signed form; ok is false when
// there is none.
func (t *Tracker[D]) Current() (doc D, raw []byte, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.current == nil {
		return doc, nil, false
	}
	return *t.current, t.raw, true
}

// WriteAtomic replaces path with data (through a temporary file, synced,
// and a rename: renameio), so a crash or a power cut leaves the old or the
// new content, never half.
func WriteAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, 0o600)
}
