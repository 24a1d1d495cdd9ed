package p2p

import (
	"slices"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

func TestMDNSFindsLANMembers(t *testing.T) {
	psk := testSecret(t)
	on := func(c *Config) { c.DisableMDNS = false }
	a := newTestHost(t, psk, on)
	b := newTestHost(t, psk, on)
	if a.mdns == nil || b.mdns == nil {
		t.Skip("mDNS could not start here (no multicast-capable interface)")
	}
	// Generous: a lost multicast packet waits for the next query round.
	testkit.Eventually(t, 30*time.Second, "mDNS discovery", func() bool {
		return slices.Contains(a.ConnectedPeers(), b.ID())
	})
}
