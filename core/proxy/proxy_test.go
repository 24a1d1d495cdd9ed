package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

func TestHitMissAge(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("hello", "Cache-Control", "max-age=60", "Content-Type", "text/plain"))

	r := e.get(o, "/a.txt")
	expect(t, "first", r, 200, CacheMiss, "hello")
	if !strings.Contains(r.header.Get("Via"), "1.1 "+testToken) {
		t.Errorf("Via = %q, want our token", r.header.Get("Via"))
	}
	if via := o.lastRequest().Header.Get("Via"); !strings.Contains(via, testToken) {
		t.Errorf("origin saw Via %q, want our token", via)
	}
	e.clock.Advance(30 * time.Second)
	r = e.get(o, "/a.txt")
	expect(t, "second", r, 200, CacheHit, "hello")
	if r.header.Get("Age") != "30" || r.header.Get("Content-Type") != "text/plain" || r.header.Get("Content-Length") != "5" {
		t.Errorf("hit header: %v", r.header)
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("origin fetched %d times, want 1", n)
	}
	// Another path is another object; the Host case does not matter.
	r = e.fetch("GET", strings.ToUpper(o.host()), "/a.txt")
	expect(t, "upper-case host", r, 200, CacheHit, "hello")
	expect(t, "other path", e.get(o, "/b.txt"), 200, CacheMiss, "hello")

	s := e.p.Stats()
	if s.Hits != 2 || s.Misses != 2 || s.OriginFetches != 2 || s.BytesServed != 20 || s.Requests != 4 {
		t.Errorf("stats: %+v", s)
	}
}

func TestHeuristicFreshness(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("x")) // no explicit freshness
	expect(t, "miss", e.get(o, "/"), 200, CacheMiss, "x")
	e.clock.Advance(11 * time.Hour)
	expect(t, "within heuristic_ttl", e.get(o, "/"), 200, CacheHit, "x")
	e.clock.Advance(2 * time.Hour)
	expect(t, "past heuristic_ttl: refetched", e.get(o, "/"), 200, CacheMiss, "x")

	off := newEnv(t, func(o *Options) { o.HeuristicTTL = Off })
	o2 := newOrigin(t, off.clock, static("y"))
	expect(t, "heuristic off", off.get(o2, "/"), 200, CacheMiss, "y")
	expect(t, "heuristic off again", off.get(o2, "/"), 200, CacheMiss, "y")
}

func TestRevalidate304Merge(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, nil)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Control", "max-age=100")
			w.Header().Set("X-Fresh", "yes")
			w.Header().Set("Etag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("X-Old", "kept")
		io.WriteString(w, "version one")
	})
	expect(t, "miss", e.get(o, "/r"), 200, CacheMiss, "version one")
	e.clock.Advance(20 * time.Second)
	r := e.get(o, "/r")
	expect(t, "revalidated", r, 200, CacheRevalidated, "version one")
	if r.header.Get("X-Fresh") != "yes" || r.header.Get("X-Old") != "kept" || r.header.Get("Cache-Control") != "max-age=100" {
		t.Errorf("merged header: %v", r.header)
	}
	if inm := o.lastRequest().Header.Get("If-None-Match"); inm != `"v1"` {
		t.Errorf("origin saw If-None-Match %q", inm)
	}
	e.clock.Advance(50 * time.Second)
	r = e.get(o, "/r")
	expect(t, "fresh again after merge", r, 200, CacheHit, "version one")
	if r.header.Get("Age") != "50" {
		t.Errorf("Age after merge = %q, want 50", r.header.Get("Age"))
	}
	if n := o.hits.Load(); n != 2 {
		t.Errorf("origin hits = %d, want 2", n)
	}
}

func TestRevalidateLastModifiedNewVersion(t *testing.T) {
	e := newEnv(t, nil)
	lm := e.clock.Now().Add(-time.Hour).Format(http.TimeFormat)
	var version atomic.Int32
	version.Store(1)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10")
		if version.Load() == 1 {
			w.Header().Set("Last-Modified", lm)
			if r.Header.Get("If-Modified-Since") == lm {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			io.WriteString(w, "one")
			return
		}
		io.WriteString(w, "two")
	})
	expect(t, "miss", e.get(o, "/"), 200, CacheMiss, "one")
	e.clock.Advance(11 * time.Second)
	expect(t, "304 by date", e.get(o, "/"), 200, CacheRevalidated, "one")
	version.Store(2)
	e.clock.Advance(11 * time.Second)
	expect(t, "changed", e.get(o, "/"), 200, CacheMiss, "two")
	expect(t, "new version stored", e.get(o, "/"), 200, CacheHit, "two")
}

