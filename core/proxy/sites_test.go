package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/coralurl"
)

// A custom domain of a site group (Host: www.site.org, or its Coralized
// name, with or without the proxy's port) is fetched from the origin the
// manifest names, never from the public name; other names are unchanged.
func TestCustomDomains(t *testing.T) {
	var e *env
	var o *origin
	e = newEnv(t, func(opts *Options) {
		opts.Sites = func(host string) (coralurl.Origin, bool) {
			if host != "www.site.org" {
				return coralurl.Origin{}, false
			}
			org, _, err := coralurl.ParseOrigin(o.URL)
			return org, err == nil
		}
	})
	o = newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("from the origin, Host " + r.Host))
	})
	for _, host := range []string{"www.site.org", "WWW.Site.org:8080", "www.site.org." + testZone, "www.site.org." + testZone + ":8080", "www.site.org."} {
		r := e.fetch("GET", host, "/page")
		if r.status != 200 || !strings.HasPrefix(r.body, "from the origin") {
			t.Errorf("Host %q: %d %q", host, r.status, trunc(r.body))
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("origin hits %d, want 1 (one cached object under every name)", n)
	}
	if got := o.lastRequest().Host; strings.Contains(got, "site.org") {
		t.Errorf("the origin was asked for Host %q, the public name", got)
	}
	for _, host := range []string{"www.other.org", "site.org", "evil.www.site.org"} {
		if r := e.fetch("GET", host, "/"); r.status != 400 || !strings.Contains(r.body, "not an open proxy") {
			t.Errorf("Host %q: %d %q, want 400 not an open proxy", host, r.status, trunc(r.body))
		}
	}
	if r := e.fetch("GET", o.host(), "/page"); r.status != 200 {
		t.Errorf("the origin's own Coralized name: %d", r.status)
	}
}

// A custom domain several site groups claim (Options.SiteDisputed) is
// fetched from nowhere, by its public name or its Coralized form: the
// visitor gets a 409 saying why. Other custom domains are still served.
func TestDisputedCustomDomain(t *testing.T) {
	var e *env
	var o *origin
	e = newEnv(t, func(opts *Options) {
		opts.Sites = func(host string) (coralurl.Origin, bool) {
			org, _, err := coralurl.ParseOrigin(o.URL)
			return org, err == nil && host == "www.fine.org"
		}
		opts.SiteDisputed = func(host string) (string, bool) {
			return "groups ga and gb both claim " + host, host == "www.site.org"
		}
	})
	o = newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("from the origin"))
	})
	for _, tc := range []struct {
		host   string
		status int
		body   string
	}{
		{"www.site.org", 409, "groups ga and gb both claim www.site.org"},
		{"WWW.Site.org:8080", 409, "groups ga and gb both claim www.site.org"},
		{"www.site.org." + testZone, 409, "groups ga and gb both claim www.site.org"},
		{"www.fine.org", 200, "from the origin"},
		{"www.fine.org." + testZone, 200, "from the origin"},
		{"www.other.org", 400, "not an open proxy"},
	} {
		if r := e.fetch("GET", tc.host, "/page"); r.status != tc.status || !strings.Contains(r.body, tc.body) {
			t.Errorf("Host %q: %d %q, want %d %q", tc.host, r.status, trunc(r.body), tc.status, tc.body)
		}
	}
	if n := o.hits.Load(); n != 1 {
		t.Errorf("origin hits %d, want 1 (www.fine.org only)", n)
	}
}
