package cooptest

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/proxy"
)

// A node already downloading one object from the origin races another node
// for a second object, and would win: its DSHT answers at once, the other's
// calls each take a planted 100 ms. It yields the global test instead, so
// the other node downloads the second object and the busy node fetches it
// from there. In the 100-node crowd one fast node often won the test for
// three or more files; killed mid-download it cost the origin one resume
// for each.
func TestBusyDownloaderYieldsTheGlobalTest(t *testing.T) {
	const busy, idle = 0, 1
	nw := newNetwork(t, 4, netOptions{
		rtt: func(a, b int) time.Duration {
			if a == idle {
				return 100 * time.Millisecond
			}
			return 0
		},
		// One level: the racers meet at the global test, as two regions'
		// first nodes do.
		dsht: func(c *dsht.Config) { c.Levels = []time.Duration{0} },
		coop: func(c *coop.Config) {
			c.PutGet = true
			c.YieldWait = 6 * time.Second // at least 3 s: well past the idle node's test
		},
	})
	a, b := nw.nodes[busy], nw.nodes[idle]

	full := bytes.Repeat([]byte("coral-yield-0123456789abcdefghij"), (256<<10)/32)
	origin := newStallingOrigin(t, full, `"yield-v1"`, 1)
	origin.holderDownloads(t, a, origin.URL+"/first.bin") // stalls: a's download stays under way
	eventually(t, 20*time.Second, "the busy node's download to be announced", func() bool {
		return hasReferral(b.referrals(origin.URL+"/first.bin", 0, 0), a.peerID(), coop.StateDownloading)
	})

	u := origin.URL + "/second.bin"
	results := make([]chan result, 2)
	for i, nd := range []*node{a, b} {
		results[i] = make(chan result, 1)
		go func() { results[i] <- nd.fetch(t, u, proxy.DebugHeader, "1") }()
	}
	ra, rb := recv(t, "the busy node's response", results[0]), recv(t, "the idle node's response", results[1])
	for _, r := range []result{ra, rb} {
		if r.err != nil || r.status != http.StatusOK || digest(r.body) != digest(full) {
			t.Fatalf("status %d, %d bytes, err %v: not the file", r.status, len(r.body), r.err)
		}
	}
	t.Logf("busy %s: %s", ra.cache(), ra.trace())
	t.Logf("idle %s: %s", rb.cache(), rb.trace())
	if ra.cache() != proxy.CachePeer || rb.cache() != proxy.CacheMiss {
		t.Errorf("busy node %s, idle node %s: want the idle node to download the second object and the busy one to fetch it from there", ra.cache(), rb.cache())
	}
	if n := len(origin.ranges()); n != 2 {
		t.Errorf("origin requests %d: want the first object's and one for the second", n)
	}
	a.close() // ends its stalled download before the origin closes
}