func TestClientConditionalsAndHead(t *testing.T) {
	e := newEnv(t, nil)
	lm := e.clock.Now().Add(-time.Hour)
	o := newOrigin(t, e.clock, static("body!", "Cache-Control", "max-age=600", "Etag", `"e1"`,
		"Last-Modified", lm.Format(http.TimeFormat)))
	expect(t, "fill", e.get(o, "/c"), 200, CacheMiss, "body!")

	r := e.get(o, "/c", "If-None-Match", `"zz", "e1"`)
	expect(t, "INM", r, 304, CacheHit, "")
	if r.header.Get("Etag") != `"e1"` {
		t.Errorf("304 lacks ETag: %v", r.header)
	}
	expect(t, "INM mismatch", e.get(o, "/c", "If-None-Match", `"zz"`), 200, CacheHit, "body!")
	expect(t, "IMS", e.get(o, "/c", "If-Modified-Since", lm.Format(http.TimeFormat)), 304, CacheHit, "")
	expect(t, "IMS older", e.get(o, "/c", "If-Modified-Since", lm.Add(-time.Minute).Format(http.TimeFormat)), 200, CacheHit, "body!")

	h := e.fetch(http.MethodHead, o.host(), "/c")
	expect(t, "HEAD hit", h, 200, CacheHit, "")
	if h.header.Get("Content-Length") != "5" {
		t.Errorf("HEAD Content-Length = %q", h.header.Get("Content-Length"))
	}
	// A HEAD miss is fetched with GET, so the cache is filled for later.
	h = e.fetch(http.MethodHead, o.host(), "/head-first")
	expect(t, "HEAD miss", h, 200, CacheMiss, "")
	if m := o.lastRequest().Method; m != http.MethodGet {
		t.Errorf("origin saw %s for a HEAD miss, want GET", m)
	}
	// Conditionals are the proxy's business: they are not forwarded.
	if o.lastRequest().Header.Get("If-None-Match") != "" {
		t.Error("visitor's If-None-Match was forwarded")
	}
	if n := o.hits.Load(); n != 2 {
		t.Errorf("origin hits = %d, want 2", n)
	}
}

