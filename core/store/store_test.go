package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestWriteCommit(t *testing.T) {
	old := body("k", 1, 3*unit+5)
	tests := []struct {
		name     string
		old      bool  // store old first
		size     int   // bytes written
		cap      int64 // Create's maxBytes
		metaSize int64 // meta.Size passed to Commit (ignored when abort)
		abort    bool
		writeErr error // expected from Write
		err      error // expected from Commit
		wantNew  bool  // afterwards the new body is stored (else the old one or nothing)
	}{
		{name: "empty body", size: 0, metaSize: 0, wantNew: true},
		{name: "one byte", size: 1, metaSize: 1, wantNew: true},
		{name: "largest inline body", size: inlineMax, metaSize: inlineMax, wantNew: true},
		{name: "smallest file body", size: inlineMax + 1, metaSize: inlineMax + 1, wantNew: true},
		{name: "large file body", size: 11*unit + 7, metaSize: 11*unit + 7, wantNew: true},
		{name: "unknown length accepted", size: 5000, metaSize: -1, wantNew: true},
		{name: "replace", old: true, size: 2000, metaSize: 2000, wantNew: true},
		{name: "replace large with large", old: true, size: 9*unit + 1, metaSize: 9*unit + 1, wantNew: true},
		{name: "replace large with inline", old: true, size: 100, metaSize: 100, wantNew: true},
		{name: "replace with empty", old: true, size: 0, metaSize: 0, wantNew: true},
		{name: "abort keeps old", old: true, size: 9*unit + 1, abort: true},
		{name: "abort without old", size: 6 * unit, abort: true},
		{name: "abort inline", old: true, size: 10, abort: true},
		{name: "short body keeps old", old: true, size: 9 * unit, metaSize: 9*unit + 1, err: ErrIncomplete},
		{name: "long body keeps old", old: true, size: 2000, metaSize: 1999, err: ErrIncomplete},
		{name: "short body without old", size: 10, metaSize: 11, err: ErrIncomplete},
		{name: "at the cap", old: true, size: 1000, cap: 1000, metaSize: 1000, wantNew: true},
		{name: "over the cap keeps old", old: true, size: 5*unit + 1, cap: 5 * unit, metaSize: -1, writeErr: ErrTooLarge, err: ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), Options{})
			if tc.old {
				put(t, s, "k", old, Meta{Status: 200})
			}
			data := body("k", 2, tc.size)
			w := s.Create("k", tc.cap)
			var werr error
			for p := data; len(p) > 0 && werr == nil; {
				n := min(7000, len(p))
				_, werr = w.Write(p[:n])
				p = p[n:]
			}
			if !errors.Is(werr, tc.writeErr) {
				t.Fatalf("Write error = %v, want %v", werr, tc.writeErr)
			}
			if tc.abort {
				w.Abort()
				w.Abort() // idempotent
			} else {
				m, err := w.Commit(Meta{Status: 200, URL: "http://example.com/", Size: tc.metaSize})
				if !errors.Is(err, tc.err) {
					t.Fatalf("Commit error = %v, want %v", err, tc.err)
				}
				if err == nil && (m.Key != "k" || m.Size != int64(tc.size) || m.SHA256 != sha256.Sum256(data)) {
					t.Fatalf("Commit returned key %q size %d, hash match %v", m.Key, m.Size, m.SHA256 == sha256.Sum256(data))
				}
				if _, err := w.Commit(Meta{Size: -1}); err == nil {
					t.Fatal("second Commit succeeded")
				}
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Fatal("Write after the writer finished succeeded")
			}
			switch {
			case tc.wantNew:
				m := mustGet(t, s, "k", data)
				if m.URL != "http://example.com/" || m.Status != 200 {
					t.Fatalf("stored meta %+v", m)
				}
			case tc.old:
				mustGet(t, s, "k", old)
			default:
				mustMissing(t, s, "k")
			}
			assertNoOrphans(t, s)
			u := s.Usage()
			wantObjects := 0
			if tc.wantNew || tc.old {
				wantObjects = 1
			}
			if u.Objects != wantObjects {
				t.Fatalf("Usage().Objects = %d, want %d", u.Objects, wantObjects)
			}
		})
	}
}

