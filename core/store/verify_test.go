package store

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
)

// TestSection: sections of inline and file bodies, verified or not, give
// exactly the requested bytes; sections outside the body are refused.
func TestSection(t *testing.T) {
	for _, size := range []int{100, 3 * unit} {
		dir := t.TempDir()
		s := openStore(t, dir, Options{})
		data := body("k", 1, size)
		put(t, s, "k", data, Meta{})
		for _, reopened := range []bool{false, true} {
			if reopened { // nothing verified in a new process
				s.Close()
				s = openStore(t, dir, Options{})
			}
			for _, sec := range [][2]int64{{0, int64(size)}, {0, 1}, {int64(size) - 1, 1}, {7, 50}, {int64(size), 0}} {
				_, b, err := s.Get("k")
				if err != nil {
					t.Fatal(err)
				}
				r, err := b.Section(sec[0], sec[1])
				if err != nil {
					t.Fatalf("size %d section %v: %v", size, sec, err)
				}
				got, err := io.ReadAll(r)
				b.Close()
				if err != nil || !bytes.Equal(got, data[sec[0]:sec[0]+sec[1]]) {
					t.Fatalf("size %d section %v (reopened %v): %d bytes, err %v", size, sec, reopened, len(got), err)
				}
			}
		}
		for _, bad := range [][2]int64{{-1, 1}, {0, int64(size) + 1}, {int64(size), 1}, {3, -1}} {
			_, b, err := s.Get("k")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Section(bad[0], bad[1]); !errors.Is(err, errBadSection) {
				t.Errorf("size %d section %v: err %v, want errBadSection", size, bad, err)
			}
			b.Close()
		}
	}
}

// TestSectionDamaged: a body damaged before this process verified it is
// never handed out, whole or in part, and is dropped.
func TestSectionDamaged(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	data := body("k", 1, 3*unit)
	put(t, s, "k", data, Meta{})
	ver := indexed(s, "k").body.ver
	s.Close()
	flipped := bytes.Clone(data)
	flipped[len(flipped)-1] ^= 1
	if err := os.WriteFile(s.bodyPath(ver), flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	_, b, err := s.Get("k")
	if err != nil {
		t.Fatal(err)
	}
	if r, err := b.Section(0, 10); !errors.Is(err, errCorrupt) {
		t.Fatalf("section of a damaged body: reader %v, err %v; want errCorrupt", r, err)
	}
	b.Close()
	mustMissing(t, s, "k")
}

// TestScrub: the scrub finds a body damaged after it was verified, drops
// it, and leaves intact ones (and their access order) alone.
func TestScrub(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	good, bad := body("good", 1, 3*unit), body("bad", 1, 3*unit)
	put(t, s, "good", good, Meta{})
	put(t, s, "bad", bad, Meta{})
	put(t, s, "small", []byte("inline"), Meta{})
	mustGet(t, s, "bad", bad) // verified now
	flipped := bytes.Clone(bad)
	flipped[unit] ^= 0x40
	if err := os.WriteFile(s.bodyPath(indexed(s, "bad").body.ver), flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	before := indexed(s, "good").atime
	checked, dropped := s.Scrub(1 << 30)
	if checked != 2 || dropped != 1 {
		t.Fatalf("Scrub checked %d and dropped %d, want 2 and 1", checked, dropped)
	}
	mustMissing(t, s, "bad")
	if indexed(s, "good").atime != before {
		t.Error("the scrub counted as an access")
	}
	mustGet(t, s, "good", good)
	mustGet(t, s, "small", []byte("inline"))
	assertNoOrphans(t, s)
}

// indexed is a copy of key's index entry.
func indexed(s *Store, key string) entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.index[key]
}

// TestOpenVerified: a body opened by generation, without its meta, only
// while the object is unchanged and its file verified.
func TestOpenVerified(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	data := body("k", 1, 3*unit)
	put(t, s, "k", data, Meta{})
	put(t, s, "small", []byte("inline"), Meta{})
	gen, ok := s.Generation("k")
	if !ok {
		t.Fatal("no generation for a stored key")
	}
	b, ok := s.OpenVerified("k", gen)
	if !ok {
		t.Fatal("OpenVerified refused a verified file body at its generation")
	}
	sec, err := b.Section(0, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(sec); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("OpenVerified body: %d bytes, err %v", len(got), err)
	}
	b.Close()
	smallGen, _ := s.Generation("small")
	for _, c := range []struct {
		name string
		key  string
		gen  uint64
	}{{"old generation", "k", gen - 1}, {"inline body", "small", smallGen}, {"missing key", "none", gen}} {
		if b, ok := s.OpenVerified(c.key, c.gen); ok {
			b.Close()
			t.Errorf("%s: OpenVerified accepted", c.name)
		}
	}
	_ = s.UpdateMeta("k", func(m *Meta) error { m.URL = "changed"; return nil })
	if b, ok := s.OpenVerified("k", gen); ok {
		b.Close()
		t.Error("OpenVerified accepted the generation before a meta update")
	}
	s.Close()
	s = openStore(t, dir, Options{}) // a new process has verified nothing
	gen, _ = s.Generation("k")
	if b, ok := s.OpenVerified("k", gen); ok {
		b.Close()
		t.Error("OpenVerified accepted a body not verified by this process")
	}
}