func TestRequestCacheControl(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, nil)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Etag", `"a"`)
		if r.Header.Get("If-None-Match") == `"a"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		io.WriteString(w, "A")
	})
	expect(t, "only-if-cached, absent", e.get(o, "/", "Cache-Control", "only-if-cached"), 504, "", "*")
	if o.hits.Load() != 0 {
		t.Fatal("only-if-cached reached the origin")
	}
	expect(t, "fill", e.get(o, "/"), 200, CacheMiss, "A")
	expect(t, "only-if-cached, present", e.get(o, "/", "Cache-Control", "only-if-cached"), 200, CacheHit, "A")
	expect(t, "no-cache", e.get(o, "/", "Cache-Control", "no-cache"), 200, CacheRevalidated, "A")
	expect(t, "pragma", e.get(o, "/", "Pragma", "no-cache"), 200, CacheRevalidated, "A")
	expect(t, "max-age=0", e.get(o, "/", "Cache-Control", "max-age=0"), 200, CacheRevalidated, "A")
	if n := o.hits.Load(); n != 4 {
		t.Errorf("origin hits = %d, want 4", n)
	}
}

func TestVary(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	})
	expect(t, "en miss", e.get(o, "/v", "Accept-Language", "en"), 200, CacheMiss, "lang=en")
	expect(t, "fr miss", e.get(o, "/v", "Accept-Language", "fr"), 200, CacheMiss, "lang=fr")
	expect(t, "en hit", e.get(o, "/v", "Accept-Language", "en"), 200, CacheHit, "lang=en")
	expect(t, "fr hit", e.get(o, "/v", "Accept-Language", "fr"), 200, CacheHit, "lang=fr")
	expect(t, "none miss", e.get(o, "/v"), 200, CacheMiss, "lang=")
	expect(t, "none hit", e.get(o, "/v"), 200, CacheHit, "lang=")
	if n := o.hits.Load(); n != 3 {
		t.Errorf("origin hits = %d, want 3", n)
	}

	star := newOrigin(t, e.clock, static("s", "Cache-Control", "max-age=600", "Vary", "*"))
	expect(t, "vary * first", e.get(star, "/"), 200, CacheMiss, "s")
	expect(t, "vary * never matches", e.get(star, "/"), 200, CacheMiss, "s")
}

func TestNotStorable(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name string
		h    http.HandlerFunc
		kv   []string
	}{
		{"no-store", static("n", "Cache-Control", "no-store"), nil},
		{"private", static("n", "Cache-Control", "private, max-age=60"), nil},
		{"authorization", static("n", "Cache-Control", "max-age=60"), []string{"Authorization", "Basic Zm9vOmJhcg=="}},
		{"request no-store", static("n", "Cache-Control", "max-age=60"), []string{"Cache-Control", "no-store"}},
		{"500", status(500, "n"), nil},
		{"404 without freshness", status(404, "n"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrigin(t, e.clock, tc.h)
			first := e.get(o, "/", tc.kv...)
			second := e.get(o, "/", tc.kv...)
			if first.cache() != CacheMiss || second.cache() != CacheMiss || o.hits.Load() != 2 {
				t.Errorf("got %s then %s with %d origin hits; want two misses", first.cache(), second.cache(), o.hits.Load())
			}
		})
	}
	// Authorization with an explicit public response is shareable.
	o := newOrigin(t, e.clock, static("p", "Cache-Control", "public, max-age=60"))
	expect(t, "auth public", e.get(o, "/", "Authorization", "Basic x"), 200, CacheMiss, "p")
	expect(t, "auth public stored", e.get(o, "/"), 200, CacheHit, "p")
}

func TestStaleOnOriginFailure(t *testing.T) {
	const fresh = "Cache-Control"
	type failure struct {
		name  string
		apply func(o *origin, release chan struct{})
	}
	statusFail := func(code int) func(*origin, chan struct{}) {
		return func(o *origin, _ chan struct{}) { o.set(status(code, "origin error page")) }
	}
	failures := []failure{
		{"500", statusFail(500)},
		{"502", statusFail(502)},
		{"503", statusFail(503)},
		{"403", statusFail(403)},
		{"404", statusFail(404)},
		{"429", statusFail(429)},
		{"refused", func(o *origin, _ chan struct{}) { o.Close() }},
		{"timeout", func(o *origin, release chan struct{}) {
			o.set(func(w http.ResponseWriter, r *http.Request) { <-release })
		}},
	}
	for _, fc := range failures {
		t.Run(fc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.OriginTimeout = 300 * time.Millisecond })
			o := newOrigin(t, e.clock, static("good copy", fresh, "max-age=60"))
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			expect(t, "fill", e.get(o, "/s"), 200, CacheMiss, "good copy")
			fc.apply(o, release)
			e.clock.Advance(23 * time.Hour)
			r := e.get(o, "/s")
			expect(t, "stale", r, 200, CacheStale, "good copy")
			if _, body, ok := e.stored(o.canon("/s")); !ok || body != "good copy" {
				t.Errorf("stored copy after failure: %q %v", body, ok)
			}
			// Past max_stale the failure shows.
			e.clock.Advance(2 * time.Hour)
			r = e.get(o, "/s")
			if r.status < 400 || r.cache() == CacheStale {
				t.Errorf("past max_stale: got %d %s, want the failure", r.status, r.cache())
			}
		})
	}
}

func TestStaleForbidden(t *testing.T) {
	for _, cc := range []string{"max-age=60, must-revalidate", "max-age=60, proxy-revalidate", "s-maxage=60", "no-cache"} {
		t.Run(cc, func(t *testing.T) {
			e := newEnv(t, nil)
			o := newOrigin(t, e.clock, static("good", "Cache-Control", cc))
			expect(t, "fill", e.get(o, "/"), 200, CacheMiss, "good")
			o.set(status(503, "down"))
			e.clock.Advance(2 * time.Minute)
			expect(t, "no stale", e.get(o, "/"), 503, CacheMiss, "down")
		})
	}
	// stale-if-error extends the window beyond max_stale.
	e := newEnv(t, func(o *Options) { o.MaxStale = time.Hour })
	o := newOrigin(t, e.clock, static("good", "Cache-Control", "max-age=60, stale-if-error=86400"))
	expect(t, "fill", e.get(o, "/"), 200, CacheMiss, "good")
	o.set(status(500, "down"))
	e.clock.Advance(5 * time.Hour)
	expect(t, "stale-if-error", e.get(o, "/"), 200, CacheStale, "good")
}

func TestStaleWhileRevalidate(t *testing.T) {
	e := newEnv(t, nil)
	var version atomic.Int32
	version.Store(1)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		fmt.Fprintf(w, "v%d", version.Load())
	})
	expect(t, "fill", e.get(o, "/"), 200, CacheMiss, "v1")
	version.Store(2)
	e.clock.Advance(30 * time.Second)
	expect(t, "stale while revalidating", e.get(o, "/"), 200, CacheStale, "v1")
	testkit.Eventually(t, 10*time.Second, "background revalidation", func() bool {
		_, body, ok := e.stored(o.canon("/"))
		return ok && body == "v2" && e.p.Stats().InFlight == 0
	})
	expect(t, "revalidated in background", e.get(o, "/"), 200, CacheHit, "v2")
}

func TestGoneEvicts(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("here", "Cache-Control", "max-age=60"))
	expect(t, "fill", e.get(o, "/g"), 200, CacheMiss, "here")
	o.set(status(http.StatusGone, "gone"))
	e.clock.Advance(2 * time.Minute)
	expect(t, "410 passes", e.get(o, "/g"), 410, CacheMiss, "gone")
	if _, _, ok := e.stored(o.canon("/g")); ok {
		t.Fatal("410 did not evict the stored copy")
	}
	o.set(status(500, "err"))
	expect(t, "nothing stale left", e.get(o, "/g"), 500, CacheMiss, "err")
}

// brokenBody sends the header and part of a body, then either cuts the
// connection, resets it (reset), or (stall) blocks until released.
func brokenBody(declare bool, stall chan struct{}, reset bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if declare {
			w.Header().Set("Content-Length", "100000")
		}
		w.WriteHeader(200)
		w.Write([]byte(strings.Repeat("N", 5000)))
		http.NewResponseController(w).Flush()
		if stall != nil {
			<-stall
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok && reset {
				_ = tc.SetLinger(0) // close sends RST
			}
			conn.Close()
		}
	}
}

// originFaults are the ways an origin breaks a body off.
var originFaults = []struct {
	name           string
	declare, reset bool
	stall          bool
}{
	{"truncated (short content-length)", true, false, false},
	{"unterminated chunked", false, false, false},
	{"reset", true, true, false},
	{"stalled", true, false, true},
}

// TestInterruptedTransferOnMiss: with no copy to fall back on, a body that
// breaks off reaches the visitor as a broken connection (never a
// complete-looking truncated body) and nothing is stored.
func TestInterruptedTransferOnMiss(t *testing.T) {
	for _, tc := range originFaults {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.OriginTimeout = 300 * time.Millisecond })
			o := newOrigin(t, e.clock, nil)
			var stall chan struct{}
			if tc.stall { // released before the origin closes (cleanups run last-first)
				stall = make(chan struct{})
				t.Cleanup(func() { close(stall) })
			}
			o.set(brokenBody(tc.declare, stall, tc.reset))
			r := e.get(o, "/p")
			if r.readErr == nil {
				t.Fatalf("visitor read a complete-looking %d-byte body; want a broken connection", len(r.body))
			}
			if !strings.HasPrefix(r.body, "NNNN") {
				t.Errorf("visitor got %q before the break, want the new bytes streamed", trunc(r.body))
			}
			if _, body, ok := e.stored(o.canon("/p")); ok {
				t.Fatalf("a broken transfer was stored: %q", trunc(body))
			}
		})
	}
}

// TestRefetchNeverBroken: while a stale copy exists, a
// refetch whose body truncates, resets or stalls reaches no visitor: all
// of them (three at once, coalesced) get the complete stale copy, marked
// STALE, or, when the copy forbids stale use, a complete error page. The
// stored copy stays, and is served at once for the next NegativeTTL.
func TestRefetchNeverBroken(t *testing.T) {
	for _, tc := range originFaults {
		for _, mustRevalidate := range []bool{false, true} {
			name := tc.name
			if mustRevalidate {
				name += ", must-revalidate"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, func(o *Options) { o.OriginTimeout = 300 * time.Millisecond })
				cc := "max-age=60"
				if mustRevalidate {
					cc += ", must-revalidate"
				}
				old := strings.Repeat("old copy ", 2000)
				o := newOrigin(t, e.clock, static(old, "Cache-Control", cc))
				expect(t, "fill", e.get(o, "/p"), 200, CacheMiss, old)
				var stall chan struct{}
				if tc.stall {
					stall = make(chan struct{})
					t.Cleanup(func() { close(stall) })
				}
				o.set(brokenBody(tc.declare, stall, tc.reset))
				e.clock.Advance(2 * time.Minute)
				results := make(chan result, 3)
				for range 3 {
					go func() { results <- e.get(o, "/p") }()
				}
				for i := range 3 {
					r := recv(t, "a visitor's response", results)
					if mustRevalidate {
						if r.readErr != nil || r.status < 500 || strings.Contains(r.body, "NNNN") {
							t.Fatalf("visitor %d: %d %v %q; want a complete error page", i, r.status, r.readErr, trunc(r.body))
						}
						continue
					}
					expect(t, fmt.Sprintf("visitor %d", i), r, 200, CacheStale, old)
				}
				if _, body, ok := e.stored(o.canon("/p")); !ok || body != old {
					t.Fatalf("stored copy after broken transfer: %q %v, want the old copy", trunc(body), ok)
				}
				if mustRevalidate {
					return
				}
				before := o.hits.Load()
				expect(t, "right after", e.get(o, "/p"), 200, CacheStale, old)
				if o.hits.Load() != before {
					t.Error("the origin was asked again right after its body broke off")
				}
				e.clock.Advance(2 * time.Minute) // past NegativeTTL
				o.set(static("new copy", "Cache-Control", "max-age=60"))
				expect(t, "origin well again", e.get(o, "/p"), 200, CacheMiss, "new copy")
			})
		}
	}
}

func TestOversizeStreamedNotStored(t *testing.T) {
	big := strings.Repeat("0123456789", 300) // 3000 bytes
	for _, tc := range []struct {
		name    string
		chunked bool
	}{{"content-length", false}, {"chunked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.MaxObjectBytes = 1000 })
			o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=60")
				if !tc.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(big)))
				}
				for i := 0; i < len(big); i += 500 {
					w.Write([]byte(big[i : i+500]))
					if tc.chunked {
						http.NewResponseController(w).Flush()
					}
				}
			})
			expect(t, "first", e.get(o, "/big"), 200, CacheMiss, big)
			expect(t, "not stored", e.get(o, "/big"), 200, CacheMiss, big)
			if _, _, ok := e.stored(o.canon("/big")); ok {
				t.Error("oversized object was stored")
			}
			small := newOrigin(t, e.clock, static("small", "Cache-Control", "max-age=60"))
			e.get(small, "/")
			expect(t, "small still cached", e.get(small, "/"), 200, CacheHit, "small")
		})
	}
}

func TestNegativeCache(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("x"))
	o.Close() // connection refused from now on

	var wg sync.WaitGroup
	results := make([]result, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = e.get(o, "/dead")
		}(i)
	}
	wg.Wait()
	for i := 0; i < 5; i++ {
		results = append(results, e.get(o, fmt.Sprintf("/dead/%d", i)))
	}
	for i, r := range results {
		if r.status != http.StatusBadGateway || !strings.Contains(r.body, "could not get an HTTP response") ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
			t.Fatalf("request %d: %d %q, want a 502 page saying there was no HTTP response", i, r.status, trunc(r.body))
		}
	}
	s := e.p.Stats()
	if s.OriginFetches != 1 {
		t.Errorf("%d origin attempts for 13 requests to a dead origin, want 1", s.OriginFetches)
	}
	if s.NegativeHits < 5 {
		t.Errorf("negative-cache hits = %d, want at least 5", s.NegativeHits)
	}
	e.clock.Advance(61 * time.Second)
	e.get(o, "/dead")
	e.get(o, "/dead")
	if s := e.p.Stats(); s.OriginFetches != 2 {
		t.Errorf("after negative_ttl: %d origin attempts, want 2", s.OriginFetches)
	}
}

func TestNegativeCacheTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.OriginTimeout = 200 * time.Millisecond })
	release := make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) { <-release })
	t.Cleanup(func() { close(release) })
	for i := 0; i < 4; i++ {
		r := e.get(o, "/slow")
		if r.status != http.StatusBadGateway {
			t.Fatalf("request %d: status %d, want 502 (as for a closed port)", i, r.status)
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("origin received %d requests, want 1", n)
	}
}

func TestCoalescingStreamsWhileDownloading(t *testing.T) {
	e := newEnv(t, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	// Larger than the in-memory spool limit, so the temporary file is used.
	first, rest := "first-part|", strings.Repeat("r", 3*spoolMemLimit)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Length", strconv.Itoa(len(first)+len(rest)))
		io.WriteString(w, first)
		http.NewResponseController(w).Flush()
		close(started)
		<-release
		io.WriteString(w, rest)
	})

	const n = 8
	type got struct {
		firstBytes string
		body       string
		cache      string
		err        error
	}
	results := make(chan got, n)
	firstSeen := make(chan struct{}, n)
	visit := func() {
		resp := e.do("GET", o.host(), "/flash", nil)
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		head := make([]byte, len(first))
		if _, err := io.ReadFull(br, head); err != nil {
			results <- got{err: err}
			firstSeen <- struct{}{}
			return
		}
		firstSeen <- struct{}{}
		tail, err := io.ReadAll(br)
		results <- got{string(head), string(tail), resp.Header.Get("X-Coral-Cache"), err}
	}
	go visit()
	recv(t, "origin to start", started)
	for i := 1; i < n; i++ {
		go visit()
	}
	// Every visitor, followers included, has the first bytes while the
	// origin is still blocked in the middle of the body.
	for i := 0; i < n; i++ {
		recv(t, "a visitor's first bytes", firstSeen)
	}
	close(release)
	for i := 0; i < n; i++ {
		g := recv(t, "a visitor's body", results)
		if g.err != nil || g.firstBytes != first || g.body != rest || g.cache != CacheMiss {
			t.Fatalf("visitor: err=%v first=%q len(rest)=%d cache=%s", g.err, g.firstBytes, len(g.body), g.cache)
		}
	}
	if h := o.hits.Load(); h != 1 {
		t.Errorf("origin fetched %d times for %d concurrent visitors, want 1", h, n)
	}
	if s := e.p.Stats(); s.Coalesced != n-1 {
		t.Errorf("coalesced = %d, want %d", s.Coalesced, n-1)
	}
	expect(t, "then a hit", e.get(o, "/flash"), 200, CacheHit, first+rest)
}

// A visitor that joins a fetch in progress may share it only when the
// response's Vary selects the same variant for it; "Vary: *" selects the
// same variant for nobody, not even an identical request.
func TestCoalescedVaryMismatchFetchesSeparately(t *testing.T) {
	for _, tc := range []struct {
		name, vary   string
		second, want string // the second visitor's Accept-Language; its body
	}{
		{"other language", "Accept-Language", "de", "lang=de"},
		{"vary star", "*", "en", "lang=en"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			started := make(chan struct{}, 2)
			release := make(chan struct{})
			o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				<-release
				w.Header().Set("Cache-Control", "max-age=60")
				w.Header().Set("Vary", tc.vary)
				io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
			})
			ch := make(chan result, 2)
			go func() { ch <- e.get(o, "/", "Accept-Language", "en") }()
			recv(t, "first origin request", started)
			go func() { ch <- e.get(o, "/", "Accept-Language", tc.second) }()
			// The second visitor joins the first fetch before its header
			// is known; the header's Vary then sends it to fetch its own
			// response: the origin gets a second request.
			testkit.Eventually(t, 10*time.Second, "the second visitor to join", func() bool { return e.p.Stats().Coalesced == 1 })
			close(release)
			got := map[string]bool{}
			for i := 0; i < 2; i++ {
				r := recv(t, "a visitor", ch)
				got[r.body] = true
			}
			if !got["lang=en"] || !got[tc.want] {
				t.Fatalf("bodies: %v", got)
			}
			if n := o.hits.Load(); n != 2 {
				t.Errorf("origin saw %d requests, want 2", n)
			}
		})
	}
}

func TestPrivateOriginsRefused(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowPrivateOrigins = false })
	o := newOrigin(t, e.clock, static("secret"))
	r := e.get(o, "/")
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "loopback") {
		t.Fatalf("got %d %q, want 403 naming the loopback address", r.status, trunc(r.body))
	}
	// A name is only resolved at dial time, and the address actually dialled
	// is what is checked (DNS rebinding).
	u, _ := url.Parse(o.URL)
	r = e.fetch("GET", "localhost."+u.Port()+"."+testZone, "/")
	if r.status != http.StatusForbidden {
		t.Fatalf("localhost origin: got %d %q, want 403", r.status, trunc(r.body))
	}
	if n := o.hits.Load(); n != 0 {
		t.Errorf("private origin received %d requests", n)
	}
}

func TestLoopDetection(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("x"))
	r := e.get(o, "/", "Via", "1.1 someone-else, 1.1 "+testToken)
	if r.status != http.StatusLoopDetected || !strings.Contains(r.body, "loop") {
		t.Fatalf("got %d %q, want 508", r.status, trunc(r.body))
	}
	// A Coralized name for the proxy itself: the proxy fetches from itself,
	// the inner request carries our Via token and is refused.
	u, _ := url.Parse(e.srv.URL)
	r = e.fetch("GET", "127.0.0.1."+u.Port()+"."+testZone, "/")
	if r.status != http.StatusLoopDetected {
		t.Fatalf("self-loop: got %d %q, want 508", r.status, trunc(r.body))
	}
	if o.hits.Load() != 0 {
		t.Error("looping request reached the origin")
	}
}

func TestUnsafeMethods(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("x", "Cache-Control", "max-age=60"))
	resp := e.do("POST", o.host(), "/form", strings.NewReader("a=b"))
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: %d Allow=%q, want 405", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if o.hits.Load() != 0 {
		t.Fatal("refused POST reached the origin")
	}

	pe := newEnv(t, func(o *Options) { o.PassUnsafeMethods = true })
	var posted atomic.Value
	po := newOrigin(t, pe.clock, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			posted.Store(string(b))
			w.Header().Set("Cache-Control", "max-age=600") // must not be cached
			w.Header().Set("Content-Location", "/list")
			io.WriteString(w, "posted")
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "page")
	})
	expect(t, "fill", pe.get(po, "/form"), 200, CacheMiss, "page")
	expect(t, "hit", pe.get(po, "/form"), 200, CacheHit, "page")
	expect(t, "fill list", pe.get(po, "/list"), 200, CacheMiss, "page")
	expect(t, "other page", pe.get(po, "/other"), 200, CacheMiss, "page")
	resp = pe.do("POST", po.host(), "/form", strings.NewReader("a=b"), "Content-Type", "application/x-www-form-urlencoded")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "posted" || posted.Load() != "a=b" {
		t.Fatalf("POST passed through: %d %q, origin got %v", resp.StatusCode, b, posted.Load())
	}
	expect(t, "invalidated by POST", pe.get(po, "/form"), 200, CacheMiss, "page")
	expect(t, "Content-Location invalidated", pe.get(po, "/list"), 200, CacheMiss, "page")
	expect(t, "unrelated page kept", pe.get(po, "/other"), 200, CacheHit, "page")
	if r := pe.fetch("DELETE", po.host(), "/form"); r.status != 200 || r.cache() != CacheMiss {
		t.Errorf("DELETE passed through: %d %s", r.status, r.cache())
	}
}

func TestHopByHopHeaders(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("h", "Connection", "X-Hop", "X-Hop", "1", "X-End", "2", "Keep-Alive", "timeout=5"))
	r := e.get(o, "/", "Connection", "X-Visitor-Hop", "X-Visitor-Hop", "v", "Proxy-Authorization", "Basic x")
	if r.header.Get("X-Hop") != "" || r.header.Get("Keep-Alive") != "" || r.header.Get("X-End") != "2" {
		t.Errorf("response header: %v", r.header)
	}
	req := o.lastRequest()
	if req.Header.Get("X-Visitor-Hop") != "" || req.Header.Get("Proxy-Authorization") != "" {
		t.Errorf("origin request header: %v", req.Header)
	}
}

func TestLocationRewrite(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, nil)
	o.set(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/old":
			w.Header().Set("Location", o.URL+"/new?x=1")
			w.WriteHeader(http.StatusMovedPermanently)
		case "/away":
			w.Header().Set("Location", "http://elsewhere.example/")
			w.WriteHeader(http.StatusFound)
		default:
			w.Header().Set("Location", "/relative")
			w.WriteHeader(http.StatusFound)
		}
	})
	_, proxyPort, _ := net.SplitHostPort(strings.TrimPrefix(e.srv.URL, "http://"))
	host := o.host() + ":" + proxyPort
	r := e.fetch("GET", host, "/old")
	if want := "http://" + host + "/new?x=1"; r.status != 301 || r.header.Get("Location") != want {
		t.Errorf("same-origin Location = %q, want %q", r.header.Get("Location"), want)
	}
	// The stored redirect is rewritten for each visitor too.
	r = e.fetch("GET", host, "/old")
	if r.cache() != CacheHit || !strings.HasPrefix(r.header.Get("Location"), "http://"+host+"/") {
		t.Errorf("cached redirect: %s %q", r.cache(), r.header.Get("Location"))
	}
	if r := e.fetch("GET", host, "/away"); r.header.Get("Location") != "http://elsewhere.example/" {
		t.Errorf("foreign Location rewritten: %q", r.header.Get("Location"))
	}
	if r := e.fetch("GET", host, "/rel"); r.header.Get("Location") != "/relative" {
		t.Errorf("relative Location changed: %q", r.header.Get("Location"))
	}
}

func TestFrontPageAndForeignHosts(t *testing.T) {
	e := newEnv(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.srv.URL, "http://"))
	zoneHost := testZone + ":" + port

	r := e.fetch("GET", zoneHost, "/")
	if r.status != 200 || !strings.Contains(r.body, "<form") || !strings.Contains(r.body, `name="url"`) {
		t.Fatalf("front page: %d %q", r.status, trunc(r.body))
	}
	r = e.fetch("GET", zoneHost, "/?url="+url.QueryEscape("https://Example.com:8443/a?b=c"))
	want := "http://example.com.8443.https." + testZone + ":" + port + "/a?b=c"
	if r.status != 200 || !strings.Contains(r.body, `href="`+strings.ReplaceAll(want, "?", "?")) {
		t.Fatalf("coralize form: %d, want link %s in %q", r.status, want, r.body)
	}
	r = e.fetch("GET", zoneHost, "/?url="+url.QueryEscape("ftp://x/"))
	if r.status != 400 || !strings.Contains(r.body, "Cannot Coralize") {
		t.Fatalf("bad URL: %d %q", r.status, trunc(r.body))
	}
	if r := e.fetch("GET", zoneHost, "/other"); r.status != 404 {
		t.Errorf("bare zone /other: %d", r.status)
	}

	for _, host := range []string{"example.com", "example.com:80", "127.0.0.1", "coral.test.evil.com"} {
		r := e.fetch("GET", host, "/")
		if r.status != 400 || !strings.Contains(r.body, "not an open proxy") {
			t.Errorf("Host %q: %d %q, want 400 not an open proxy", host, r.status, trunc(r.body))
		}
	}
	if r := e.fetch("GET", "1.2.3."+testZone, "/"); r.status != 400 || !strings.Contains(r.body, "Coralized") {
		t.Errorf("invalid Coralized name: %d %q", r.status, trunc(r.body))
	}

	// A client using Coral as a forward proxy is refused too.
	pu, _ := url.Parse(e.srv.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	resp, err := c.Get("http://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("forward-proxy request: %d, want 400", resp.StatusCode)
	}
}

