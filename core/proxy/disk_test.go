package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// diskEnv is a proxy on a real store whose free space the test sets.
func diskEnv(t *testing.T, free *atomic.Int64) *env {
	t.Helper()
	e := newEnv(t, nil)
	st, err := store.Open(t.TempDir(), store.Options{
		Logger: quiet(), MinFreeBytes: 256 << 20,
		FreeBytes: func() (int64, error) { return free.Load(), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(e.p.opts, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = p.Close() })
	e.st, e.p, e.srv = st, p, srv
	return e
}

// A disk below the watermark: large objects (past the spool's memory part)
// reach visitors whole and are not stored; once there is room again they
// are.
func TestNearlyFullDiskPassesObjectsThrough(t *testing.T) {
	var free atomic.Int64
	free.Store(100 << 20)
	e := diskEnv(t, &free)
	big := string(bytes.Repeat([]byte("0123456789abcdef"), 64<<10)) // 1 MiB
	o := newOrigin(t, e.clock, static(big, "Cache-Control", "max-age=600"))

	expect(t, "first, disk nearly full", e.get(o, "/big"), 200, CacheMiss, big)
	expect(t, "second, disk nearly full", e.get(o, "/big"), 200, CacheMiss, big)
	if _, _, ok := e.stored(o.canon("/big")); ok {
		t.Fatal("stored an object below the watermark")
	}
	if n := o.hits.Load(); n != 2 {
		t.Fatalf("origin hits = %d, want 2 (nothing cached)", n)
	}

	free.Store(1 << 30)
	expect(t, "after space came back", e.get(o, "/big"), 200, CacheMiss, big)
	testkit.Eventually(t, 10*time.Second, "the object to be stored", func() bool { _, _, ok := e.stored(o.canon("/big")); return ok })
	expect(t, "from the cache", e.get(o, "/big"), 200, CacheHit, big)
}

// The disk crosses the watermark in the middle of a body that was being
// stored and spooled: the visitor still gets every byte.
func TestDiskFillingMidBodyKeepsTheVisitorsBody(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	e := diskEnv(t, &free)
	half := bytes.Repeat([]byte("x"), 2<<20)
	resume := make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Length", strconv.Itoa(2*len(half)))
		w.Write(half)
		w.(http.Flusher).Flush()
		<-resume
		w.Write(half)
	})
	resp := e.do(http.MethodGet, o.host(), "/mid", nil)
	defer resp.Body.Close()
	first := make([]byte, len(half))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first half: %v", err)
	}
	free.Store(10 << 20) // another program filled the disk
	close(resume)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || len(rest) != len(half) {
		t.Fatalf("second half: %d bytes, %v; want %d", len(rest), err, len(half))
	}
	if _, _, ok := e.stored(o.canon("/mid")); ok {
		t.Fatal("stored an object while the disk was full")
	}
}

// A spool told there is no room never spills to disk, and one whose disk
// fails turns into a pipe: readers attached so far get the whole body.
func TestSpoolWithoutDiskBecomesAPipe(t *testing.T) {
	cases := []struct {
		name string
		dir  string
		room func() error
	}{
		{"no room", "", func() error { return store.ErrDiskFull }},
		{"disk fails", "/nonexistent/coral-spool", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir
			if dir == "" {
				dir = t.TempDir()
			}
			s := newSpool(dir, 16, 1<<20, time.Second)
			s.room = c.room
			var trouble atomic.Int32
			s.onDiskTrouble = func(error) { trouble.Add(1) }
			ctx := context.Background()
			rd, err := s.NewReader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			for i := range 10 {
				chunk := bytes.Repeat([]byte{byte('a' + i)}, 7)
				want.Write(chunk)
				if err := s.Write(ctx, chunk); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			s.Finish(nil)
			got, err := io.ReadAll(rd)
			if err != nil || !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("reader got %q, %v; want %q", got, err, want.Bytes())
			}
			rd.Close()
			if s.file != nil || trouble.Load() != 1 {
				t.Fatalf("file %v, disk trouble reported %d times; want no file, once", s.file, trouble.Load())
			}
			if _, err := s.NewReader(ctx); !errors.Is(err, errSpoolGone) {
				t.Fatalf("a late reader joined a piped spool: %v", err)
			}
		})
	}
}

// Visitors that joined a download being spooled to disk all get the whole
// body when the disk crosses the watermark in the middle of it.
func TestJoinedVisitorsGetWholeBodyWhenDiskFills(t *testing.T) {
	var free atomic.Int64
	free.Store(1 << 30)
	e := diskEnv(t, &free)
	half := bytes.Repeat([]byte("y"), 1<<20)
	resume := make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Length", strconv.Itoa(2*len(half)))
		w.Write(half)
		w.(http.Flusher).Flush()
		<-resume
		w.Write(half)
	})
	type got struct {
		n   int
		err error
	}
	results := make(chan got, 3)
	visit := func() {
		resp := e.do(http.MethodGet, o.host(), "/joined", nil)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		results <- got{len(b), err}
	}
	go visit()
	testkit.Eventually(t, 10*time.Second, "the origin request", func() bool { return o.hits.Load() == 1 })
	go visit()
	go visit()
	testkit.Eventually(t, 10*time.Second, "two visitors to join the download", func() bool { return e.p.Stats().Coalesced == 2 })
	free.Store(10 << 20)
	close(resume)
	for range 3 {
		r := recv(t, "a visitor's body", results)
		if r.err != nil || r.n != 2*len(half) {
			t.Fatalf("a visitor got %d of %d bytes, %v", r.n, 2*len(half), r.err)
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Fatalf("origin hits = %d, want 1", n)
	}
}
