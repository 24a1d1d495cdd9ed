package dnsserver

import "strings"

// Sites tells the server which Coralized names are custom domains of a site
// group: for a name's part before the zone ("www.site.org", the target of
// the site owner's CNAME), the proxy IDs of the group's member nodes.
type Sites func(site string) (members []string, ok bool)

// WithSites makes the server answer a group site's names with its group's
// member proxies only: those live, reachable and with headroom, every one of
// them up to MaxGroupAnswers; with every member full, the full ones (they
// still serve, within their caps); with none live, SERVFAIL, so the
// resolver asks another nameserver, which may hear from a member. Never
// other nodes: visitors of a custom domain send its public name as Host,
// and only members map it to the site's origin. A site with no members
// (ok, none: a name the node's groups dispute) is answered SERVFAIL too.
func WithSites(f Sites) Option { return func(s *Server) { s.sites = f } }

// MaxGroupAnswers bounds the records of a group site's answer. A group
// answer lists every member with headroom (not Config.Answers of them), so
// that each resolver's cached answer spreads its visitors over the whole
// group: with 3 of 4 members per answer, the one resolver of a crowd sends
// nothing to one member and a third more to each other for a whole TTL.
const MaxGroupAnswers = 8

// groupAnswers is how many records a group site's answer holds.
func groupAnswers(answers, members int) int {
	return max(answers, min(members, MaxGroupAnswers))
}

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
