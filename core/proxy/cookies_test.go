package proxy

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/coralurl"
)

// With strip_cookies off, an origin's cookies reach its visitors, but not
// one scoped to the zone or to other Coralized names: every Coralized site
// shares the zone, so such a cookie would follow the visitor to all of
// them (and to their origins). Cached and passed-through responses alike.
func TestCookiesForOtherCoralizedSitesAreDropped(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.StripCookies = false; o.PassUnsafeMethods = true })
	var o *origin
	cookies := func(coralHost string) []string {
		return []string{
			"host=1; Path=/",                            // host-only: kept
			"own=2; Domain=" + coralHost,                // the origin's Coralized name: kept
			"dotted=3; Domain=." + coralHost,            // the same, old style: kept
			"native=4; Domain=example.com",              // outside the zone: kept (the browser judges it)
			"zone=5; Domain=" + testZone,                // every Coralized site
			"zonedot=6; Domain=." + testZone,            // the same
			"parent=7; Domain=" + parentOf(testZone),    // above the zone
			"other=8; Domain=127.0.0.1.9." + testZone,   // another Coralized name
			"bad=9; Domain=" + testZone + "; Max-Age=x", // still scoped to the zone
		}
	}
	o = newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		for _, c := range cookies(o.host()) {
			w.Header().Add("Set-Cookie", c)
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Write([]byte("page"))
	})
	want := []string{"host", "own", "dotted", "native"}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := e.fetch(method, o.host(), "/page")
		var got []string
		for _, c := range r.header.Values("Set-Cookie") {
			name, _, _ := strings.Cut(c, "=")
			got = append(got, name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: cookies reaching the visitor %v, want %v", method, got, want)
		}
	}
}

// parentOf is zone without its first label ("" for a one-label zone).
func parentOf(zone string) string {
	_, parent, _ := strings.Cut(zone, ".")
	return parent
}

// Any origin's Set-Cookie lines: nothing panics, and what stays is a
// subset of what came, none of it scoped to the zone.
func FuzzDropWideCookies(f *testing.F) {
	for _, s := range []string{"a=1", "b=2; Domain=coral.test", "c=3; Domain=.Coral.Test; Path=/", "d=4; Domain=", "=; Domain=test", "e=5; Domain=x.coral.test"} {
		f.Add(s, "example.com")
	}
	p := &Proxy{zone: testZone}
	f.Fuzz(func(t *testing.T, line, host string) {
		o := coralurl.Origin{Scheme: "http", Host: strings.ToLower(host), Port: 80}
		h := http.Header{"Set-Cookie": {line, "keep=1"}}
		p.dropWideCookies(h, o)
		for _, got := range h.Values("Set-Cookie") {
			if got != line && got != "keep=1" {
				t.Fatalf("%q came out of %q", got, line)
			}
			if c, err := http.ParseSetCookie(got); err == nil && strings.EqualFold(strings.TrimPrefix(c.Domain, "."), testZone) {
				t.Fatalf("kept a cookie for the zone: %q", got)
			}
		}
	})
}
