package store

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"sync"

	"github.com/coralcdn/coral/core/object"
)

var errWriterDone = errors.New("store: writer already committed or aborted")

// Writer receives a new body for a key. Nothing becomes visible until Commit;
// the previous version stays in place until then, and for good if the Writer
// is aborted, fails, or its process dies.
type Writer struct {
	s   *Store
	key string
	max int64
	ver uint64

	mu  sync.Mutex
	buf []byte // the body while it fits inline
	f   *os.File
	bw  *bufio.Writer
	n   int64
	h   hash.Hash // nil after CallerHashes
	// unchecked counts file bytes written since free space was checked.
	unchecked int64
	err       error // sticky failure
	done      bool
}

// Create starts a new body for key. maxBytes <= 0 means no per-object cap.
// On a disk below the watermark (see Admit) the Writer fails at once with
// ErrDiskFull.
func (s *Store) Create(key string, maxBytes int64) object.Writer {
	w := &Writer{s: s, key: key, max: maxBytes, ver: s.lastVer.Add(1), h: object.NewBodyHash()}
	if err := s.space.admit(); err != nil {
		w.err = fmt.Errorf("%w: not storing %q", err, key)
	}
	return w
}

// Write appends p to the body. Past the Writer's cap it fails with
// ErrTooLarge and the Writer can no longer be committed.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	if _, err := w.s.enter(); err != nil {
		return 0, err
	}
	defer w.s.leave()
	if w.max > 0 && w.n+int64(len(p)) > w.max {
		w.err = fmt.Errorf("%w: %q is over %d bytes", ErrTooLarge, w.key, w.max)
		return 0, w.err
	}
	if w.f == nil && len(w.buf)+len(p) <= inlineMax {
		w.buf = append(w.buf, p...)
	} else {
		if w.unchecked += int64(len(p)); w.f == nil || w.unchecked >= checkEvery {
			// Stop before the disk fills, not when a write fails.
			w.unchecked = 0
			if err := w.s.space.admit(); err != nil {
				w.err = fmt.Errorf("%w: not storing %q", err, w.key)
				return 0, w.err
			}
		}
		if w.f == nil {
			if err := w.open(); err != nil {
				w.err = err
				return 0, err
			}
		}
		if _, err := w.bw.Write(p); err != nil {
			w.err = fmt.Errorf("store: write %q: %w", w.key, err)
			return 0, w.err
		}
	}
	if w.h != nil {
		w.h.Write(p)
	}
	w.n += int64(len(p))
	return len(p), nil
}

// CallerHashes implements object.Writer: the caller states the body's
// SHA-256 in Commit's meta, so Write does not hash. Call it before the
// first Write.
func (w *Writer) CallerHashes() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		w.h = nil
	}
}

// open moves the body from memory to its own file once it outgrows inlineMax.
func (w *Writer) open() error {
	path := w.s.bodyPath(w.ver)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrNotExist) {
		// First body in this fan-out directory.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("store: write %q: %w", w.key, err)
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return fmt.Errorf("store: write %q: %w", w.key, err)
	}
	w.f = f
	w.bw = bufio.NewWriterSize(f, 32<<10)
	_, err = w.bw.Write(w.buf)
	w.buf = nil
	if err != nil {
		return fmt.Errorf("store: write %q: %w", w.key, err)
	}
	return nil
}

// Commit makes the written body, with meta, the stored object for the key,
// atomically replacing the previous one (readers of the old one are
// unaffected). If meta.Size >= 0 and a different number of bytes was
// written it fails with ErrIncomplete and nothing changes; meta.Size < 0
// accepts whatever was written. The returned meta has Key, Size and SHA256
// set. The Writer is finished afterwards whatever the outcome.
func (w *Writer) Commit(meta Meta) (Meta, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return Meta{}, errWriterDone
	}
	w.done = true
	if w.err != nil {
		w.discard()
		return Meta{}, w.err
	}
	if meta.Size >= 0 && meta.Size != w.n {
		w.discard()
		return Meta{}, fmt.Errorf("%w: %q got %d of %d bytes", ErrIncomplete, w.key, w.n, meta.Size)
	}
	if w.h == nil && meta.SHA256 == ([32]byte{}) {
		w.discard()
		return Meta{}, fmt.Errorf("store: commit %q: the caller hashes the body but stated no SHA-256", w.key)
	}
	meta.Key = w.key
	meta.Size = w.n
	if w.h != nil {
		w.h.Sum(meta.SHA256[:0])
	}
	inline := w.f == nil
	if !inline {
		// The whole file is written (to the page cache, which survives a
		// kill -9) before the transaction that makes a meta point at it.
		err := w.bw.Flush()
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
		if err != nil {
			w.discardFile()
			return Meta{}, fmt.Errorf("store: write %q: %w", w.key, err)
		}
	}
	rec, err := w.s.codec.encode(meta, w.ver, inline)
	if err != nil {
		w.discard()
		return Meta{}, err
	}
	body := bodyRef{ver: w.ver, inline: inline, size: w.n}
	if err := w.s.install(w.key, body, rec, w.buf); err != nil {
		w.discard()
		if !inline {
			w.discardFile()
		}
		return Meta{}, err
	}
	w.buf = nil
	if !inline {
		w.s.markVerified(w.key, w.ver) // hashed as it was written (here or by the caller)
	}
	return meta, nil
}

// Abort discards the Writer; the previous version stays untouched. It is a
// no-op after Commit or a previous Abort.
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	w.discard()
}

func (w *Writer) discard() {
	w.buf = nil
	if w.f != nil {
		_ = w.f.Close()
		w.f, w.bw = nil, nil
		w.discardFile()
	}
}

func (w *Writer) discardFile() {
	if err := os.Remove(w.s.bodyPath(w.ver)); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.s.log.Debug("removing aborted body failed; Open will retry", "key", w.key, "err", err)
	}
}
