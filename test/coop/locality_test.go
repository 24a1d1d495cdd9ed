package cooptest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/proxy"
)

// Two planted latency clusters, X and Y, 2 ms within and 800 ms between.
// When a copy exists in the requester's own level-2 cluster, the peer fetch
// comes from there, though a copy farther away is announced too.
//
// The level thresholds are scaled up from CoralCDN's 20 ms / 60 ms to
// 300 ms / 600 ms: a libp2p RPC over loopback adds RTT of its own, a
// millisecond on an idle machine but up to ~190 ms (smoothed) seen on one
// loaded forty-fold, and the planted latency must dominate that noise for
// the clusters to form the same way every run. Only the scale differs: a
// planted pair is well inside level 2, a cross pair outside level 1.
func TestPeerFetchPrefersOwnCluster(t *testing.T) {
	const perCluster = 3
	clusterOf := func(i int) int { return i / perCluster }
	nw := newNetwork(t, 2*perCluster, netOptions{
		rtt: func(a, b int) time.Duration {
			if clusterOf(a) == clusterOf(b) {
				return 2 * time.Millisecond
			}
			return 800 * time.Millisecond
		},
		dsht: func(c *dsht.Config) {
			c.Levels = []time.Duration{0, 600 * time.Millisecond, 300 * time.Millisecond}
			c.ClusterInterval = 200 * time.Millisecond
			// A loaded machine must not turn slow answers into failures.
			c.MinRTO = time.Second
		},
	})
	xs, ys := nw.nodes[:perCluster], nw.nodes[perCluster:]

	// The clusters form from the RTTs the DSHT measures. The test needs
	// the requester and a neighbour in one level-2 cluster that no Y node
	// is in, and Y's level-2 cluster apart from X's.
	requester, near := xs[0], xs[1]
	formed := func() bool {
		c := requester.dht.Cluster(2)
		if near.dht.Cluster(2) != c || requester.dht.Cluster(1) != near.dht.Cluster(1) {
			return false
		}
		for _, y := range ys {
			if y.dht.Cluster(2) == c || y.dht.Cluster(1) == requester.dht.Cluster(1) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(45 * time.Second)
	for !formed() {
		if time.Now().After(deadline) {
			for _, n := range nw.nodes {
				st := n.dht.Status()
				var b strings.Builder
				for _, l := range st.Levels {
					fmt.Fprintf(&b, " L%d cluster %x size %d table[", l.Level, l.Cluster[:3], l.ClusterSize)
					for _, e := range l.Table {
						fmt.Fprintf(&b, "%d:%s ", nw.index[e.Node.ID], e.RTT.Round(100*time.Microsecond))
					}
					b.WriteString("]")
				}
				t.Logf("%s:%s", n.name, b.String())
			}
			t.Fatal("timed out waiting for the requester and its neighbour to share a level-2 cluster without Y")
		}
		time.Sleep(20 * time.Millisecond)
	}

	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "object "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)

	const objects = 2
	for i := range objects {
		u := fmt.Sprintf("%s/obj%d", origin.URL, i)
		far := ys[i%len(ys)]
		// A copy far away (from the origin), then one nearby (no-cache
		// makes it skip the far copy and go to the origin too).
		if r := far.fetch(t, u); r.cache() != proxy.CacheMiss {
			t.Fatalf("%s: far copy: %s", u, r.cache())
		}
		if r := near.fetch(t, u, "Cache-Control", "no-cache"); r.cache() != proxy.CacheMiss {
			t.Fatalf("%s: near copy: %s", u, r.cache())
		}
		eventually(t, 20*time.Second, "both copies to be announced", func() bool {
			return hasReferral(requester.referrals(u, 2, 2), near.peerID(), coop.StateCached) &&
				hasReferral(requester.referrals(u, 0, 0), far.peerID(), coop.StateCached)
		})
		r := requester.fetch(t, u, proxy.DebugHeader, "1")
		if r.err != nil || r.cache() != proxy.CachePeer || string(r.body) != fmt.Sprintf("object /obj%d", i) {
			t.Fatalf("%s: requester got %v %s %q", u, r.err, r.cache(), r.body)
		}
		if tr := r.trace(); !strings.HasSuffix(tr, "from peer "+near.short()+" L2") {
			t.Errorf("%s: trace %q; want the copy from %s in the requester's level-2 cluster (the far one is %s)",
				u, tr, near.short(), far.short())
		}
	}
	if s := requester.coop.Stats(); s.FromLevel[2] != objects || s.PeerFetches != objects {
		t.Errorf("requester's peer fetches %+v, want all %d from level 2", s, objects)
	}
	if n := hits.Load(); n != 2*objects {
		t.Errorf("origin requests = %d, want %d (the two planted copies of each object)", n, 2*objects)
	}
}