func TestUsageCountsBodiesAndMetas(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxBytes: 1 << 30})
	put(t, s, "a", body("a", 1, 100_000), Meta{})
	put(t, s, "b", body("b", 1, 5), Meta{})
	u := s.Usage()
	if u.Objects != 2 || u.MaxBytes != 1<<30 {
		t.Fatalf("Usage = %+v", u)
	}
	if u.Bytes < 100_005 || u.Bytes > 100_005+diskBlock+1000 {
		t.Fatalf("Usage().Bytes = %d, want body bytes (files in whole blocks) plus a little meta", u.Bytes)
	}
	put(t, s, "a", body("a", 2, 10), Meta{})
	if u := s.Usage(); u.Bytes < 15 || u.Bytes > 15+1000 {
		t.Fatalf("after replace Usage().Bytes = %d", u.Bytes)
	}
}

func TestReaderSnapshot(t *testing.T) {
	old := body("k", 1, 5*unit+123)
	changes := []struct {
		name   string
		change func(t *testing.T, s *Store)
		after  []byte // body stored afterwards, nil = none
	}{
		{"replace", func(t *testing.T, s *Store) { put(t, s, "k", []byte("new"), Meta{}) }, []byte("new")},
		{"replace twice", func(t *testing.T, s *Store) {
			put(t, s, "k", body("k", 2, 3*unit), Meta{})
			put(t, s, "k", []byte("newer"), Meta{})
		}, []byte("newer")},
		{"delete", func(t *testing.T, s *Store) {
			if err := s.Delete("k"); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"evicted", func(t *testing.T, s *Store) {
			// Budget fits one large object: storing another evicts k.
			put(t, s, "other", body("other", 1, 5*unit), Meta{})
		}, nil},
	}
	for _, tc := range changes {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), Options{MaxBytes: 6 * unit})
			put(t, s, "k", old, Meta{})
			m, b, err := s.Get("k")
			if err != nil {
				t.Fatal(err)
			}
			head := make([]byte, 1000)
			if _, err := io.ReadFull(b, head); err != nil {
				t.Fatal(err)
			}
			tc.change(t, s)
			rest, err := io.ReadAll(b)
			if err != nil {
				t.Fatalf("reading the old body after %s: %v", tc.name, err)
			}
			if got := append(head, rest...); !bytes.Equal(got, old) || m.Size != int64(len(old)) {
				t.Fatalf("old reader got %d bytes that differ from the old body", len(got))
			}
			if tc.after != nil {
				mustGet(t, s, "k", tc.after)
			} else {
				mustMissing(t, s, "k")
			}
			b.Close()
			assertNoOrphans(t, s) // the old version is gone once its reader is
		})
	}
}

func TestReaderClosedEarlyReleasesVersion(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	put(t, s, "k", body("k", 1, 4*unit), Meta{})
	_, b1, err := s.Get("k")
	if err != nil {
		t.Fatal(err)
	}
	_, b2, err := s.Get("k")
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	oldPath := s.bodyPath(s.index["k"].body.ver)
	s.mu.Unlock()
	put(t, s, "k", []byte("new"), Meta{})
	// Kept while read, also where open files cannot be removed (Windows).
	if _, err := os.Stat(oldPath); err != nil {
		t.Fatalf("replaced body removed under its readers: %v", err)
	}
	b1.Close()
	if _, err := b1.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	if _, err := io.ReadAll(b2); err != nil {
		t.Fatalf("second reader: %v", err)
	}
	b2.Close()
	b2.Close()
	assertNoOrphans(t, s)
}

