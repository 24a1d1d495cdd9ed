package proxy

import (
	"slices"
	"testing"

	"github.com/coralcdn/coral/core/coralurl"
)

// SitesChanged drops the hot entries of the moved sites' names, whatever
// case, port or trailing dot the visitor's Host had, and of their
// Coralized forms; other sites' entries stay.
func TestSitesChangedDropsOnlyTheirNames(t *testing.T) {
	e := newEnv(t, nil)
	hosts := []struct {
		host string
		kept bool
	}{
		{"www.site.org", false},
		{"WWW.Site.Org:8080", false},
		{"www.site.org.", false},
		{"www.site.org." + testZone, false},
		{"www.site.org.gq3f." + testZone, false},
		{"www.other.org", true},
		{"www.other.org." + testZone, true},
		{"site.org", true},
		{"www.site.org.evil.example", true},
	}
	for _, h := range hosts {
		e.p.hot.put(&hotEntry{key: hotKey{h.host, "/"}, size: hotOverhead})
	}
	e.p.SitesChanged("www.site.org", "www.site.org.gq3f")
	for _, h := range hosts {
		if kept := e.p.hot.get(hotKey{h.host, "/"}) != nil; kept != h.kept {
			t.Errorf("Host %q: kept %v, want %v", h.host, kept, h.kept)
		}
	}
	if n := len(e.p.hot.ring); n != 4 || slices.Contains(e.p.hot.ring, nil) {
		t.Errorf("%d entries left in the ring, want 4", n)
	}
}

// An entry filled for a Host whose origin moved while its request was
// answered is not kept: the next visitor goes to the new origin.
func TestHotFillForAMovedSiteNotKept(t *testing.T) {
	oldOrigin := coralurl.Origin{Scheme: "http", Host: "old.example", Port: 80}
	newOrigin := coralurl.Origin{Scheme: "http", Host: "new.example", Port: 80}
	e := newEnv(t, func(o *Options) {
		o.Sites = func(host string) (coralurl.Origin, bool) { return newOrigin, host == "www.site.org" }
	})
	for _, tc := range []struct {
		host   string
		origin coralurl.Origin
		kept   bool
	}{
		{"www.site.org", oldOrigin, false},
		{"www.site.org", newOrigin, true},
		{"old.example." + testZone, oldOrigin, true},
	} {
		he := &hotEntry{key: hotKey{tc.host, "/"}, size: hotOverhead}
		e.p.putHot(he, tc.host, tc.origin)
		if kept := e.p.hot.get(he.key) == he; kept != tc.kept {
			t.Errorf("Host %s filled from %s: kept %v, want %v", tc.host, tc.origin.Host, kept, tc.kept)
		}
	}
}
