package proxy

import (
	"net/http"
	"strings"

	"github.com/coralcdn/coral/core/coralurl"
)

// dropWideCookies removes the Set-Cookie fields (kept with strip_cookies
// off) whose Domain reaches other Coralized sites: the zone, a parent of
// it, or a name inside it other than the origin's own Coralized name. A
// browser takes a cookie for any parent of the page's name, and every
// Coralized site shares the zone: an origin's "Domain=<zone>" cookie would
// reach every other Coralized site (sent on to their origins, and making
// every later request of that browser personal, so uncached). Host-only
// cookies, and cookies for domains outside the zone (the origin's own,
// which the browser refuses on a Coralized name; a group site's public
// domain) stay.
func (p *Proxy) dropWideCookies(h http.Header, o coralurl.Origin) {
	lines := h.Values("Set-Cookie")
	if len(lines) == 0 {
		return
	}
	host, zone := strings.ToLower(o.CoralHost(p.zone)), strings.ToLower(p.zone)
	kept := lines[:0:0]
	for _, line := range lines {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			continue // the browser would refuse it too
		}
		d := strings.TrimPrefix(strings.ToLower(c.Domain), ".")
		wide := d == zone || strings.HasSuffix(zone, "."+d) || strings.HasSuffix(d, "."+zone) && d != host
		if d == "" || !wide {
			kept = append(kept, line)
		}
	}
	if len(kept) == 0 {
		h.Del("Set-Cookie")
		return
	}
	h["Set-Cookie"] = kept
}
