package crowd

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/coralcdn/coral/app/control"
)

// ExplainClusters writes why nodes are not in their region's level-l
// cluster: for every node outside it, its own cluster, its connections, the
// peers it heard from or failed to reach, its RPC timeouts, and the
// clusters its peers claim as its membership rule judges them (the
// region's cluster marked *). A line of totals comes first.
func (r Regions) ExplainClusters(w io.Writer, sts []control.Status, l int) {
	best := r.majorities(sts, l)
	var conns, live, unreach []int
	var timeouts, failures int64
	for _, s := range sts {
		if s.DSHT == nil || s.P2P == nil {
			continue
		}
		conns = append(conns, s.P2P.ConnectedPeers)
		live = append(live, s.DSHT.PeersLive)
		unreach = append(unreach, s.DSHT.PeersUnreachable)
		timeouts += s.DSHT.RPCTimeouts
		failures += s.DSHT.RPCFailures
	}
	fmt.Fprintf(w, "  level %d: connections min/median/max %s, DSHT peers live %s, unreachable %s; RPC timeouts %d, failures %d in all\n",
		l, spread(conns), spread(live), spread(unreach), timeouts, failures)
	for i, s := range sts {
		if s.DSHT == nil || len(s.DSHT.Levels) <= l {
			fmt.Fprintf(w, "    node %d: no status\n", i)
			continue
		}
		ls := s.DSHT.Levels[l]
		want := best[r.Of(i)]
		if ls.ClusterID == want {
			continue
		}
		var seen []string
		for _, c := range ls.ClustersSeen {
			mark := ""
			if c.ClusterID == want {
				mark = "*"
			}
			seen = append(seen, fmt.Sprintf("%s%s n%d %d/%d%s%s", mark, c.ClusterID, c.Size, c.Within, c.Sampled,
				map[bool]string{true: " ok"}[c.Acceptable], map[bool]string{true: " pref"}[c.Preferred]))
		}
		fmt.Fprintf(w, "    node %d (region %d): in %s (size %d, routing %d), conns %d, live %d, unreachable %d, timeouts %d; sees %s\n",
			i, r.Of(i), ls.ClusterID, ls.ClusterSize, ls.RoutingSize, s.P2P.ConnectedPeers, s.DSHT.PeersLive,
			s.DSHT.PeersUnreachable, s.DSHT.RPCTimeouts, strings.Join(seen, ", "))
	}
}

// majorities maps each region to the level-l cluster most of its nodes are in.
func (r Regions) majorities(sts []control.Status, l int) map[int]string {
	counts := map[int]map[string]int{}
	for i, s := range sts {
		if s.DSHT == nil || len(s.DSHT.Levels) <= l {
			continue
		}
		reg := r.Of(i)
		if l < 2 {
			reg = 0 // one cluster for all at the upper levels
		}
		if counts[reg] == nil {
			counts[reg] = map[string]int{}
		}
		counts[reg][s.DSHT.Levels[l].ClusterID]++
	}
	best := map[int]string{}
	for reg, cs := range counts {
		for id, k := range cs {
			if k > cs[best[reg]] || k == cs[best[reg]] && id < best[reg] {
				best[reg] = id
			}
		}
	}
	if l < 2 {
		for k := range r.N {
			best[k] = best[0]
		}
	}
	return best
}

// spread is "min/median/max" of xs.
func spread(xs []int) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprintf("%d/%d/%d", s[0], s[len(s)/2], s[len(s)-1])
}
