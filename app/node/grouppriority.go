package node

import (
	"strings"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/shaping"
)

// Priority of group sites on a member node. The upload cap is shared by
// start-time fair queueing with per-site weights (core/shaping). On a
// member node, the sites of its groups together weigh (1-r)/r, split by the
// manifest's weights, where r is groups_reserve; an ordinary site weighs 1
// (or its [[sites]] weight). So against one other busy site the group's
// sites get 1-r of the cap, the rest of the network never less than r,
// and either side gets the whole cap while the other is idle.

// budgetPolicy is the budget for settings s: the volunteer's caps and
// weights, and the group sites' weights (a [[sites]] entry for the same
// host wins: the volunteer said so explicitly).
func (n *Node) budgetPolicy(s config.Settings) shaping.Policy {
	p := s.Bandwidth.Policy(s.Paused, s.Sites)
	for host, w := range n.groupWeights() {
		if _, set := p.Weights[host]; !set {
			p.Weights[host] = w
		}
	}
	return p
}

// groupWeights are the shaper weights of the sites of the groups this node
// is a member node of, by public host and by origin host (peer transfers
// are counted under the origin's host).
func (n *Node) groupWeights() map[string]float64 {
	r := n.cfg.GroupsReserve
	if r <= 0 {
		r = 0.2
	}
	total := (1 - r) / r
	out := map[string]float64{}
	for _, g := range n.groupList() {
		m, _, ok := g.tr.Current()
		if !ok {
			continue
		}
		if _, member := m.Member(n.nodeID); !member {
			continue
		}
		sum := 0
		for _, s := range m.Sites {
			sum += s.Weight
		}
		for _, s := range m.Sites {
			w := total * float64(s.Weight) / float64(sum)
			out[s.Host] = w
			if o, _, err := coralurl.ParseOrigin(s.Origin); err == nil {
				out[o.Host] = w
			}
		}
	}
	return out
}

// refreshBudget applies a changed set of group sites to the budget.
func (n *Node) refreshBudget() {
	if n.budget != nil && n.settings != nil {
		n.setBudgetPolicy(n.settings.Get)
	}
}

// setBudgetPolicy builds the budget's policy from the settings and the
// groups, and applies it, one change at a time: a group change that read
// the settings just before a PUT (say, pause) would otherwise apply after
// the PUT's own change and undo it, for good. settings is read under the
// lock, so whichever change applies last built its policy from the
// settings in force (Live sets them before telling subscribers).
func (n *Node) setBudgetPolicy(settings func() config.Settings) {
	n.budgetPolicyMu.Lock()
	defer n.budgetPolicyMu.Unlock()
	n.budget.SetPolicy(n.budgetPolicy(settings()))
}

// customSite maps a Host header that names a group site (its public name
// or that name's Coralized form) to the site and its origin.
func (n *Node) customSite(hostHeader string) (string, coralurl.Origin, bool) {
	host, _ := coralurl.StripPort(hostHeader)
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if e, ok := n.site(host); ok {
		return host, e.origin, true
	}
	if site, ok := strings.CutSuffix(host, "."+strings.ToLower(n.cfg.Zone)); ok {
		if e, ok := n.site(site); ok {
			return site, e.origin, true
		}
	}
	return "", coralurl.Origin{}, false
}
