package proxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// randomBody is size reproducible bytes.
func randomBody(size int) string {
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)}).Read(b)
	return string(b)
}

// TestRangeOnCachedObject: single ranges of a cached object get 206 with the
// right bytes and Content-Range, unsatisfiable ones 416, If-Range decides
// between the range and the whole 200, several ranges get the whole 200.
// Run for an inline body (10 KiB) and a file body (100 KiB, sent with
// sendfile).
func TestRangeOnCachedObject(t *testing.T) {
	for _, size := range []int{10 << 10, 100 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			e := newEnv(t, nil)
			full := randomBody(size)
			lm := e.clock.Now().Add(-time.Hour).Format(http.TimeFormat)
			o := newOrigin(t, e.clock, static(full, "Cache-Control", "max-age=600", "Etag", `"v1"`,
				"Last-Modified", lm, "Accept-Ranges", "bytes", "Content-Type", "application/octet-stream"))
			expect(t, "miss", e.get(o, "/obj"), 200, CacheMiss, full)
			n := int64(size)
			tests := []struct {
				name   string
				kv     []string
				status int
				first  int64 // the expected body is full[first:last+1]
				last   int64
				crange string
			}{
				{"first 100", []string{"Range", "bytes=0-99"}, 206, 0, 99, fmt.Sprintf("bytes 0-99/%d", n)},
				{"last 100", []string{"Range", "bytes=-100"}, 206, n - 100, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-100, n-1, n)},
				{"from 5000", []string{"Range", "bytes=5000-"}, 206, 5000, n - 1, fmt.Sprintf("bytes 5000-%d/%d", n-1, n)},
				{"past the end cut", []string{"Range", fmt.Sprintf("bytes=%d-%d", n-10, n+500)}, 206, n - 10, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
				{"unsatisfiable", []string{"Range", fmt.Sprintf("bytes=%d-", n+100)}, 416, 0, -1, fmt.Sprintf("bytes */%d", n)},
				{"if-range etag", []string{"Range", "bytes=0-9", "If-Range", `"v1"`}, 206, 0, 9, fmt.Sprintf("bytes 0-9/%d", n)},
				{"if-range other etag", []string{"Range", "bytes=0-9", "If-Range", `"v0"`}, 200, 0, n - 1, ""},
				{"if-range weak etag", []string{"Range", "bytes=0-9", "If-Range", `W/"v1"`}, 200, 0, n - 1, ""},
				{"if-range date", []string{"Range", "bytes=0-9", "If-Range", lm}, 206, 0, 9, fmt.Sprintf("bytes 0-9/%d", n)},
				{"if-range other date", []string{"Range", "bytes=0-9", "If-Range", e.clock.Now().Format(http.TimeFormat)}, 200, 0, n - 1, ""},
				{"several ranges", []string{"Range", "bytes=0-9,20-29"}, 200, 0, n - 1, ""},
				{"other unit", []string{"Range", "items=0-9"}, 200, 0, n - 1, ""},
				{"no range", nil, 200, 0, n - 1, ""},
			}
			for _, tt := range tests {
				r := e.get(o, "/obj", tt.kv...)
				expect(t, tt.name, r, tt.status, CacheHit, full[tt.first:tt.last+1])
				if got := r.header.Get("Content-Range"); got != tt.crange {
					t.Errorf("%s: Content-Range %q, want %q", tt.name, got, tt.crange)
				}
				if got, want := r.header.Get("Content-Length"), strconv.FormatInt(tt.last-tt.first+1, 10); got != want {
					t.Errorf("%s: Content-Length %q, want %q", tt.name, got, want)
				}
				if tt.status != 416 && r.header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("%s: Accept-Ranges %q", tt.name, r.header.Get("Accept-Ranges"))
				}
			}
			head := e.fetch(http.MethodHead, o.host(), "/obj", "Range", "bytes=0-9")
			expect(t, "HEAD with Range", head, 200, CacheHit, "")
			if n := o.hits.Load(); n != 1 {
				t.Errorf("origin hits = %d, want 1", n)
			}
		})
	}
}

// gatedOrigin sends the first part bytes of body at once and the rest only
// once release is closed.
func gatedOrigin(body string, part int, release chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Etag", `"g1"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = io.WriteString(w, body[:part])
		http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, body[part:])
	}
}

