package p2p

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// slowDial makes this host's outbound connections take delay longer to set
// up while on, as handshakes do on a loaded machine.
type slowDial struct {
	on    atomic.Bool
	delay time.Duration
}

var _ connmgr.ConnectionGater = (*slowDial)(nil)

func (s *slowDial) InterceptPeerDial(peer.ID) bool               { return true }
func (s *slowDial) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }
func (s *slowDial) InterceptAccept(network.ConnMultiaddrs) bool  { return true }
func (s *slowDial) InterceptSecured(d network.Direction, _ peer.ID, _ network.ConnMultiaddrs) bool {
	if d == network.DirOutbound && s.on.Load() {
		time.Sleep(s.delay)
	}
	return true
}
func (s *slowDial) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// A DSHT request that has to dial first (the connection manager trimmed the
// connection) measures the node's distance without the dial: at 100 nodes
// on one machine, samples with slow handshakes in them made near nodes look
// far, and their clusters unacceptable, for minutes.
func TestDSHTRTTLeavesOutTheDial(t *testing.T) {
	psk := testSecret(t)
	const planted, threshold, dialDelay = 40 * time.Millisecond, 160 * time.Millisecond, 400 * time.Millisecond
	rules := []RTTRule{{A: netip.MustParsePrefix("127.0.0.2/32"), B: netip.MustParsePrefix("127.0.0.3/32"), RTT: planted}}
	slow := &slowDial{delay: dialDelay}
	a := newTestHost(t, psk, func(c *Config) {
		c.ListenAddrs, c.EmulateRTT, c.ConnectionGater = []string{"/ip4/127.0.0.2/tcp/0"}, rules, slow
	})
	b := newTestHost(t, psk, func(c *Config) { c.ListenAddrs, c.EmulateRTT = []string{"/ip4/127.0.0.3/tcp/0"}, rules })
	levels := []time.Duration{0, 3 * threshold, threshold}
	newNode := func(h *Host) *dsht.Node {
		cfg := dsht.DefaultConfig(h.Self())
		cfg.Levels, cfg.Logger = levels, testLogger()
		n, err := dsht.New(cfg, h.DSHTNetwork())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		h.ServeDSHT(n)
		return n
	}
	da, _ := newNode(a), newNode(b)
	// a knows b's address but holds no connection to it, as after a trim.
	mustConnect(t, a, b)
	if err := a.host.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	slow.on.Store(true)
	start := time.Now()
	if err := da.Bootstrap(testCtx(t), []dsht.NodeInfo{b.Self()}); err != nil {
		t.Fatalf("bootstrap through a slow dial: %v", err)
	}
	if took := time.Since(start); took < dialDelay {
		t.Fatalf("bootstrap took %v: the dial was not slowed (test set-up)", took)
	}
	var rtt time.Duration
	for _, e := range da.Status().Levels[0].Table {
		if e.Node.ID == b.Self().ID {
			rtt = e.RTT
		}
	}
	if rtt < planted || rtt >= threshold {
		t.Fatalf("a measured b at %v: want the planted %v plus little, under the level-2 threshold %v (the %v dial left out)",
			rtt, planted, threshold, dialDelay)
	}
}
