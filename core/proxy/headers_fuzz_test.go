package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/coralurl"
)

// FuzzVia feeds a Via line a request may arrive with. isLoop never panics,
// finds this node's entry wherever it is appended, and never finds it in a
// line that does not hold the node's token.
func FuzzVia(f *testing.F) {
	for _, s := range []string{
		"1.1 " + testToken, "1.0 a, 1.1 b (Coral)", "HTTP/1.1 " + strings.ToUpper(testToken), ",,,", "1.1", "\x00 \xff",
	} {
		f.Add(s)
	}
	p := &Proxy{token: testToken}
	f.Fuzz(func(t *testing.T, via string) {
		got := p.isLoop(http.Header{"Via": {via}})
		if !strings.Contains(strings.ToLower(via), strings.ToLower(testToken)) && got {
			t.Fatalf("Via %q taken for a loop without the token", via)
		}
		if !p.isLoop(http.Header{"Via": {via + ", " + p.via()}}) {
			t.Fatalf("Via %q plus this node's entry not taken for a loop", via)
		}
	})
}

// FuzzLocation feeds a Location an origin may answer with. Rewriting never
// panics; a rewritten value is an http URL on the origin's Coralized name
// (and the visitor's port) with the same path, query and fragment; a value
// left alone is exactly the origin's.
func FuzzLocation(f *testing.F) {
	for _, s := range []string{
		"http://example.com/a?b=c#d", "https://example.com/x", "//example.com/y", "/relative", "http://other.org/",
		"http://user:pw@example.com:80/", "http://example.com:8080/", "mailto:x@example.com", "http://[::1]/", "%zz",
	} {
		f.Add(s, "8080")
	}
	p := &Proxy{zone: testZone}
	o := coralurl.Origin{Scheme: "http", Host: "example.com", Port: 80}
	f.Fuzz(func(t *testing.T, loc, port string) {
		h := http.Header{"Location": {loc}}
		p.rewriteLocations(h, o, "proxy.example:"+port)
		out := h.Get("Location")
		if out == loc {
			return
		}
		in, err1 := url.Parse(loc)
		u, err2 := url.Parse(out)
		if err1 != nil || err2 != nil {
			t.Fatalf("%q rewritten to %q: %v %v", loc, out, err1, err2)
		}
		if host, _ := coralurl.StripPort(u.Host); u.Scheme != "http" || host != o.CoralHost(testZone) || u.User != nil {
			t.Fatalf("%q rewritten to %q, not an http URL on %s", loc, out, o.CoralHost(testZone))
		}
		if u.Path != in.Path || u.RawQuery != in.RawQuery || u.Fragment != in.Fragment {
			t.Fatalf("%q rewritten to %q changed more than the authority", loc, out)
		}
	})
}
