package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// personalPage answers with a page naming the credentials it saw, and the
// response header pairs kv.
func personalPage(kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		io.WriteString(w, "page for "+r.Header.Get("Cookie")+r.Header.Get("Authorization"))
	}
}

// A response is shared with the next visitor only when it is not personal
// or explicitly allows shared caching.
func TestPersonalResponsesNotShared(t *testing.T) {
	tests := []struct {
		name      string
		strip     bool
		req       []string // first visitor's header pairs
		resp      []string // origin's response header pairs
		wantCache string   // what the next visitor, without credentials, gets
	}{
		{"cookie passed, no cache-control", false, []string{"Cookie", "session=alice"}, nil, CacheMiss},
		{"cookie passed, max-age", false, []string{"Cookie", "session=alice"}, []string{"Cache-Control", "max-age=60"}, CacheMiss},
		{"cookie passed, public", false, []string{"Cookie", "session=alice"}, []string{"Cache-Control", "public, max-age=60"}, CacheHit},
		{"cookie passed, s-maxage", false, []string{"Cookie", "session=alice"}, []string{"Cache-Control", "s-maxage=60"}, CacheHit},
		{"cookie stripped, max-age", true, []string{"Cookie", "session=alice"}, []string{"Cache-Control", "max-age=60"}, CacheHit},
		{"authorization, max-age", true, []string{"Authorization", "Bearer alice"}, []string{"Cache-Control", "max-age=60"}, CacheMiss},
		{"authorization, must-revalidate", true, []string{"Authorization", "Bearer alice"}, []string{"Cache-Control", "must-revalidate, max-age=60"}, CacheHit},
		{"set-cookie stripped, max-age", true, nil, []string{"Set-Cookie", "session=bob", "Cache-Control", "max-age=60"}, CacheMiss},
		{"set-cookie stripped, heuristic", true, nil, []string{"Set-Cookie", "session=bob"}, CacheMiss},
		{"set-cookie stripped, public", true, nil, []string{"Set-Cookie", "session=bob", "Cache-Control", "public, max-age=60"}, CacheHit},
		{"set-cookie passed, public", false, nil, []string{"Set-Cookie", "session=bob", "Cache-Control", "public, max-age=60"}, CacheMiss},
		{"nothing personal", false, nil, []string{"Cache-Control", "max-age=60"}, CacheHit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.StripCookies = tc.strip })
			o := newOrigin(t, e.clock, personalPage(tc.resp...))
			first := e.get(o, "/p", tc.req...)
			if first.status != 200 || first.cache() != CacheMiss {
				t.Fatalf("first visitor: %d %s", first.status, first.cache())
			}
			if sc := first.header.Get("Set-Cookie"); tc.strip && sc != "" {
				t.Errorf("strip_cookies: the visitor got Set-Cookie %q", sc)
			}
			next := e.get(o, "/p")
			if next.cache() != tc.wantCache {
				t.Errorf("next visitor: %s %q, want %s", next.cache(), next.body, tc.wantCache)
			}
			if next.cache() == CacheHit && next.header.Get("Set-Cookie") != "" {
				t.Errorf("a stored copy carries Set-Cookie %q", next.header.Get("Set-Cookie"))
			}
		})
	}
}

// Headers an origin might reflect into a shared response never reach it;
// the ones a cache can honour do, and X-Forwarded-For names the visitor.
func TestForwardedRequestHeaders(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		// A framework building absolute links from the request.
		io.WriteString(w, "<a href=\"http://"+r.Header.Get("X-Forwarded-Host")+r.Header.Get("X-Original-URL")+"/\">")
	})
	poison := []string{
		"X-Forwarded-Host", "evil.example", "X-Original-URL", "/admin", "X-Rewrite-URL", "/admin",
		"X-Host", "evil.example", "Forwarded", "host=evil.example;proto=http", "X-Forwarded-Proto", "http",
		"X-Forwarded-Port", "81", "X-Forwarded-Scheme", "nothttps", "X-HTTP-Method-Override", "DELETE",
		"X-Real-IP", "1.1.1.1", "X-Requested-With", "XMLHttpRequest", "X-Anything", "1",
	}
	keep := []string{
		"Accept", "text/html", "Accept-Language", "de", "User-Agent", "test-agent/1",
		"Referer", "http://example.org/", "Origin", "http://example.org",
	}
	r := e.get(o, "/", append(append(poison, keep...), "X-Forwarded-For", "203.0.113.9")...)
	if r.status != 200 || strings.Contains(r.body, "evil") || strings.Contains(r.body, "admin") {
		t.Fatalf("poisoned: %d %q", r.status, r.body)
	}
	got := o.lastRequest().Header
	for i := 0; i < len(poison); i += 2 {
		if v := got.Get(poison[i]); v != "" {
			t.Errorf("origin received %s: %q", poison[i], v)
		}
	}
	for i := 0; i < len(keep); i += 2 {
		if v := got.Get(keep[i]); v != keep[i+1] {
			t.Errorf("origin received %s: %q, want %q", keep[i], v, keep[i+1])
		}
	}
	if xff := got.Get("X-Forwarded-For"); xff != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For %q, want the visitor's address appended", xff)
	}
	if via := got.Get("Via"); !strings.Contains(via, testToken) {
		t.Errorf("Via %q lacks the node", via)
	}

	// Unsafe methods pass through with the application's own fields, but
	// not with the reflected ones.
	pe := newEnv(t, func(o *Options) { o.PassUnsafeMethods = true })
	po := newOrigin(t, pe.clock, static("ok"))
	resp := pe.do("POST", po.host(), "/form", strings.NewReader("a=b"), "X-Requested-With", "XMLHttpRequest",
		"X-CSRF-Token", "t", "X-Forwarded-Host", "evil.example")
	resp.Body.Close()
	pr := po.lastRequest().Header
	if pr.Get("X-Requested-With") == "" || pr.Get("X-Csrf-Token") != "t" || pr.Get("X-Forwarded-Host") != "" {
		t.Errorf("POST forwarded %v", pr)
	}
}