func TestOriginFetchCap(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxOriginFetches = 1 })
	var active, peak atomic.Int32
	entered := make(chan struct{}, 2)
	release := make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		entered <- struct{}{}
		<-release
		active.Add(-1)
		io.WriteString(w, r.URL.Path)
	})
	done := make(chan result, 2)
	go func() { done <- e.get(o, "/one") }()
	recv(t, "first fetch at the origin", entered)
	go func() { done <- e.get(o, "/two") }()
	testkit.Eventually(t, 10*time.Second, "second fetch queued", func() bool { return e.p.Stats().Queued == 1 })
	close(release)
	recv(t, "first visitor", done)
	recv(t, "second visitor", done)
	if p := peak.Load(); p != 1 {
		t.Errorf("origin saw %d concurrent fetches, cap is 1", p)
	}
}

// fakePeers records the cooperative-caching hooks and serves one object.
type fakePeers struct {
	mu          sync.Mutex
	have        map[string]string
	clock       *testkit.Clock
	cached      []string
	downloading []string
	removed     []string
}

func (f *fakePeers) Fetch(_ context.Context, key object.Key, canon string, _ func(store.Meta) error) (store.Meta, io.ReadCloser, error) {
	f.mu.Lock()
	body, ok := f.have[canon]
	f.mu.Unlock()
	if !ok {
		return store.Meta{}, nil, fmt.Errorf("fake peers: %w", store.ErrNotFound)
	}
	now := f.clock.Now()
	if strings.HasSuffix(canon, "/old") {
		now = now.Add(-time.Hour) // a copy that expired long ago
	}
	h := http.Header{"Cache-Control": {"max-age=60"}, "Date": {now.Format(http.TimeFormat)}}
	m := store.Meta{Key: key.String(), URL: canon, Status: 200, Header: h, RequestTime: now, ResponseTime: now,
		Size: int64(len(body)), SHA256: sha256.Sum256([]byte(body))}
	if strings.HasSuffix(canon, "/corrupt") {
		body = strings.ToUpper(body) // right length, wrong bytes
	}
	return m, io.NopCloser(strings.NewReader(body)), nil
}