func TestUpdateMeta(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	data := body("k", 1, 2*unit+1)
	orig := put(t, s, "k", data, Meta{
		Status: 200,
		Header: http.Header{"Etag": {`"v1"`}, "Cache-Control": {"max-age=60"}},
	})
	before := s.Usage().Bytes

	resp := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	err := s.UpdateMeta("k", func(m *Meta) error {
		m.Header.Set("Cache-Control", "max-age=3600, and a much longer value than before")
		m.ResponseTime = resp
		m.Extra = map[string]string{"revalidated": "1"}
		m.Size, m.Key, m.SHA256 = 1, "other", [32]byte{} // tied to the body; must not stick
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := mustGet(t, s, "k", data)
	if got := m.Header.Get("Cache-Control"); got != "max-age=3600, and a much longer value than before" {
		t.Fatalf("Cache-Control = %q", got)
	}
	if m.Header.Get("Etag") != `"v1"` || !m.ResponseTime.Equal(resp) || m.Extra["revalidated"] != "1" {
		t.Fatalf("meta after update = %+v", m)
	}
	if m.Key != "k" || m.Size != orig.Size || m.SHA256 != orig.SHA256 {
		t.Fatalf("UpdateMeta changed body fields: %+v", m)
	}
	if after := s.Usage().Bytes; after <= before {
		t.Fatalf("Usage().Bytes %d -> %d; a longer meta should count", before, after)
	}

	boom := errors.New("boom")
	err = s.UpdateMeta("k", func(m *Meta) error {
		m.Status = 500
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateMeta error = %v, want the callback's", err)
	}
	if m, _ := s.Stat("k"); m.Status != 200 {
		t.Fatalf("failed UpdateMeta changed Status to %d", m.Status)
	}
	if err := s.UpdateMeta("missing", func(*Meta) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdateMeta(missing) = %v", err)
	}
	assertNoOrphans(t, s)
}

func TestUpdateMetaConcurrent(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	put(t, s, "k", []byte("body"), Meta{Extra: map[string]string{"n": "0"}})
	const workers, each = 4, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.UpdateMeta("k", func(m *Meta) error {
					n, _ := strconv.Atoi(m.Extra["n"])
					m.Extra["n"] = strconv.Itoa(n + 1)
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	m, err := s.Stat("k")
	if err != nil {
		t.Fatal(err)
	}
	if m.Extra["n"] != strconv.Itoa(workers*each) {
		t.Fatalf("counter = %s after %d increments: updates were lost", m.Extra["n"], workers*each)
	}
}

func TestDelete(t *testing.T) {
	var evicted []string
	s := openStore(t, t.TempDir(), Options{MaxBytes: 1 << 30, OnEvict: func(k string) { evicted = append(evicted, k) }})
	put(t, s, "a", body("a", 1, 3*unit), Meta{})
	put(t, s, "b", []byte("bee"), Meta{})
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	mustMissing(t, s, "a")
	mustGet(t, s, "b", []byte("bee"))
	if err := s.Delete("a"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if u := s.Usage(); u.Objects != 1 || u.Bytes > 1000 {
		t.Fatalf("Usage after delete = %+v", u)
	}
	if len(evicted) != 0 {
		t.Fatalf("OnEvict called on Delete: %v", evicted)
	}
	assertNoOrphans(t, s)
}

func TestEach(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	want := []string{"a", "b", "c", "d", "e"}
	for i, k := range want {
		put(t, s, k, body(k, 1, i*1000), Meta{URL: "http://x/" + k})
	}
	var got []string
	err := s.Each(func(m Meta) bool {
		if m.URL != "http://x/"+m.Key || m.Size != int64(len(got))*1000 {
			t.Errorf("Each gave %+v", m)
		}
		got = append(got, m.Key)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Fatalf("Each visited %v, want %v", got, want)
	}
	n := 0
	if err := s.Each(func(Meta) bool { n++; return n < 2 }); err != nil || n != 2 {
		t.Fatalf("Each after stop: n=%d err=%v", n, err)
	}
	// fn may use the store, e.g. to delete what it visits.
	if err := s.Each(func(m Meta) bool { return s.Delete(m.Key) == nil }); err != nil {
		t.Fatal(err)
	}
	if u := s.Usage(); u.Objects != 0 {
		t.Fatalf("%d objects left after deleting each", u.Objects)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	reqT := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	meta := Meta{
		URL:          "http://example.com/a?b=c",
		Status:       203,
		Header:       http.Header{"Content-Type": {"text/plain"}, "Vary": {"Accept", "Accept-Encoding"}},
		RequestTime:  reqT,
		ResponseTime: reqT.Add(time.Second),
		Extra:        map[string]string{"vary": "accept"},
	}
	objects := map[string][]byte{
		"empty": {},
		"small": []byte("hello"),
		"large": body("large", 1, 7*unit+3),
	}
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	committed := map[string]Meta{}
	for k, v := range objects {
		committed[k] = put(t, s, k, v, meta)
	}
	put(t, s, "gone", []byte("x"), meta)
	if err := s.Delete("gone"); err != nil {
		t.Fatal(err)
	}
	usage := s.Usage()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openStore(t, dir, Options{})
	for k, v := range objects {
		m := mustGet(t, s, k, v)
		want := committed[k]
		if !m.RequestTime.Equal(want.RequestTime) || !m.ResponseTime.Equal(want.ResponseTime) {
			t.Fatalf("%s: times %v %v, want %v %v", k, m.RequestTime, m.ResponseTime, want.RequestTime, want.ResponseTime)
		}
		m.RequestTime, m.ResponseTime = want.RequestTime, want.ResponseTime
		if !reflect.DeepEqual(m, want) {
			t.Fatalf("%s: meta after restart\n got %+v\nwant %+v", k, m, want)
		}
	}
	mustMissing(t, s, "gone")
	if got := s.Usage(); got != usage {
		t.Fatalf("Usage after restart %+v, before %+v", got, usage)
	}
	// New writes after a restart must not collide with old versions.
	put(t, s, "small", []byte("again"), Meta{})
	mustGet(t, s, "large", objects["large"])
	assertNoOrphans(t, s)
}

func TestLRUEviction(t *testing.T) {
	const size = 10_000
	per := perObjectBytes(t, size)
	dir := t.TempDir()
	var evicted []string
	opts := Options{MaxBytes: 3*per + per/2, OnEvict: func(k string) { evicted = append(evicted, k) }}
	s, err := Open(dir, Options{MaxBytes: opts.MaxBytes, OnEvict: opts.OnEvict, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k-a", "k-b", "k-c"} {
		put(t, s, k, body(k, 1, size), Meta{})
	}
	mustGet(t, s, "k-a", body("k-a", 1, size)) // a is now the most recent
	if _, err := s.Stat("k-b"); err != nil {   // Stat is not an access
		t.Fatal(err)
	}
	put(t, s, "k-d", body("k-d", 1, size), Meta{})
	put(t, s, "k-e", body("k-e", 1, size), Meta{})
	if !slices.Equal(evicted, []string{"k-b", "k-c"}) {
		t.Fatalf("evicted %v, want [k-b k-c]", evicted)
	}
	mustMissing(t, s, "k-b")
	mustMissing(t, s, "k-c")
	if u := s.Usage(); u.Bytes > opts.MaxBytes || u.Objects != 3 {
		t.Fatalf("Usage %+v over budget %d", u, opts.MaxBytes)
	}
	// Replacing counts as an access too.
	put(t, s, "k-a", body("k-a", 2, size), Meta{})
	mustGet(t, s, "k-d", body("k-d", 1, size))
	// LRU order now (oldest first): e, a, d.
	assertNoOrphans(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// The order survives a restart: a smaller budget evicts e first, then a.
	evicted = nil
	s = openStore(t, dir, Options{MaxBytes: per + per/2, OnEvict: opts.OnEvict})
	if !slices.Equal(evicted, []string{"k-e", "k-a"}) {
		t.Fatalf("evicted on reopen %v, want [k-e k-a]", evicted)
	}
	mustGet(t, s, "k-d", body("k-d", 1, size))

	// An object larger than the whole budget does not stay.
	evicted = nil
	put(t, s, "huge", body("huge", 1, 2*int(per)), Meta{})
	if !slices.Equal(evicted, []string{"k-d", "huge"}) {
		t.Fatalf("evicted %v, want [k-d huge]", evicted)
	}
	if u := s.Usage(); u.Objects != 0 || u.Bytes != 0 {
		t.Fatalf("Usage %+v, want empty", u)
	}
	assertNoOrphans(t, s)
}

// perObjectBytes measures what one object of size body bytes under a
// three-letter key costs in Usage().Bytes.
func perObjectBytes(t *testing.T, size int) int64 {
	s := openStore(t, t.TempDir(), Options{})
	put(t, s, "k-x", body("k-x", 1, size), Meta{})
	return s.Usage().Bytes
}

func TestCorruptMeta(t *testing.T) {
	valid := func(t *testing.T, s *Store) []byte {
		b, err := s.codec.encode(Meta{Key: "other"}, 1, false)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name   string
		record func(t *testing.T, s *Store) []byte
	}{
		{"garbage", func(*testing.T, *Store) []byte { return []byte("\x01not cbor at all") }},
		{"empty", func(*testing.T, *Store) []byte { return nil }},
		{"unknown format", func(*testing.T, *Store) []byte { return []byte{9, 0xa0} }},
		{"truncated", func(t *testing.T, s *Store) []byte { b := valid(t, s); return b[:len(b)/2] }},
		{"record of another key", valid},
	}
	for _, tc := range cases {
		for _, when := range []string{"running", "reopened"} {
			t.Run(tc.name+"/"+when, func(t *testing.T) {
				dir := t.TempDir()
				s, err := Open(dir, Options{Logger: quietLogger()})
				if err != nil {
					t.Fatal(err)
				}
				put(t, s, "k", body("k", 1, 2*unit), Meta{})
				put(t, s, "fine", []byte("fine"), Meta{})
				rec := tc.record(t, s)
				if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(metaKey("k"), rec) }); err != nil {
					t.Fatal(err)
				}
				if when == "reopened" {
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					s = openStore(t, dir, Options{})
				} else {
					t.Cleanup(func() { _ = s.Close() })
				}
				mustMissing(t, s, "k")
				n := 0
				if err := s.Each(func(Meta) bool { n++; return true }); err != nil || n != 1 {
					t.Fatalf("Each saw %d objects (err %v), want only the intact one", n, err)
				}
				err = s.db.View(func(txn *badger.Txn) error { _, err := txn.Get(metaKey("k")); return err })
				if !errors.Is(err, badger.ErrKeyNotFound) {
					t.Fatalf("corrupt record still stored: %v", err)
				}
				mustGet(t, s, "fine", []byte("fine"))
				if u := s.Usage(); u.Objects != 1 {
					t.Fatalf("Usage %+v, want the intact object only", u)
				}
				put(t, s, "k", []byte("fresh"), Meta{})
				mustGet(t, s, "k", []byte("fresh"))
			})
		}
	}
}

func TestCorruptBody(t *testing.T) {
	type damage func(t *testing.T, s *Store, ver uint64)
	setFile := func(data []byte) damage {
		return func(t *testing.T, s *Store, ver uint64) {
			if err := os.WriteFile(s.bodyPath(ver), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	setInline := func(data []byte) damage {
		return func(t *testing.T, s *Store, ver uint64) {
			err := s.db.Update(func(txn *badger.Txn) error {
				if data == nil {
					return txn.Delete(inlineKey(ver))
				}
				return txn.Set(inlineKey(ver), data)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	big := body("k", 1, 3*unit)
	flipped := bytes.Clone(big)
	flipped[2*unit] ^= 1
	cases := []struct {
		name    string
		size    int
		damage  damage
		getFail bool // detected by Get already
		reopen  bool // damaged while the store was closed
	}{
		{"file removed", 3 * unit, func(t *testing.T, s *Store, ver uint64) { os.Remove(s.bodyPath(ver)) }, true, false},
		{"file truncated", 3 * unit, setFile(big[:unit]), false, false},
		// A file body verified by this process is read without hashing
		// (the scrub catches later damage, see TestScrub); a store opened
		// again verifies each file body at its first read.
		{"file byte flipped while closed", 3 * unit, setFile(flipped), false, true},
		{"inline removed", 100, setInline(nil), true, false},
		{"inline shortened", 100, setInline([]byte("short")), true, false},
		{"inline byte flipped", 100, setInline(bytes.Repeat([]byte{'x'}, 100)), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, Options{})
			put(t, s, "k", big[:tc.size], Meta{})
			s.mu.Lock()
			ver := s.index["k"].body.ver
			s.mu.Unlock()
			if tc.reopen {
				s.Close()
				s = openStore(t, dir, Options{})
			}
			tc.damage(t, s, ver)
			_, b, err := s.Get("k")
			if tc.getFail {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Get of a damaged object: %v, want ErrNotFound", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				n, err := io.Copy(io.Discard, b)
				b.Close()
				if err == nil || !errors.Is(err, errCorrupt) {
					t.Fatalf("reading a damaged body gave %d bytes and err %v; want an error, not EOF", n, err)
				}
			}
			mustMissing(t, s, "k") // dropped so it is fetched again
			assertNoOrphans(t, s)
		})
	}
}

// TestConcurrentReplaceAndRead has readers verify every body they get while
// writers keep replacing and deleting the same keys.
func TestConcurrentReplaceAndRead(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{MaxBytes: 40 * unit})
	keys := []string{"a", "b", "c"}
	sizes := []int{0, 100, unit, 3*unit + 1, 6 * unit}
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 40 {
				key := keys[(w+i)%len(keys)]
				gen := w*1000 + i
				if i%9 == 8 {
					if err := s.Delete(key); err != nil {
						t.Error(err)
					}
					continue
				}
				data := body(key, gen, sizes[(i+w)%len(sizes)])
				wr := s.Create(key, 0)
				if _, err := wr.Write(data); err != nil {
					t.Error(err)
					return
				}
				if _, err := wr.Commit(Meta{Size: int64(len(data)), Extra: map[string]string{"gen": strconv.Itoa(gen)}}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for r := range 3 {
		wg.Go(func() {
			for i := range 150 {
				key := keys[(r+i)%len(keys)]
				m, b, err := s.Get(key)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				data, err := io.ReadAll(b)
				b.Close()
				if err != nil {
					t.Errorf("reading %s: %v", key, err)
					return
				}
				gen, _ := strconv.Atoi(m.Extra["gen"])
				if !bytes.Equal(data, body(key, gen, int(m.Size))) {
					t.Errorf("%s: body is not generation %d", key, gen)
					return
				}
			}
		})
	}
	wg.Wait()
	assertNoOrphans(t, s)
	if u := s.Usage(); u.Bytes > u.MaxBytes {
		t.Fatalf("Usage %+v over budget", u)
	}
}

func TestBadgerLogsStayQuiet(t *testing.T) {
	var buf bytes.Buffer
	log := slogText(&buf)
	dir := t.TempDir()
	for range 2 {
		s, err := Open(dir, Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		put(t, s, "k", []byte("v"), Meta{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if buf.Len() != 0 {
		t.Fatalf("opening and closing a healthy store logged at info level:\n%s", buf.String())
	}
}

func TestUseAfterClose(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	put(t, s, "k", body("k", 1, 3*unit), Meta{})
	_, b, err := s.Get("k")
	if err != nil {
		t.Fatal(err)
	}
	w := s.Create("w", 0)
	if _, err := w.Write(body("w", 1, unit)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A body opened before Close is still a complete snapshot.
	if data, err := io.ReadAll(b); err != nil || !bytes.Equal(data, body("k", 1, 3*unit)) {
		t.Fatalf("reading a body opened before Close: %d bytes, %v", len(data), err)
	}
	b.Close()
	if _, err := w.Write(body("w", 1, 5*unit)); err == nil {
		t.Fatal("Write after Close succeeded")
	}
	if _, err := s.Create("x", 0).Commit(Meta{Size: 0}); err == nil {
		t.Fatal("Commit after Close succeeded")
	}
	if _, _, err := s.Get("k"); err == nil {
		t.Fatal("Get after Close succeeded")
	}
	if _, err := s.Stat("k"); err == nil {
		t.Fatal("Stat after Close succeeded")
	}
	if err := s.Each(func(Meta) bool { return true }); err == nil {
		t.Fatal("Each after Close succeeded")
	}
	if err := s.UpdateMeta("k", func(*Meta) error { return nil }); err == nil {
		t.Fatal("UpdateMeta after Close succeeded")
	}
	if err := s.Delete("k"); err == nil {
		t.Fatal("Delete after Close succeeded")
	}
}

func TestUncleanShutdownChecksFileSizes(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	data := body("k", 1, 3*unit)
	put(t, s, "k", data, Meta{})
	put(t, s, "ok", body("ok", 1, 2*unit), Meta{})
	s.mu.Lock()
	path := s.bodyPath(s.index["k"].body.ver)
	s.mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What a power cut can do to a file whose meta reached the disk.
	if err := os.WriteFile(path, data[:unit], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatalf("no clean marker after Close: %v", err)
	}
	s = openStore(t, dir, Options{})
	if u := s.Usage(); u.Objects != 1 {
		t.Fatalf("Open kept %d objects, want only the intact one", u.Objects)
	}
	mustMissing(t, s, "k")
	mustGet(t, s, "ok", body("ok", 1, 2*unit))
	assertNoOrphans(t, s)
}

// TestManyLongKeys makes the store write and delete more key bytes at once
// than one Badger transaction takes: saving access times of many long keys
// at Close, and evicting all of them at Open.
func TestManyLongKeys(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 700
	key := func(i int) string { return strconv.Itoa(i) + "/" + strings.Repeat("k", 4000) }
	for i := range n {
		put(t, s, key(i), []byte("v"), Meta{})
	}
	for i := range n {
		mustGet(t, s, key(i), []byte("v"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	evicted := 0
	s = openStore(t, dir, Options{MaxBytes: 1, OnEvict: func(string) { evicted++ }})
	if u := s.Usage(); u.Objects != 0 || evicted != n {
		t.Fatalf("after shrinking the budget: %+v, %d evicted", u, evicted)
	}
}