func gzipped(t *testing.T, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An origin that compresses for clients that ask but forgets Vary: each
// visitor gets a coding it accepts, and the two stored variants serve the
// many spellings of Accept-Encoding.
func TestAcceptEncodingNormalised(t *testing.T) {
	e := newEnv(t, nil)
	plain := "hello, hello, hello, hello"
	packed := gzipped(t, plain)
	var seen []string
	var mu sync.Mutex
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=60")
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(packed)
			return
		}
		io.WriteString(w, plain)
	})
	steps := []struct {
		ae        string
		wantCache string
		gzip      bool
	}{
		{"gzip, deflate, br, zstd", CacheMiss, true},
		{"deflate, gzip;q=0.8", CacheHit, true},
		{"*", CacheHit, true},
		{"", CacheMiss, false},
		{"br", CacheHit, false},
		{"gzip;q=0", CacheHit, false},
		// The identity copy, stored without Vary, now serves everyone.
		{"gzip", CacheHit, false},
	}
	for _, s := range steps {
		var kv []string
		if s.ae != "" {
			kv = []string{"Accept-Encoding", s.ae}
		}
		r := e.get(o, "/t", kv...)
		isGzip := r.header.Get("Content-Encoding") == "gzip"
		if r.status != 200 || r.cache() != s.wantCache || isGzip != s.gzip {
			t.Errorf("Accept-Encoding %q: %d %s Content-Encoding %q, want %s gzip=%v",
				s.ae, r.status, r.cache(), r.header.Get("Content-Encoding"), s.wantCache, s.gzip)
		}
		if !isGzip && r.body != plain {
			t.Errorf("Accept-Encoding %q: body %q", s.ae, trunc(r.body))
		}
		if isGzip && !strings.Contains(r.header.Get("Vary"), "Accept-Encoding") {
			t.Errorf("Accept-Encoding %q: gzip body without Vary: Accept-Encoding", s.ae)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "gzip" || seen[1] != "" {
		t.Errorf("origin saw Accept-Encoding %q, want [gzip, none]", seen)
	}
}

// A visitor that joined a fetch in progress is not handed a response that
// set a cookie for the visitor who started it.
func TestJoinedVisitorGetsNoPersonalResponse(t *testing.T) {
	e := newEnv(t, nil)
	release := make(chan struct{})
	var n int
	var mu sync.Mutex
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		id := n
		mu.Unlock()
		if id == 1 {
			<-release
		}
		w.Header().Set("Set-Cookie", "session="+strconv.Itoa(id))
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "welcome, session "+strconv.Itoa(id))
	})
	first := make(chan result, 1)
	go func() { first <- e.get(o, "/welcome") }()
	testkit.Eventually(t, 10*time.Second, "the first fetch at the origin", func() bool { return o.hits.Load() == 1 })
	second := make(chan result, 1)
	go func() { second <- e.get(o, "/welcome") }()
	testkit.Eventually(t, 10*time.Second, "the second visitor joining", func() bool { return e.p.Stats().Coalesced == 1 })
	close(release)
	if r := recv(t, "first visitor", first); r.body != "welcome, session 1" {
		t.Errorf("first visitor: %q", r.body)
	}
	if r := recv(t, "second visitor", second); r.body != "welcome, session 2" {
		t.Errorf("second visitor got %q, want its own response", r.body)
	}
}

// A gzip body stored without Vary (by an older node) or sent by an origin
// that ignores Accept-Encoding never goes from the cache to a visitor that
// does not accept gzip.
func TestEncodedCopyOnlyForGzipVisitors(t *testing.T) {
	e := newEnv(t, nil)
	packed := gzipped(t, "zipped")
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Content-Encoding", "gzip") // whatever the request says
		w.Write(packed)
	})
	// An old copy: gzip, no Vary, under the primary key.
	sw := e.st.Create(object.KeyOf(o.canon("/old")).String(), 1<<20)
	sw.Write(packed)
	now := e.clock.Now()
	h := http.Header{"Content-Encoding": {"gzip"}, "Cache-Control": {"max-age=600"}, "Date": {now.Format(http.TimeFormat)}}
	if _, err := sw.Commit(store.Meta{URL: o.canon("/old"), Status: 200, Header: h, RequestTime: now, ResponseTime: now,
		Size: int64(len(packed))}); err != nil {
		t.Fatal(err)
	}
	if r := e.get(o, "/old", "Accept-Encoding", "gzip"); r.cache() != CacheHit {
		t.Errorf("gzip visitor, old copy: %s", r.cache())
	}
	if r := e.get(o, "/old"); r.cache() != CacheMiss {
		t.Errorf("plain visitor, old gzip copy: %s, want a fetch of its own", r.cache())
	}
	// The origin's gzip answer to a plain request is passed on, not stored.
	for i := range 2 {
		if r := e.get(o, "/new"); r.cache() != CacheMiss {
			t.Errorf("plain visitor %d: %s, want MISS (gzip answers to plain requests are not stored)", i, r.cache())
		}
	}
	e.get(o, "/new", "Accept-Encoding", "gzip")
	if r := e.get(o, "/new", "Accept-Encoding", "gzip, br"); r.cache() != CacheHit || r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("gzip visitor: %s %q, want a HIT of the gzip copy", r.cache(), r.header.Get("Content-Encoding"))
	}
}