func (f *fakePeers) Downloading(_ object.Key, canon string) func() {
	f.mu.Lock()
	f.downloading = append(f.downloading, canon)
	f.mu.Unlock()
	return func() {}
}

func (f *fakePeers) Cached(_ object.Key, m store.Meta) {
	f.mu.Lock()
	f.cached = append(f.cached, m.URL)
	f.mu.Unlock()
}

func (f *fakePeers) Removed(key string) {
	f.mu.Lock()
	f.removed = append(f.removed, key)
	f.mu.Unlock()
}

func TestPeersSeam(t *testing.T) {
	clock := testkit.NewClock(testEpoch)
	peers := &fakePeers{have: map[string]string{}, clock: clock}
	e := newEnv(t, func(o *Options) { o.Peers = peers; o.Now = clock.Now })
	e.clock = clock
	o := newOrigin(t, clock, static("from origin", "Cache-Control", "max-age=60"))
	peers.have[o.canon("/peer")] = "from a peer"

	expect(t, "peer", e.get(o, "/peer"), 200, CachePeer, "from a peer")
	expect(t, "stored", e.get(o, "/peer"), 200, CacheHit, "from a peer")
	if o.hits.Load() != 0 {
		t.Error("origin contacted although a peer delivered")
	}
	expect(t, "origin", e.get(o, "/other"), 200, CacheMiss, "from origin")
	o.set(status(http.StatusGone, "gone"))
	clock.Advance(2 * time.Minute)
	e.get(o, "/other")

	// A peer's stale copy is not used; the origin is asked instead.
	peers.mu.Lock()
	peers.have[o.canon("/old")] = "old peer copy"
	peers.have[o.canon("/corrupt")] = "peer copy"
	peers.mu.Unlock()
	o.set(static("origin copy", "Cache-Control", "max-age=60"))
	expect(t, "stale peer copy skipped", e.get(o, "/old"), 200, CacheMiss, "origin copy")

	// A body that does not match the peer's hash is never stored, and the
	// visitor, already receiving it, sees a broken connection.
	if r := e.get(o, "/corrupt"); r.readErr == nil {
		t.Errorf("corrupt peer body delivered as complete: %q", r.body)
	}
	if _, _, ok := e.stored(o.canon("/corrupt")); ok {
		t.Error("corrupt peer body was stored")
	}
	e.p.Evicted("k")

	peers.mu.Lock()
	defer peers.mu.Unlock()
	if len(peers.cached) != 3 || len(peers.downloading) != 3 || len(peers.removed) != 2 {
		t.Errorf("hooks: cached=%v downloading=%v removed=%v", peers.cached, peers.downloading, peers.removed)
	}
	if peers.removed[0] != object.KeyOf(o.canon("/other")).String() || peers.removed[1] != "k" {
		t.Errorf("removed %v", peers.removed)
	}
	if e.p.Stats().Evictions != 1 {
		t.Error("eviction not counted")
	}
}

