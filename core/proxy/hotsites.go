package proxy

import (
	"strings"

	"github.com/coralcdn/coral/core/coralurl"
)

// The hot cache finds entries by Host header, while a custom domain's
// origin comes from its group's manifest (Options.Sites) and may change.
// SitesChanged drops the entries of the names whose origin changed; an
// entry being filled while that happens is not kept (putHot), so no visitor
// is answered from the old origin's copy once the new manifest is in force.

// SitesChanged tells the proxy that the custom domains in hosts (lower
// case, no port, as Options.Sites takes them) map to another origin now,
// or started or stopped mapping: the hot cache forgets the answers it
// holds for those names, in any case or port, and for their Coralized
// forms. Call it after Options.Sites answers the new way.
func (p *Proxy) SitesChanged(hosts ...string) {
	if p.hot == nil || len(hosts) == 0 {
		return
	}
	changed := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		changed[h] = true
	}
	p.hot.sites.Add(1) // before dropping: see putHot
	p.hot.dropIf(func(hostHeader string) bool {
		host, _ := coralurl.StripPort(hostHeader)
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		site, _ := strings.CutSuffix(host, "."+p.zone)
		return changed[host] || changed[site]
	})
}

// putHot keeps he, filled for a request with this Host header answered
// from origin o, unless the Host maps elsewhere by now or SitesChanged ran
// meanwhile (its drop may have come before this put).
func (p *Proxy) putHot(he *hotEntry, hostHeader string, o coralurl.Origin) {
	gen := p.hot.sites.Load()
	if now, err := p.originOf(hostHeader); err != nil || now != o {
		return
	}
	p.hot.put(he)
	if p.hot.sites.Load() != gen {
		p.hot.remove(he)
	}
}

// dropIf removes the entries whose request Host header matches.
func (c *hotCache) dropIf(match func(hostHeader string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.ring) - 1; i >= 0; i-- { // removeLocked moves the last entry to i
		if match(c.ring[i].key.host) {
			c.removeLocked(c.ring[i])
		}
	}
}
