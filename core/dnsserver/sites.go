package dnsserver

import "strings"

// Sites tells the server which Coralized names are custom domains of a site
// group: for a name's part before the zone ("www.site.org", the target of
// the site owner's CNAME), the proxy IDs of the group's member nodes.
type Sites func(site string) (members []string, ok bool)

// WithSites makes the server answer a group site's names with its group's
// proxies (those live and reachable; all proxies if none is).
func WithSites(f Sites) Option { return func(s *Server) { s.sites = f } }

// siteMembers returns the member proxies of the group whose site qname
// (lower case, trailing dot) names.
func (s *Server) siteMembers(qname string) ([]string, bool) {
	if s.sites == nil {
		return nil, false
	}
	rel, ok := strings.CutSuffix(strings.TrimSuffix(strings.ToLower(qname), "."), "."+s.zone)
	if !ok {
		return nil, false
	}
	return s.sites(rel)
}

// onlyMembers is the part of ps whose IDs are in members (a new slice: the
// directory snapshot is shared).
func onlyMembers(ps []Proxy, members []string) []Proxy {
	in := make(map[string]bool, len(members))
	for _, m := range members {
		in[m] = true
	}
	var out []Proxy
	for _, p := range ps {
		if in[p.ID] {
			out = append(out, p)
		}
	}
	return out
}