func TestOpenForPeer(t *testing.T) {
	e := newEnv(t, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/slow" {
			io.WriteString(w, "part1-")
			http.NewResponseController(w).Flush()
			close(started)
			<-release
			io.WriteString(w, "part2")
			return
		}
		io.WriteString(w, "stored body")
	})
	e.get(o, "/s")
	m, body, err := e.p.OpenForPeer(t.Context(), object.KeyOf(o.canon("/s")).String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	if string(b) != "stored body" || m.Status != 200 || m.URL != o.canon("/s") {
		t.Errorf("stored: %q %+v", b, m)
	}
	if _, _, err := e.p.OpenForPeer(t.Context(), object.KeyOf(o.canon("/none")).String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing object: err = %v", err)
	}

	visitor := make(chan result, 1)
	go func() { visitor <- e.get(o, "/slow") }()
	recv(t, "origin to start", started)
	m, body, err = e.p.OpenForPeer(t.Context(), object.KeyOf(o.canon("/slow")).String())
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 6)
	if _, err := io.ReadFull(body, head); err != nil || string(head) != "part1-" {
		t.Fatalf("in-flight first bytes: %q %v", head, err)
	}
	close(release)
	rest, err := io.ReadAll(body)
	body.Close()
	if err != nil || string(rest) != "part2" || m.Size != -1 {
		t.Errorf("in-flight rest: %q %v size=%d", rest, err, m.Size)
	}
	recv(t, "visitor", visitor)
}

