package store

import (
	"slices"
	"testing"
)

// A smaller budget set while the store is open evicts the least recently
// used objects at once; a larger one (or none) keeps what is there.
func TestSetMaxBytesEvictsAtOnce(t *testing.T) {
	const size = 10_000
	per := perObjectBytes(t, size)
	var evicted []string
	s, err := Open(t.TempDir(), Options{OnEvict: func(k string) { evicted = append(evicted, k) }, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, k := range []string{"k-a", "k-b", "k-c", "k-d"} {
		put(t, s, k, body(k, 1, size), Meta{})
	}
	s.SetMaxBytes(0)
	if len(evicted) != 0 || s.Usage().Objects != 4 {
		t.Fatalf("no limit evicted %v", evicted)
	}
	s.SetMaxBytes(2*per + per/2)
	if !slices.Equal(evicted, []string{"k-a", "k-b"}) {
		t.Fatalf("evicted %v, want [k-a k-b]", evicted)
	}
	if u := s.Usage(); u.MaxBytes != 2*per+per/2 || u.Bytes > u.MaxBytes || u.Objects != 2 {
		t.Fatalf("Usage %+v after lowering the budget", u)
	}
	mustGet(t, s, "k-d", body("k-d", 1, size))
	assertNoOrphans(t, s)
}
