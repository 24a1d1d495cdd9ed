package crowd

import (
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/control"
)

// ExplainClusters names each node outside its region's level-2 cluster with
// what it sees (the region's cluster marked *), and leaves the rest out.
func TestExplainClustersNamesTheNodesOutside(t *testing.T) {
	r := Regions{N: 2}
	status := func(l2 string, seen ...control.ClusterSeen) control.Status {
		return control.Status{P2P: &control.P2PStatus{ConnectedPeers: 7}, DSHT: &control.DSHTStatus{
			PeersLive: 5, RPCTimeouts: 3,
			Levels: []control.LevelStatus{{Level: 0}, {Level: 1, ClusterID: "c1"}, {Level: 2, ClusterID: l2, ClustersSeen: seen}},
		}}
	}
	// nodes 0, 2, 4 are region 0 (cluster "a"); 1, 3 region 1 ("b"), and
	// node 4 is alone in "z", seeing "a" with 2 of 3 members near.
	sts := []control.Status{status("a"), status("b"), status("a"), status("b"),
		status("z", control.ClusterSeen{ClusterID: "a", Size: 3, Sampled: 3, Within: 2, Preferred: true})}
	var out strings.Builder
	r.ExplainClusters(&out, sts, 2)
	got := out.String()
	for _, want := range []string{"connections min/median/max 7/7/7", "RPC timeouts 15",
		"node 4 (region 0): in z", "timeouts 3", "*a n3 2/3 pref"} {
		if !strings.Contains(got, want) {
			t.Errorf("explanation lacks %q:\n%s", want, got)
		}
	}
	for _, node := range []string{"node 0 ", "node 1 ", "node 2 ", "node 3 "} {
		if strings.Contains(got, node) {
			t.Errorf("explanation names %s, which is in its region's cluster:\n%s", node, got)
		}
	}
}