// TestRangeWhileDownloading: a range of an object on its way in (the
// visitor's own miss, or a download another visitor started) is served as
// soon as its bytes arrive; the object is fetched once, whole, and cached.
func TestRangeWhileDownloading(t *testing.T) {
	e := newEnv(t, nil)
	full := randomBody(100 << 10)
	o := newOrigin(t, e.clock, nil)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	o.set(gatedOrigin(full, 20<<10, release))

	first := make(chan result, 1)
	go func() { first <- e.get(o, "/d", "Range", "bytes=0-99") }()
	r := recv(t, "the range of a miss, before the rest of the body exists", first)
	expect(t, "range of a miss", r, 206, CacheMiss, full[:100])
	if got := r.header.Get("Content-Range"); got != fmt.Sprintf("bytes 0-99/%d", len(full)) {
		t.Errorf("Content-Range %q", got)
	}
	joined := make(chan result, 1)
	go func() { joined <- e.get(o, "/d", "Range", "bytes=5000-5099") }()
	expect(t, "range of a download in progress", recv(t, "a joined range", joined), 206, CacheMiss, full[5000:5100])
	tail := make(chan result, 1)
	go func() { tail <- e.get(o, "/d", "Range", "bytes=-100") }()
	testkit.Eventually(t, 10*time.Second, "the tail range to join the download", func() bool { return e.p.Stats().Coalesced == 2 })
	close(release)
	expect(t, "range past what had arrived", recv(t, "the tail range", tail), 206, CacheMiss, full[len(full)-100:])
	testkit.Eventually(t, 10*time.Second, "the object stored", func() bool { _, b, ok := e.stored(o.canon("/d")); return ok && b == full })
	expect(t, "whole, from the cache", e.get(o, "/d"), 200, CacheHit, full)
	if n := o.hits.Load(); n != 1 {
		t.Errorf("origin hits = %d, want 1", n)
	}
	if rq := o.lastRequest(); rq.Header.Get("Range") != "" {
		t.Errorf("the origin was asked for a range (%q), not the whole object", rq.Header.Get("Range"))
	}
}

// TestRangeOfPeerCopy: a range asked while the object comes from another
// proxy is served from the peer's transfer like any download.
func TestRangeOfPeerCopy(t *testing.T) {
	full := randomBody(50 << 10)
	peers := &scriptedPeers{}
	e := newEnv(t, func(o *Options) { o.Peers = peers })
	o := newOrigin(t, e.clock, status(500, "the origin must not be asked"))
	peers.fetch = func(ctx context.Context, key, canon string) (store.Meta, io.ReadCloser, error) {
		m := peerCopy(key, canon, full, "Cache-Control", "max-age=600", "Date", e.clock.Now().Format(http.TimeFormat))
		return m, io.NopCloser(strings.NewReader(full)), nil
	}
	r := e.get(o, "/peer", "Range", "bytes=100-199")
	expect(t, "range of a peer copy", r, 206, CachePeer, full[100:200])
	testkit.Eventually(t, 10*time.Second, "the peer copy stored", func() bool { _, b, ok := e.stored(o.canon("/peer")); return ok && b == full })
	expect(t, "range from the cache", e.get(o, "/peer", "Range", "bytes=-10"), 206, CacheHit, full[len(full)-10:])
	if n := o.hits.Load(); n != 0 {
		t.Errorf("origin hits = %d, want 0", n)
	}
}

// TestRangeOfOversizeObject: an object larger than max_object_bytes is not
// stored, so once the proxy knows its size, ranges of it go to the origin
// (which answers 206) instead of a whole download each.
func TestRangeOfOversizeObject(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxObjectBytes = 10 << 10 })
	full := randomBody(40 << 10)
	mod := e.clock.Now().Add(-time.Hour)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		http.ServeContent(w, r, "big.bin", mod, strings.NewReader(full))
	})
	r := e.get(o, "/big", "Range", "bytes=30000-30099")
	expect(t, "first range (whole download, range cut from it)", r, 206, CacheMiss, full[30000:30100])
	if rq := o.lastRequest(); rq.Header.Get("Range") != "" {
		t.Fatalf("first request: origin saw Range %q; the size was not known yet", rq.Header.Get("Range"))
	}
	r = e.get(o, "/big", "Range", "bytes=-100")
	expect(t, "second range (passed to the origin)", r, 206, CacheMiss, full[len(full)-100:])
	if rq := o.lastRequest(); rq.Header.Get("Range") != "bytes=-100" {
		t.Errorf("second request: origin saw Range %q, want bytes=-100", rq.Header.Get("Range"))
	}
	if got := r.header.Get("Content-Range"); got != fmt.Sprintf("bytes %d-%d/%d", len(full)-100, len(full)-1, len(full)) {
		t.Errorf("Content-Range %q", got)
	}
	expect(t, "whole object still streams", e.get(o, "/big"), 200, CacheMiss, full)
	if _, _, ok := e.stored(o.canon("/big")); ok {
		t.Error("an object over max_object_bytes was stored")
	}
}
