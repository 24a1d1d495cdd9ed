package dnstest

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// publicIP is the documentation address node i advertises for its proxy,
// so that a visitor elsewhere (an EDNS client subnet) can be sent to it.
func publicIP(i int) string { return fmt.Sprintf("198.51.100.%d", 11+i) }

// Five real nodes advertising global addresses; RTT hints for a visitor
// network are planted in the DSHT through one node's control API: node 0's
// nameserver, asked for that network (EDNS client subnet), answers with the
// three nearest hinted proxies, nearest first, and not with itself.
func TestPlantedHintsChooseNearestProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coral processes")
	}
	c, logs, err := tryCluster(t, 5, func(i int) string {
		return fmt.Sprintf("advertise = [%q, %q]\n", proxyIP(i), publicIP(i))
	})
	if err != nil {
		// No skip here: a node refusing these advertise addresses is the
		// regression this test exists to catch.
		t.Fatalf("start cluster with advertise = [proxy address, %s]: %v\n%s", publicIP(0), err, logs())
	}
	ns := c.Nodes[0].DNS
	name := "www.example.com.localhost"
	rtt := map[int]string{1: "4", 2: "15", 3: "30", 4: "300"}
	want := []string{publicIP(1), publicIP(2), publicIP(3)}

	// Wait until node 0 offers all five proxies to a visitor elsewhere
	// (peers announce themselves public once libp2p says so).
	other := netip.MustParsePrefix("192.0.2.0/24")
	testkit.Eventually(t, 30*time.Second, "node 0 offers all five proxies to an outside visitor", func() bool {
		var seen []string
		for range 12 {
			got, _ := lookup(t, ns, name, &other)
			for _, a := range got {
				if !slices.Contains(seen, a) {
					seen = append(seen, a)
				}
			}
		}
		return len(seen) == 5
	})

	// The nameserver waits 200 ms for a hint lookup and remembers a miss for
	// a minute, so each attempt uses a fresh network with its hints planted
	// and visible from node 0 beforehand.
	for attempt := range 3 {
		network := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(113 + attempt), 0}), 24)
		key := "coral-hint:" + network.String()
		for i, ms := range rtt {
			dshtPut(t, c.Nodes[4], key, "coral-hint/1 "+c.Nodes[i].PeerID+" "+ms)
		}
		testkit.Eventually(t, 30*time.Second, "node 0 sees the planted hints", func() bool {
			return len(dshtGet(t, c.Nodes[0], key)) == len(rtt)
		})
		got, _ := lookup(t, ns, name, &network)
		if !slices.Equal(got, want) {
			t.Logf("attempt %d (%v): answer %v, want %v", attempt, network, got, want)
			continue
		}
		for range 5 {
			if got, _ := lookup(t, ns, name, &network); !slices.Equal(got, want) {
				t.Fatalf("answer for %v changed to %v, want %v", network, got, want)
			}
		}
		return
	}
	t.Fatalf("node 0 never ranked the hinted proxies first")
}
