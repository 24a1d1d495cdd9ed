package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/coralcdn/coral/core/object"
)

// unit is a convenient large-body size for tests: well past inlineMax, so
// bodies of a few units are files.
const unit = 64 << 10

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// openStore opens a store in dir that is closed when the test ends.
func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// body returns size deterministic bytes for (key, gen), so a reader can
// tell which generation it got without keeping copies.
func body(key string, gen, size int) []byte {
	seed := sha256.Sum256(fmt.Appendf(nil, "%s/%d", key, gen))
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(b)
	return b
}

// put stores data under key in pieces of step bytes.
func put(t testing.TB, s *Store, key string, data []byte, meta Meta) Meta {
	t.Helper()
	w := s.Create(key, 0)
	writePieces(t, w, data, 10_000)
	meta.Size = int64(len(data))
	m, err := w.Commit(meta)
	if err != nil {
		t.Fatalf("Commit %q: %v", key, err)
	}
	return m
}

func writePieces(t testing.TB, w object.Writer, data []byte, step int) {
	t.Helper()
	for len(data) > 0 {
		n := min(step, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		data = data[n:]
	}
}

// get reads key fully and checks the body against its meta.
func get(t testing.TB, s *Store, key string) (Meta, []byte, error) {
	t.Helper()
	m, b, err := s.Get(key)
	if err != nil {
		return m, nil, err
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if int64(len(data)) != m.Size || b.Size() != m.Size {
		t.Fatalf("%q: read %d bytes, meta says %d, body says %d", key, len(data), m.Size, b.Size())
	}
	if sha256.Sum256(data) != m.SHA256 {
		t.Fatalf("%q: body hash differs from meta", key)
	}
	return m, data, nil
}

func mustGet(t testing.TB, s *Store, key string, want []byte) Meta {
	t.Helper()
	m, data, err := get(t, s, key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("Get %q: body of %d bytes differs from the %d expected", key, len(data), len(want))
	}
	return m
}

func mustMissing(t testing.TB, s *Store, key string) {
	t.Helper()
	if _, err := s.Stat(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat %q: err = %v, want ErrNotFound", key, err)
	}
	if _, _, err := s.Get(key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get %q: err = %v, want ErrNotFound", key, err)
	}
}

// assertNoOrphans checks that the bodies on disk are exactly those of the
// stored objects: nothing a failed, aborted or replaced write left behind.
func assertNoOrphans(t testing.TB, s *Store) {
	t.Helper()
	onDisk := map[bodyRef]bool{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefixInline)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(prefixInline)+8 {
				return fmt.Errorf("malformed inline key %q", k)
			}
			onDisk[bodyRef{ver: binary.BigEndian.Uint64(k[len(prefixInline):]), inline: true}] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := s.listBodyFiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !f.ok {
			t.Errorf("stray file %s", f.path)
		}
		onDisk[bodyRef{ver: f.ver}] = true
	}
	s.mu.Lock()
	live := map[bodyRef]bool{}
	for _, e := range s.index {
		if e.body.size > 0 {
			live[bodyRef{ver: e.body.ver, inline: e.body.inline}] = true
		}
	}
	s.mu.Unlock()
	for r := range onDisk {
		if !live[r] {
			t.Errorf("body %+v on disk but not referenced", r)
		}
	}
	for r := range live {
		if !onDisk[r] {
			t.Errorf("body %+v referenced but not on disk", r)
		}
	}
}
