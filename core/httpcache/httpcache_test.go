package httpcache

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func date(t time.Time) string { return t.Format(http.TimeFormat) }

func TestParseCacheControl(t *testing.T) {
	base := ParseCacheControl(nil)
	with := func(f func(*Directives)) Directives { d := base; f(&d); return d }
	tests := []struct {
		in   []string
		want Directives
	}{
		{nil, base},
		{[]string{"no-store"}, with(func(d *Directives) { d.NoStore = true })},
		{[]string{"Max-Age=60, PUBLIC"}, with(func(d *Directives) { d.MaxAge = 60; d.Public = true })},
		{[]string{`max-age="60"`}, with(func(d *Directives) { d.MaxAge = 60 })},
		{[]string{"max-age=60", "max-age=10"}, with(func(d *Directives) { d.MaxAge = 60 })}, // first wins
		{[]string{"max-age=abc"}, with(func(d *Directives) { d.MaxAge = 0 })},               // invalid = stale
		{[]string{"max-age=-5"}, with(func(d *Directives) { d.MaxAge = 0 })},
		{[]string{"max-age=99999999999999999999"}, with(func(d *Directives) { d.MaxAge = MaxDelta })},
		{[]string{"s-maxage=5,must-revalidate"}, with(func(d *Directives) { d.SMaxAge = 5; d.MustRevalidate = true })},
		{[]string{"max-stale"}, with(func(d *Directives) { d.MaxStale = MaxDelta })},
		{[]string{"max-stale=30, min-fresh=5"}, with(func(d *Directives) { d.MaxStale = 30; d.MinFresh = 5 })},
		{[]string{"min-fresh=x"}, base},
		{[]string{`no-cache="Set-Cookie, x-foo", private`}, with(func(d *Directives) {
			d.NoCacheFields = []string{"Set-Cookie", "X-Foo"}
			d.Private = true
		})},
		{[]string{`private="a,b", no-cache`}, with(func(d *Directives) {
			d.PrivateFields = []string{"A", "B"}
			d.NoCache = true
		})},
		{[]string{"stale-while-revalidate=30, stale-if-error=600"}, with(func(d *Directives) {
			d.StaleWhileRevalidate = 30
			d.StaleIfError = 600
		})},
		{[]string{" , ,only-if-cached,, proxy-revalidate , no-transform, immutable"}, with(func(d *Directives) {
			d.OnlyIfCached = true
			d.ProxyRevalidate = true
			d.NoTransform = true
			d.Immutable = true
		})},
		{[]string{`ext="a,b,max-age=3", max-age=7`}, with(func(d *Directives) { d.MaxAge = 7 })}, // comma inside quotes
		{[]string{"bad directive=1, max-age=4"}, with(func(d *Directives) { d.MaxAge = 4 })},
	}
	for _, tt := range tests {
		if got := ParseCacheControl(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCacheControl(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestRequestDirectivesPragma(t *testing.T) {
	if !RequestDirectives(hdr("Pragma", "no-cache")).NoCache {
		t.Error("Pragma: no-cache without Cache-Control should mean no-cache")
	}
	if RequestDirectives(hdr("Pragma", "no-cache", "Cache-Control", "max-age=5")).NoCache {
		t.Error("Cache-Control takes precedence over Pragma")
	}
}

func TestStorable(t *testing.T) {
	tests := []struct {
		name   string
		method string
		req    http.Header
		status int
		resp   http.Header
		want   bool
	}{
		{"plain 200", "GET", hdr(), 200, hdr(), true},
		{"HEAD", "HEAD", hdr(), 200, hdr(), false},
		{"POST", "POST", hdr(), 200, hdr("Cache-Control", "max-age=60"), false},
		{"no-store", "GET", hdr(), 200, hdr("Cache-Control", "no-store"), false},
		{"request no-store", "GET", hdr("Cache-Control", "no-store"), 200, hdr(), false},
		{"private", "GET", hdr(), 200, hdr("Cache-Control", "private, max-age=60"), false},
		{"qualified private", "GET", hdr(), 200, hdr("Cache-Control", `private="Set-Cookie"`), true},
		{"authorization", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "max-age=60"), false},
		{"authorization public", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "public"), true},
		{"authorization s-maxage", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "s-maxage=5"), true},
		{"authorization must-revalidate", "GET", hdr("Authorization", "Basic x"), 200, hdr("Cache-Control", "must-revalidate"), true},
		{"cookie", "GET", hdr("Cookie", "session=alice"), 200, hdr(), false},
		{"cookie max-age", "GET", hdr("Cookie", "session=alice"), 200, hdr("Cache-Control", "max-age=60"), false},
		{"cookie public", "GET", hdr("Cookie", "session=alice"), 200, hdr("Cache-Control", "public, max-age=60"), true},
		{"cookie s-maxage", "GET", hdr("Cookie", "session=alice"), 200, hdr("Cache-Control", "s-maxage=60"), true},
		{"cookie must-revalidate", "GET", hdr("Cookie", "a=b"), 200, hdr("Cache-Control", "must-revalidate, max-age=9"), true},
		{"set-cookie", "GET", hdr(), 200, hdr("Set-Cookie", "session=bob"), false},
		{"set-cookie max-age", "GET", hdr(), 200, hdr("Set-Cookie", "session=bob", "Cache-Control", "max-age=600"), false},
		{"set-cookie public", "GET", hdr(), 200, hdr("Set-Cookie", "s=b", "Cache-Control", "public, max-age=600"), true},
		{"set-cookie s-maxage", "GET", hdr(), 200, hdr("Set-Cookie", "s=b", "Cache-Control", "s-maxage=600"), true},
		{"set-cookie private", "GET", hdr(), 200, hdr("Set-Cookie", "s=b", "Cache-Control", "private, s-maxage=6"), false},
		{"cookie and set-cookie public", "GET", hdr("Cookie", "a=b"), 200, hdr("Set-Cookie", "s=b", "Cache-Control", "public"), true},
		{"vary star", "GET", hdr(), 200, hdr("Vary", "Accept, *"), false},
		{"vary", "GET", hdr(), 200, hdr("Vary", "Accept-Encoding"), true},
		{"404 heuristic", "GET", hdr(), 404, hdr(), true},
		{"500 plain", "GET", hdr(), 500, hdr(), false},
		{"500 max-age", "GET", hdr(), 500, hdr("Cache-Control", "max-age=5"), true},
		{"302 plain", "GET", hdr(), 302, hdr(), false},
		{"302 expires", "GET", hdr(), 302, hdr("Expires", date(t0)), true},
		{"302 public", "GET", hdr(), 302, hdr("Cache-Control", "public"), true},
		{"206", "GET", hdr(), 206, hdr("Cache-Control", "max-age=5"), false},
		{"304", "GET", hdr(), 304, hdr(), false},
		{"unknown status max-age", "GET", hdr(), 599, hdr("Cache-Control", "max-age=60"), true},
		{"must-understand unknown status", "GET", hdr(), 599, hdr("Cache-Control", "must-understand, max-age=60"), false},
		{"must-understand unknown status no-store", "GET", hdr(), 599, hdr("Cache-Control", "must-understand, no-store, max-age=60"), false},
		{"must-understand known status ignores no-store", "GET", hdr(), 200, hdr("Cache-Control", "no-store, must-understand, max-age=60"), true},
		{"must-understand 206", "GET", hdr(), 206, hdr("Cache-Control", "must-understand, max-age=60"), false},
		{"must-understand keeps private", "GET", hdr(), 200, hdr("Cache-Control", "must-understand, private, max-age=60"), false},
		{"surrogate no-store", "GET", hdr(), 200, hdr("Cache-Control", "max-age=60", "Surrogate-Control", "no-store"), false},
		{"surrogate no-store-remote", "GET", hdr(), 200, hdr("Cache-Control", "max-age=60", "Surrogate-Control", "no-store-remote"), false},
		{"surrogate no-store for another device", "GET", hdr(), 200, hdr("Cache-Control", "max-age=60", "Surrogate-Control", "no-store;varnish"), true},
		{"surrogate max-age over cc no-store", "GET", hdr(), 200, hdr("Cache-Control", "no-store", "Surrogate-Control", "max-age=60"), true},
		{"surrogate max-age keeps private", "GET", hdr(), 200, hdr("Cache-Control", "private", "Surrogate-Control", "max-age=60"), false},
		{"surrogate content only", "GET", hdr(), 200, hdr("Cache-Control", "no-store", "Surrogate-Control", `content="ESI/1.0"`), false},
		{"surrogate gives 302 freshness", "GET", hdr(), 302, hdr("Surrogate-Control", "max-age=60;coral"), true},
	}
	for _, tt := range tests {
		got, reason := Storable(tt.method, tt.req, tt.status, tt.resp)
		if got != tt.want {
			t.Errorf("%s: Storable = %v (%s), want %v", tt.name, got, reason, tt.want)
		}
	}
}

func TestLifetime(t *testing.T) {
	p := Policy{HeuristicTTL: 12 * time.Hour}
	tests := []struct {
		name   string
		status int
		h      http.Header
		want   time.Duration
		src    Source
	}{
		{"s-maxage wins", 200, hdr("Cache-Control", "max-age=10, s-maxage=20", "Expires", date(t0.Add(time.Hour)), "Date", date(t0)), 20 * time.Second, FromSMaxAge},
		{"max-age over expires", 200, hdr("Cache-Control", "max-age=10", "Expires", date(t0.Add(time.Hour)), "Date", date(t0)), 10 * time.Second, FromMaxAge},
		{"expires minus date", 200, hdr("Expires", date(t0.Add(time.Hour)), "Date", date(t0)), time.Hour, FromExpires},
		{"expires in past", 200, hdr("Expires", date(t0.Add(-time.Hour)), "Date", date(t0)), 0, FromExpires},
		{"invalid expires", 200, hdr("Expires", "0", "Date", date(t0)), 0, FromExpires},
		{"expires without date uses response time", 200, hdr("Expires", date(t0.Add(time.Minute))), time.Minute, FromExpires},
		{"heuristic 10%", 200, hdr("Date", date(t0), "Last-Modified", date(t0.Add(-10*time.Hour))), time.Hour, FromHeuristic},
		{"heuristic capped", 200, hdr("Date", date(t0), "Last-Modified", date(t0.Add(-1000*time.Hour))), 12 * time.Hour, FromHeuristic},
		{"no last-modified: heuristic ttl", 200, hdr("Date", date(t0)), 12 * time.Hour, FromHeuristic},
		{"404 without last-modified", 404, hdr("Date", date(t0)), 0, FromNone},
		{"404 with last-modified", 404, hdr("Date", date(t0), "Last-Modified", date(t0.Add(-10*time.Minute))), time.Minute, FromHeuristic},
		{"302 not heuristic", 302, hdr("Date", date(t0)), 0, FromNone},
		{"302 public is heuristic", 302, hdr("Date", date(t0), "Cache-Control", "public"), 12 * time.Hour, FromHeuristic},
		{"surrogate over s-maxage", 200, hdr("Cache-Control", "max-age=10, s-maxage=20", "Surrogate-Control", "max-age=300"), 300 * time.Second, FromMaxAge},
		{"surrogate over expires", 200, hdr("Expires", date(t0.Add(time.Hour)), "Date", date(t0), "Surrogate-Control", "max-age=30+600"), 30 * time.Second, FromMaxAge},
		{"surrogate targeted wins", 200, hdr("Cache-Control", "max-age=10", "Surrogate-Control", "max-age=5, max-age=50;Coral"), 50 * time.Second, FromMaxAge},
		{"surrogate for others ignored", 200, hdr("Cache-Control", "max-age=10", "Surrogate-Control", "max-age=50;fastly"), 10 * time.Second, FromMaxAge},
		{"surrogate invalid max-age is 0", 200, hdr("Cache-Control", "max-age=10", "Surrogate-Control", "no-store;other, max-age=bad"), 0, FromMaxAge},
	}
	for _, tt := range tests {
		got, src := p.Lifetime(Entry{Status: tt.status, Header: tt.h, ResponseTime: t0})
		if got != tt.want || src != tt.src {
			t.Errorf("%s: Lifetime = %v (%v), want %v (%v)", tt.name, got, src, tt.want, tt.src)
		}
	}
	off := Policy{}
	if got, _ := off.Lifetime(Entry{Status: 200, Header: hdr("Date", date(t0)), ResponseTime: t0}); got != 0 {
		t.Errorf("heuristic_ttl=0 must disable heuristic freshness, got %v", got)
	}
	if got, _ := off.Lifetime(Entry{Status: 200, Header: hdr("Cache-Control", "max-age=5"), ResponseTime: t0}); got != 5*time.Second {
		t.Errorf("heuristic_ttl=0 must keep explicit freshness, got %v", got)
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		req  time.Time
		resp time.Time
		now  time.Time
		want time.Duration
	}{
		{"fresh from origin", hdr("Date", date(t0)), t0, t0, t0, 0},
		{"resident time", hdr("Date", date(t0)), t0, t0, t0.Add(90 * time.Second), 90 * time.Second},
		{"age header plus delay", hdr("Date", date(t0), "Age", "100"), t0, t0.Add(2 * time.Second), t0.Add(2 * time.Second), 102 * time.Second},
		{"apparent age from old Date", hdr("Date", date(t0.Add(-50*time.Second))), t0, t0, t0.Add(10 * time.Second), 60 * time.Second},
		{"date in future ignored", hdr("Date", date(t0.Add(time.Hour))), t0, t0, t0, 0},
		{"garbage age ignored", hdr("Date", date(t0), "Age", "-3"), t0, t0, t0, 0},
		{"age list takes first member", hdr("Date", date(t0), "Age", "7200,0"), t0, t0, t0, 2 * time.Hour},
		{"age list with spaces", hdr("Date", date(t0), "Age", " 60 , 7200"), t0, t0, t0, time.Minute},
		{"age lines take the first", hdr("Date", date(t0), "Age", "30", "Age", "900"), t0, t0, t0, 30 * time.Second},
		{"age list invalid first member ignored", hdr("Date", date(t0), "Age", "x, 7200"), t0, t0, t0, 0},
	}
	for _, tt := range tests {
		if got := Age(Entry{Header: tt.h, RequestTime: tt.req, ResponseTime: tt.resp}, tt.now); got != tt.want {
			t.Errorf("%s: Age = %v, want %v", tt.name, got, tt.want)
		}
	}
	if AgeHeader(1500*time.Millisecond) != "1" {
		t.Error("AgeHeader rounds down to whole seconds")
	}
}

func TestDecide(t *testing.T) {
	p := Policy{HeuristicTTL: 12 * time.Hour, MaxStale: 24 * time.Hour}
	entry := func(cc string) Entry {
		h := hdr("Date", date(t0))
		if cc != "" {
			h.Set("Cache-Control", cc)
		}
		return Entry{Status: 200, Header: h, RequestTime: t0, ResponseTime: t0}
	}
	tests := []struct {
		name  string
		req   http.Header
		cc    string
		after time.Duration
		want  Action
	}{
		{"fresh", hdr(), "max-age=60", 30 * time.Second, Serve},
		{"stale", hdr(), "max-age=60", 61 * time.Second, Revalidate},
		{"exactly at lifetime is stale", hdr(), "max-age=60", 60 * time.Second, Revalidate},
		{"response no-cache", hdr(), "no-cache, max-age=60", 0, Revalidate},
		{"request no-cache", hdr("Cache-Control", "no-cache"), "max-age=60", 0, Revalidate},
		{"request pragma", hdr("Pragma", "no-cache"), "max-age=60", 0, Revalidate},
		{"request max-age=0", hdr("Cache-Control", "max-age=0"), "max-age=60", 0, Revalidate},
		{"request max-age ok", hdr("Cache-Control", "max-age=40"), "max-age=60", 30 * time.Second, Serve},
		{"request max-age exceeded", hdr("Cache-Control", "max-age=20"), "max-age=60", 30 * time.Second, Revalidate},
		{"min-fresh", hdr("Cache-Control", "min-fresh=40"), "max-age=60", 30 * time.Second, Revalidate},
		{"max-stale accepts", hdr("Cache-Control", "max-stale=100"), "max-age=60", 90 * time.Second, Serve},
		{"max-stale any", hdr("Cache-Control", "max-stale"), "max-age=60", 90 * time.Hour, Serve},
		{"max-stale vs must-revalidate", hdr("Cache-Control", "max-stale"), "max-age=60, must-revalidate", 90 * time.Second, Revalidate},
		{"swr window", hdr(), "max-age=60, stale-while-revalidate=30", 80 * time.Second, ServeStale},
		{"swr past window", hdr(), "max-age=60, stale-while-revalidate=30", 100 * time.Second, Revalidate},
		{"swr vs s-maxage", hdr(), "s-maxage=60, stale-while-revalidate=30", 80 * time.Second, Revalidate},
		{"swr vs proxy-revalidate", hdr(), "max-age=60, proxy-revalidate, stale-while-revalidate=30", 80 * time.Second, Revalidate},
		{"heuristic fresh", hdr(), "", 11 * time.Hour, Serve},
		{"heuristic stale", hdr(), "", 13 * time.Hour, Revalidate},
	}
	for _, tt := range tests {
		d := p.Decide(tt.req, entry(tt.cc), t0.Add(tt.after))
		if d.Action != tt.want {
			t.Errorf("%s: Decide = %v (age %v lifetime %v), want %v", tt.name, d.Action, d.Age, d.Lifetime, tt.want)
		}
	}
}

func TestStaleOnError(t *testing.T) {
	p := Policy{HeuristicTTL: 12 * time.Hour, MaxStale: 24 * time.Hour}
	tests := []struct {
		name  string
		cc    string
		after time.Duration
		want  bool
	}{
		{"within max_stale", "max-age=60", 23 * time.Hour, true},
		{"beyond max_stale", "max-age=60", 25 * time.Hour, false},
		{"still fresh", "max-age=60", 30 * time.Second, true},
		{"must-revalidate", "max-age=60, must-revalidate", 2 * time.Minute, false},
		{"proxy-revalidate", "max-age=60, proxy-revalidate", 2 * time.Minute, false},
		{"no-cache", "no-cache", 2 * time.Minute, false},
		{"s-maxage", "s-maxage=60", 2 * time.Minute, false},
		{"stale-if-error longer", "max-age=60, stale-if-error=172800", 47 * time.Hour, true},
		{"stale-if-error shorter keeps max_stale", "max-age=60, stale-if-error=10", 23 * time.Hour, true},
	}
	for _, tt := range tests {
		e := Entry{Status: 200, Header: hdr("Date", date(t0), "Cache-Control", tt.cc), RequestTime: t0, ResponseTime: t0}
		if got := p.StaleOnError(e, t0.Add(tt.after)); got != tt.want {
			t.Errorf("%s: StaleOnError = %v, want %v", tt.name, got, tt.want)
		}
	}
	short := Policy{MaxStale: 0}
	e := Entry{Status: 200, Header: hdr("Date", date(t0), "Cache-Control", "max-age=60, stale-if-error=30"), RequestTime: t0, ResponseTime: t0}
	if !short.StaleOnError(e, t0.Add(80*time.Second)) || short.StaleOnError(e, t0.Add(100*time.Second)) {
		t.Error("stale-if-error window not honoured when max_stale is 0")
	}
}

func TestOriginFailed(t *testing.T) {
	for code, want := range map[int]bool{200: false, 304: false, 403: true, 404: true, 410: false, 429: true, 500: true, 502: true, 503: true, 400: false} {
		if OriginFailed(code) != want {
			t.Errorf("OriginFailed(%d) != %v", code, want)
		}
	}
}

func TestRemoveHopByHop(t *testing.T) {
	h := hdr("Connection", "close, X-Secret", "X-Secret", "1", "Keep-Alive", "5", "Transfer-Encoding", "chunked",
		"Upgrade", "h2c", "Proxy-Authorization", "x", "Te", "trailers", "Content-Type", "text/plain")
	RemoveHopByHop(h)
	if len(h) != 1 || h.Get("Content-Type") != "text/plain" {
		t.Errorf("after RemoveHopByHop: %v", h)
	}
}

func TestStripQualified(t *testing.T) {
	h := hdr("Cache-Control", `private="X-User", no-cache="Set-Cookie"`, "X-User", "bob", "Set-Cookie", "a=b", "X-Keep", "1")
	StripQualified(h)
	if h.Get("X-User") != "" || h.Get("Set-Cookie") != "" || h.Get("X-Keep") != "1" {
		t.Errorf("after StripQualified: %v", h)
	}
}

func TestVary(t *testing.T) {
	f, star := VaryFields(hdr("Vary", "accept-encoding, Accept-Language", "Vary", "Accept-Encoding"))
	if star || !reflect.DeepEqual(f, []string{"Accept-Encoding", "Accept-Language"}) {
		t.Fatalf("VaryFields = %v %v", f, star)
	}
	if _, star := VaryFields(hdr("Vary", "Accept, *")); !star {
		t.Error("Vary: * not detected")
	}
	a := VaryValues(f, hdr("Accept-Encoding", "gzip,  br", "Accept-Language", "en"))
	b := VaryValues(f, hdr("Accept-Encoding", "gzip", "Accept-Encoding", "br", "Accept-Language", "en"))
	c := VaryValues(f, hdr("Accept-Encoding", "gzip", "Accept-Language", "fr"))
	d := VaryValues(f, hdr("Accept-Language", "en"))
	e := VaryValues(f, hdr("Accept-Encoding", "", "Accept-Language", "en"))
	if a != b {
		t.Errorf("normalisation: %q != %q", a, b)
	}
	if a == c || d == e || a == d {
		t.Errorf("distinct requests share a key: %q %q %q %q", a, c, d, e)
	}
}

func TestRevalidationHeaders(t *testing.T) {
	h, ok := RevalidationHeaders(hdr("Etag", `"v1"`, "Last-Modified", date(t0)))
	if !ok || h.Get("If-None-Match") != `"v1"` || h.Get("If-Modified-Since") != date(t0) {
		t.Errorf("got %v %v", h, ok)
	}
	if _, ok := RevalidationHeaders(hdr("Content-Type", "x")); ok {
		t.Error("no validators: ok must be false")
	}
}

func TestMatchesAndMerge304(t *testing.T) {
	stored := hdr("Etag", `"v1"`, "Content-Length", "10", "Cache-Control", "max-age=10", "X-Old", "1", "Date", date(t0))
	tests := []struct {
		resp http.Header
		want bool
	}{
		{hdr("Etag", `"v1"`), true},
		{hdr("Etag", `W/"v1"`), true},
		{hdr("Etag", `"v2"`), false},
		{hdr(), true},
		{hdr("Last-Modified", date(t0)), false}, // stored has none
	}
	for _, tt := range tests {
		if got := Matches304(stored, tt.resp); got != tt.want {
			t.Errorf("Matches304(%v) = %v, want %v", tt.resp, got, tt.want)
		}
	}
	resp := hdr("Etag", `"v1"`, "Content-Length", "0", "Cache-Control", "max-age=99", "Date", date(t0.Add(time.Hour)), "Connection", "close")
	Merge304(stored, resp)
	if stored.Get("Cache-Control") != "max-age=99" || stored.Get("Content-Length") != "10" ||
		stored.Get("X-Old") != "1" || stored.Get("Date") != date(t0.Add(time.Hour)) || stored.Get("Connection") != "" {
		t.Errorf("merged header: %v", stored)
	}
	if resp.Get("Connection") != "close" {
		t.Error("Merge304 modified the 304 header")
	}
}

// TestMerge304KeepsBodyFields: a 304 never relabels the stored body
// (RFC 9111 §3.2, §4.3.4).
func TestMerge304KeepsBodyFields(t *testing.T) {
	tests := []struct {
		field, stored, in string
		updated           bool
	}{
		{"Content-Length", "10", "0", false},
		{"Content-Encoding", "gzip", "br", false},
		{"Content-Range", "bytes 0-9/10", "bytes 0-4/5", false},
		{"Content-Md5", "Q2hlY2sgSW50ZWdyaXR5IQ==", "AAAAAAAAAAAAAAAAAAAAAA==", false},
		{"Content-Type", "text/html", "image/png", false},
		{"Digest", "sha-256=abc", "sha-256=def", false},
		{"Transfer-Encoding", "", "chunked", false},
		{"Cache-Control", "max-age=10", "max-age=99", true},
		{"Expires", date(t0), date(t0.Add(time.Hour)), true},
		{"X-Extra", "a", "b", true},
	}
	for _, tt := range tests {
		stored := hdr("Etag", `"v1"`)
		if tt.stored != "" {
			stored.Set(tt.field, tt.stored)
		}
		Merge304(stored, hdr("Etag", `"v1"`, tt.field, tt.in))
		want := tt.stored
		if tt.updated {
			want = tt.in
		}
		if got := stored.Get(tt.field); got != want {
			t.Errorf("%s: after 304 with %q: stored %q, want %q", tt.field, tt.in, got, want)
		}
	}
}

func TestParseSurrogateControl(t *testing.T) {
	none := Surrogate{MaxAge: Unset, StaleWindow: Unset}
	with := func(f func(*Surrogate)) Surrogate { s := none; f(&s); return s }
	tests := []struct {
		in   []string
		want Surrogate
	}{
		{nil, none},
		{[]string{`content="ESI/1.0"`}, none},
		{[]string{"max-age=60"}, with(func(s *Surrogate) { s.MaxAge = 60 })},
		{[]string{"max-age=60+3600"}, with(func(s *Surrogate) { s.MaxAge = 60; s.StaleWindow = 3600 })},
		{[]string{"max-age=60+x"}, with(func(s *Surrogate) { s.MaxAge = 60 })},
		{[]string{"max-age=x"}, with(func(s *Surrogate) { s.MaxAge = 0 })},
		{[]string{"no-store"}, with(func(s *Surrogate) { s.NoStore = true })},
		{[]string{"No-Store-Remote"}, with(func(s *Surrogate) { s.NoStore = true })},
		{[]string{"no-store;varnish, max-age=5;fastly"}, none},
		{[]string{"max-age=5, max-age=50;coral"}, with(func(s *Surrogate) { s.MaxAge = 50 })},
		{[]string{"max-age=50;CORAL", "max-age=5"}, with(func(s *Surrogate) { s.MaxAge = 50 })},
		{[]string{"max-age=1, max-age=2"}, with(func(s *Surrogate) { s.MaxAge = 1 })},
		{[]string{`content="a;b", max-age=9;coral`}, with(func(s *Surrogate) { s.MaxAge = 9 })},
		{[]string{"max-age=9;bad target"}, none},
		{[]string{";;;,=,max-age"}, with(func(s *Surrogate) { s.MaxAge = 0 })},
	}
	for _, tt := range tests {
		if got := ParseSurrogateControl(tt.in); got != tt.want {
			t.Errorf("ParseSurrogateControl(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestCoralDirectives(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"cache-control alone", hdr("Cache-Control", "no-cache, max-age=5"), "no-cache, max-age=5"},
		{"surrogate replaces no-store and no-cache", hdr("Cache-Control", "no-store, no-cache", "Surrogate-Control", "max-age=60"), "max-age=60"},
		{"surrogate s-maxage keeps its revalidation", hdr("Cache-Control", "s-maxage=5", "Surrogate-Control", "max-age=60"), "proxy-revalidate, max-age=60"},
		{"surrogate stale window", hdr("Cache-Control", "max-age=1, stale-if-error=5", "Surrogate-Control", "max-age=60+600"), "max-age=60, stale-if-error=600"},
		{"surrogate keeps private and must-revalidate", hdr("Cache-Control", "private, must-revalidate", "Surrogate-Control", "max-age=60"), "private, must-revalidate, max-age=60"},
		{"surrogate no-store", hdr("Cache-Control", "max-age=5", "Surrogate-Control", "no-store"), "no-store, max-age=5"},
		{"pragma without surrogate", hdr("Pragma", "no-cache"), "no-cache"},
	}
	for _, tt := range tests {
		if got := CoralDirectives(tt.h).String(); got != tt.want {
			t.Errorf("%s: CoralDirectives = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// FuzzParseSurrogateControl checks that parsing outside input never panics
// and yields deltas in range.
func FuzzParseSurrogateControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60", "max-age=60+600;coral, no-store;varnish", `content="ESI/1.0;x", no-store-remote`,
		";;;,=,", "max-age=+", `max-age="5+6";coral`, "max-age=99999999999999999999+99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := ParseSurrogateControl([]string{s})
		for _, v := range []Seconds{sc.MaxAge, sc.StaleWindow} {
			if v < Unset || v > MaxDelta {
				t.Fatalf("%q: delta %d out of range", s, v)
			}
		}
		_ = CoralDirectives(http.Header{"Surrogate-Control": {s}, "Cache-Control": {s}})
	})
}

func TestNotModified(t *testing.T) {
	h := hdr("Etag", `"abc"`, "Last-Modified", date(t0), "Date", date(t0.Add(time.Hour)))
	tests := []struct {
		name   string
		req    http.Header
		status int
		stored http.Header
		want   bool
	}{
		{"inm match", hdr("If-None-Match", `"abc"`), 200, h, true},
		{"inm weak match", hdr("If-None-Match", `W/"abc"`), 200, h, true},
		{"inm list", hdr("If-None-Match", `"x", "a,b", "abc"`), 200, h, true},
		{"inm star", hdr("If-None-Match", "*"), 200, h, true},
		{"inm mismatch", hdr("If-None-Match", `"zzz"`), 200, h, false},
		{"inm wins over ims", hdr("If-None-Match", `"zzz"`, "If-Modified-Since", date(t0)), 200, h, false},
		{"ims equal", hdr("If-Modified-Since", date(t0)), 200, h, true},
		{"ims later", hdr("If-Modified-Since", date(t0.Add(time.Minute))), 200, h, true},
		{"ims earlier", hdr("If-Modified-Since", date(t0.Add(-time.Minute))), 200, h, false},
		{"ims garbage", hdr("If-Modified-Since", "yesterday"), 200, h, false},
		{"ims uses date without lm", hdr("If-Modified-Since", date(t0.Add(2*time.Hour))), 200, hdr("Date", date(t0)), true},
		{"not 200", hdr("If-None-Match", `"abc"`), 404, h, false},
		{"no conditionals", hdr(), 200, h, false},
	}
	for _, tt := range tests {
		if got := NotModified(tt.req, tt.status, tt.stored); got != tt.want {
			t.Errorf("%s: NotModified = %v, want %v", tt.name, got, tt.want)
		}
	}
	nm := NotModifiedHeader(hdr("Etag", `"a"`, "Content-Type", "text/html", "Cache-Control", "max-age=5", "Content-Length", "5"))
	if nm.Get("Etag") == "" || nm.Get("Cache-Control") == "" || nm.Get("Content-Type") != "" || nm.Get("Content-Length") != "" {
		t.Errorf("NotModifiedHeader = %v", nm)
	}
}

// FuzzParseCacheControl checks that parsing never panics and that the
// canonical form of whatever was parsed parses back to the same directives.
func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60, public", `no-cache="Set-Cookie, X", private`, "max-stale", `a="b\"c,d", s-maxage=1`,
		"stale-while-revalidate=5,stale-if-error=6,min-fresh=7", "max-age=99999999999999999999999", ",,,=,",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseCacheControl([]string{s})
		again := ParseCacheControl([]string{d.String()})
		if !reflect.DeepEqual(d, again) {
			t.Fatalf("%q parsed to %+v; its String %q parses to %+v", s, d, d.String(), again)
		}
		for _, v := range []Seconds{d.MaxAge, d.SMaxAge, d.MaxStale, d.MinFresh, d.StaleIfError, d.StaleWhileRevalidate} {
			if v < Unset || v > MaxDelta {
				t.Fatalf("%q: delta %d out of range", s, v)
			}
		}
	})
}

// TestDecideSurrogate: a Surrogate-Control max-age lets Coral serve what
// Cache-Control tells browsers to revalidate every time.
func TestDecideSurrogate(t *testing.T) {
	p := Policy{HeuristicTTL: 12 * time.Hour, MaxStale: 24 * time.Hour}
	e := Entry{Status: 200, RequestTime: t0, ResponseTime: t0,
		Header: hdr("Date", date(t0), "Cache-Control", "no-cache, max-age=0", "Surrogate-Control", "max-age=60")}
	if d := p.Decide(hdr(), e, t0.Add(30*time.Second)); d.Action != Serve {
		t.Errorf("within surrogate max-age: %v, want serve", d.Action)
	}
	if d := p.Decide(hdr(), e, t0.Add(61*time.Second)); d.Action != Revalidate {
		t.Errorf("past surrogate max-age: %v, want revalidate", d.Action)
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in         string
		size       int64
		start, len int64
		kind       RangeKind
	}{
		{"", 100, 0, 0, RangeIgnore},
		{"bytes=0-99", 10240, 0, 100, RangeServe},
		{"bytes=-100", 10240, 10140, 100, RangeServe},
		{"bytes=5000-", 10240, 5000, 5240, RangeServe},
		{"bytes=0-0", 10, 0, 1, RangeServe},
		{"bytes=9-20", 10, 9, 1, RangeServe}, // last position cut to the end
		{"bytes=-20", 10, 0, 10, RangeServe}, // suffix longer than the body
		{"Bytes=2-3", 10, 2, 2, RangeServe},  // unit is case-insensitive
		{"bytes = 2-3", 10, 0, 0, RangeIgnore},
		{"bytes=0-99999999999999999999", 10, 0, 10, RangeServe},
		{"bytes=10-", 10, 0, 0, RangeUnsatisfiable},
		{"bytes=20000-30000", 10240, 0, 0, RangeUnsatisfiable},
		{"bytes=-0", 10, 0, 0, RangeUnsatisfiable},
		{"bytes=0-", 0, 0, 0, RangeUnsatisfiable},
		{"bytes=-5", 0, 0, 0, RangeUnsatisfiable},
		{"bytes=0-1,5-6", 10, 0, 0, RangeIgnore}, // several ranges: whole body
		{"bytes=5-2", 10, 0, 0, RangeIgnore},
		{"bytes=a-b", 10, 0, 0, RangeIgnore},
		{"bytes=-", 10, 0, 0, RangeIgnore},
		{"bytes=--5", 10, 0, 0, RangeIgnore},
		{"bytes=+1-2", 10, 0, 0, RangeIgnore},
		{"items=0-1", 10, 0, 0, RangeIgnore},
		{"bytes 0-1", 10, 0, 0, RangeIgnore},
	}
	for _, tt := range tests {
		r, kind := ParseRange(tt.in, tt.size)
		if kind != tt.kind || (kind == RangeServe && (r.Start != tt.start || r.Length != tt.len)) {
			t.Errorf("ParseRange(%q, %d) = %+v %v, want {%d %d} %v", tt.in, tt.size, r, kind, tt.start, tt.len, tt.kind)
		}
	}
	if got := (ByteRange{Start: 0, Length: 100}).ContentRange(10240); got != "bytes 0-99/10240" {
		t.Errorf("ContentRange = %q", got)
	}
	if got := UnsatisfiedRange(10240); got != "bytes */10240" {
		t.Errorf("UnsatisfiedRange = %q", got)
	}
}

func TestIfRangeMatches(t *testing.T) {
	h := hdr("Etag", `"v1"`, "Last-Modified", date(t0), "Date", date(t0.Add(time.Hour)))
	weak := hdr("Etag", `W/"v1"`, "Last-Modified", date(t0), "Date", date(t0))
	tests := []struct {
		name string
		ir   string
		h    http.Header
		want bool
	}{
		{"absent", "", h, true},
		{"strong etag match", `"v1"`, h, true},
		{"etag mismatch", `"v2"`, h, false},
		{"weak validator never matches", `W/"v1"`, h, false},
		{"stored weak etag", `"v1"`, weak, false},
		{"date equals strong last-modified", date(t0), h, true},
		{"date differs", date(t0.Add(time.Second)), h, false},
		{"last-modified not strong", date(t0), weak, false},
		{"garbage", "yesterday", h, false},
	}
	for _, tt := range tests {
		if got := IfRangeMatches(hdr("If-Range", tt.ir), tt.h); got != tt.want {
			t.Errorf("%s: IfRangeMatches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNormalizeAcceptEncoding(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{nil, ""},
		{[]string{""}, ""},
		{[]string{"gzip"}, "gzip"},
		{[]string{"gzip, deflate, br, zstd"}, "gzip"},
		{[]string{"br", "GZIP;q=0.5"}, "gzip"},
		{[]string{"x-gzip"}, "gzip"},
		{[]string{"br, deflate"}, ""},
		{[]string{"identity"}, ""},
		{[]string{"gzip;q=0"}, ""},
		{[]string{"gzip; q=0.000"}, ""},
		{[]string{"*"}, "gzip"},
		{[]string{"*;q=0"}, ""},
		{[]string{"*, gzip;q=0"}, ""},
		{[]string{"gzip;q=abc"}, ""},
		{[]string{"gzip;q=2"}, ""},
		{[]string{"gzip;level=1;q=0.3"}, "gzip"},
	}
	for _, tt := range tests {
		if got := NormalizeAcceptEncoding(tt.lines); got != tt.want {
			t.Errorf("NormalizeAcceptEncoding(%q) = %q, want %q", tt.lines, got, tt.want)
		}
	}
}

func TestEncodedWithoutVary(t *testing.T) {
	tests := []struct {
		h    http.Header
		want bool
	}{
		{hdr(), false},
		{hdr("Content-Encoding", "identity"), false},
		{hdr("Content-Encoding", "gzip"), true},
		{hdr("Content-Encoding", "br", "Vary", "Accept"), true},
		{hdr("Content-Encoding", "gzip", "Vary", "accept-encoding"), false},
		{hdr("Content-Encoding", "gzip", "Vary", "Accept, Accept-Encoding"), false},
		{hdr("Content-Encoding", "gzip", "Vary", "*"), false},
	}
	for _, tt := range tests {
		if got := EncodedWithoutVary(tt.h); got != tt.want {
			t.Errorf("EncodedWithoutVary(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

// FuzzParseRange checks that any Range value gives an answer inside the
// body, and that If-Range never matches a weak validator.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-100", "bytes=5000-", "bytes=0-1,2-3", "bytes=-", "bytes=99999999999999999999-"} {
		f.Add(s, int64(10240))
	}
	f.Fuzz(func(t *testing.T, s string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		r, kind := ParseRange(s, size)
		if kind == RangeServe && (r.Start < 0 || r.Length <= 0 || r.Start+r.Length > size) {
			t.Fatalf("ParseRange(%q, %d) = %+v: outside the body", s, size, r)
		}
		if IfRangeMatches(hdr("If-Range", s), hdr("Etag", s, "Last-Modified", s)) && strings.HasPrefix(strings.TrimSpace(s), "W/") {
			t.Fatalf("If-Range %q: a weak validator matched", s)
		}
	})
}

// FuzzNormalizeAcceptEncoding: any header normalises to "gzip" or "", and
// "gzip" only when the header names gzip or *.
func FuzzNormalizeAcceptEncoding(f *testing.F) {
	for _, s := range []string{"gzip", "gzip;q=0", "*;q=0.1", "br;q=1, gzip;q=", ";;;,,=q", "x-gzip;Q=0.9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeAcceptEncoding([]string{s})
		if got != "" && got != "gzip" {
			t.Fatalf("%q normalised to %q", s, got)
		}
		if got == "gzip" && !strings.Contains(strings.ToLower(s), "gzip") && !strings.Contains(s, "*") {
			t.Fatalf("%q normalised to gzip", s)
		}
	})
}

func TestEncodingAcceptable(t *testing.T) {
	tests := []struct {
		h    http.Header
		ae   string
		want bool
	}{
		{hdr(), "", true},
		{hdr("Content-Encoding", "identity"), "", true},
		{hdr("Content-Encoding", "gzip"), "gzip", true},
		{hdr("Content-Encoding", "X-GZIP"), "gzip", true},
		{hdr("Content-Encoding", "gzip"), "", false},
		{hdr("Content-Encoding", "br"), "gzip", false},
		{hdr("Content-Encoding", "gzip, br"), "gzip", false},
	}
	for _, tt := range tests {
		if got := EncodingAcceptable(tt.h, tt.ae); got != tt.want {
			t.Errorf("EncodingAcceptable(%v, %q) = %v, want %v", tt.h, tt.ae, got, tt.want)
		}
	}
}