func TestNewValidates(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(Options{Zone: "bad zone"}, st); err == nil {
		t.Error("invalid zone accepted")
	}
	if _, err := New(Options{Zone: "x", NodeToken: "a b"}, st); err == nil {
		t.Error("token with a space accepted")
	}
	p, err := New(Options{Zone: "Example.ORG."}, st)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Zone() != "example.org" || !strings.HasPrefix(p.Token(), "coral-") || len(p.Token()) != 14 {
		t.Errorf("zone %q token %q", p.Zone(), p.Token())
	}
}

// BenchmarkCacheHit measures 1 KiB and 1 MiB cache hits through a real
// server and client on loopback (compare with test/bench/cachehit for wrk
// figures); profile the hit path with -cpuprofile.
func BenchmarkCacheHit(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) { benchCacheHit(b, size) })
	}
}

// benchProxy is the benchmarks' proxy on a fresh store, closed when b ends.
func benchProxy(b *testing.B) *Proxy {
	clock := testkit.NewClock(testEpoch)
	st, err := store.Open(b.TempDir(), store.Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	p, err := New(Options{Zone: testZone, AllowPrivateOrigins: true, HeuristicTTL: time.Hour,
		Now: clock.Now, Logger: quiet()}, st)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

func benchCacheHit(b *testing.B, size int) {
	p := benchProxy(b)
	body := strings.Repeat("x", size)
	originSrv := httptest.NewServer(static(body, "Cache-Control", "max-age=3600"))
	defer originSrv.Close()
	srv := httptest.NewServer(p)
	defer srv.Close()
	u, _ := url.Parse(originSrv.URL)
	host := "127.0.0.1." + u.Port() + "." + testZone
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	testkit.BenchGets(b, wholeGetter(&http.Client{Transport: tr}, srv.URL+"/b", host, size), size, 1)
}

func TestCloseStopsFetches(t *testing.T) {
	e := newEnv(t, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "begin")
		http.NewResponseController(w).Flush()
		close(started)
		<-release
	})
	t.Cleanup(func() { close(release) }) // before the origin's Close, which waits for it
	resp := e.do("GET", o.host(), "/", nil)
	defer resp.Body.Close()
	recv(t, "origin to start", started)
	head := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != "begin" {
		t.Fatalf("first bytes: %q %v", head, err)
	}
	closed := make(chan error, 1)
	go func() { closed <- e.p.Close() }()
	if err := recv(t, "Close", closed); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("visitor got a complete body %q after Close", rest)
	}
	if r := e.get(o, "/after"); r.status != http.StatusServiceUnavailable {
		t.Errorf("request after Close: %d", r.status)
	}
}

// A passed-through request never becomes a tunnel: the upgrade a visitor
// asks for does not reach the origin, and an origin that switches protocols
// anyway gets the visitor an error, not a 101.
func TestPassThroughNoUpgrade(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.PassUnsafeMethods = true })
	var sawUpgrade atomic.Bool
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		sawUpgrade.Store(r.Header.Get("Upgrade") != "")
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		w.WriteHeader(http.StatusSwitchingProtocols)
	})
	resp := e.do("POST", o.host(), "/ws", strings.NewReader("x"), "Connection", "Upgrade", "Upgrade", "websocket")
	resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols || resp.StatusCode < 400 {
		t.Fatalf("status %d %v (origin saw Upgrade: %v), want an error page", resp.StatusCode, resp.Header, sawUpgrade.Load())
	}
	if sawUpgrade.Load() {
		t.Error("the visitor's Upgrade reached the origin")
	}
}

// wholeGetter is a GET of url with Host host through c that reads the
// whole body and fails unless it has size bytes (the benchmarks' visitor).
func wholeGetter(c *http.Client, url, host string, size int) func() error {
	return func() error {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && n != int64(size) {
			err = fmt.Errorf("got %d bytes", n)
		}
		return err
	}
}
