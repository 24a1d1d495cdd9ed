package node

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/group"
)

// A public site name ("www.site.org") that two of the node's groups list is
// disputed: any group's key holder may list any name, and the node cannot
// tell whose claim is genuine. It serves such a name for none of them (the
// proxy refuses it, the DNS answers SERVFAIL), says so in the log and the
// status, and keeps serving every group's self-certifying names
// (<site>.<group ID>), which only the group's key can claim.

// indexPublic adds the public names of the groups' sites to idx and
// returns the names two or more of the groups list, with the IDs of the
// groups that list them (in gs order). A disputed name goes to none of
// them: the node cannot tell whose claim is genuine (a group's key holder
// may list any name), and whichever came first would depend on the order
// the node happened to learn its groups in.
func (n *Node) indexPublic(idx map[string]siteEntry, gs []*memberGroup, inForce map[string]group.Manifest) map[string][]string {
	claims := map[string][]string{}
	for _, g := range gs {
		for _, s := range inForce[g.id].Sites {
			claims[s.Host] = append(claims[s.Host], g.id)
		}
	}
	disputed := map[string][]string{}
	for _, g := range gs {
		m := inForce[g.id]
		peers := m.Peers() // one list per group, shared by its sites
		for _, s := range m.Sites {
			o, _, _ := coralurl.ParseOrigin(s.Origin)
			switch {
			case idx[s.Host].group != "":
				n.log.Warn("group site left out: its name is another group's self-certifying name", "group", g.id, "site", s.Host, "other", idx[s.Host].group)
			case len(claims[s.Host]) > 1:
				disputed[s.Host] = claims[s.Host]
			case inZone(s.Host, n.cfg.Zone) || inZone(o.Host, n.cfg.Zone):
				n.log.Warn("group site left out: its name or origin is inside Coral's zone", "group", g.id, "site", s.Host, "origin", s.Origin)
			default:
				idx[s.Host] = siteEntry{origin: o, peers: peers, group: g.id}
			}
		}
	}
	return disputed
}

// warnDisputes logs each name newly disputed (the index is rebuilt at every
// manifest and directory change; a standing dispute is logged once).
func (n *Node) warnDisputes(old, now map[string][]string) {
	for _, host := range slices.Sorted(maps.Keys(now)) {
		if slices.Equal(old[host], now[host]) {
			continue
		}
		n.log.Warn("group site served by no group: "+disputeAdvice(host, now[host]), "site", host, "groups", strings.Join(now[host], ", "))
	}
}

// disputeAdvice says, for the log and the status, what a disputed name
// means and what to do about it.
func disputeAdvice(host string, groups []string) string {
	return fmt.Sprintf("site groups %s all list %s, so this node serves it for none of them "+
		"(each group's <site>.<group ID> names still work); the key holder of a group that does not own %s "+
		"must remove it from that group's manifest, or this node must leave that group",
		strings.Join(groups, " and "), host, host)
}

// siteDisputed is the proxy's refusal of disputed names
// (proxy.Options.SiteDisputed): why it serves no origin for host.
func (n *Node) siteDisputed(host string) (string, bool) {
	groups := n.disputedBy(host)
	if groups == nil {
		return "", false
	}
	return "Site groups " + strings.Join(groups, " and ") + " all claim " + host +
		", so this Coral node serves it for none of them until the key holders settle whose it is.", true
}

// disputedBy is the groups that all claim host (nil if it is not disputed).
func (n *Node) disputedBy(host string) []string {
	n.groups.mu.Lock()
	defer n.groups.mu.Unlock()
	return n.groups.disputed[host]
}
