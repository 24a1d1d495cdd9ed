package p2p

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/store"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/coralcdn/coral/test/testkit"
)

// cutLink breaks the direct link to one peer, as a failed route or a
// peering dispute would, while leaving relayed paths alone. (Refusing the
// peer ID outright in InterceptPeerDial would also refuse relayed
// connections: that models a ban, not a broken link.)
type cutLink struct {
	mu      sync.Mutex
	blocked peer.ID
}

var _ connmgr.ConnectionGater = (*cutLink)(nil)

func (c *cutLink) block(p peer.ID) { c.mu.Lock(); c.blocked = p; c.mu.Unlock() }

func (c *cutLink) cut(p peer.ID, a ma.Multiaddr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return p == c.blocked && !isRelayed(a)
}

func (c *cutLink) InterceptPeerDial(peer.ID) bool                   { return true }
func (c *cutLink) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool { return !c.cut(p, a) }
func (c *cutLink) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (c *cutLink) InterceptSecured(_ network.Direction, p peer.ID, cm network.ConnMultiaddrs) bool {
	return !c.cut(p, cm.RemoteMultiaddr())
}
func (c *cutLink) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// TestNonTransitiveLinkRoutedThroughRelay: A and B cannot reach each other,
// both reach C. A holds a relay reservation on C; B fetches an object only
// A holds, and sends A a DSHT store, through C.
func TestNonTransitiveLinkRoutedThroughRelay(t *testing.T) {
	psk := testSecret(t)
	cutA, cutB := &cutLink{}, &cutLink{}
	c := newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPublic })
	a := newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPrivate; cfg.ConnectionGater = cutA })
	b := newTestHost(t, psk, func(cfg *Config) { cfg.ConnectionGater = cutB })
	cutA.block(b.ID())
	cutB.block(a.ID())
	mustConnect(t, a, c)
	mustConnect(t, b, c)

	// The direct link is really broken, both ways.
	if err := b.host.Connect(testCtx(t), addrInfo(a)); err == nil {
		t.Fatal("B reached A directly")
	}
	if err := a.host.Connect(testCtx(t), addrInfo(b)); err == nil {
		t.Fatal("A reached B directly")
	}

	testkit.Eventually(t, 15*time.Second, "A's reservation on C", func() bool {
		return slices.Contains(a.Status().RelayReservations, c.ID().String())
	})
	if !a.Status().Relayed {
		t.Error("A holds a reservation but does not report being reached through relays")
	}

	// Only A holds the object. 1 MiB: the libp2p default relay limit
	// (128 KiB per relayed connection) would cut it off.
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := randomBytes(t, 1<<20)
	putObject(t, st, "only-on-a", body)
	a.ServeObjects(storeSource{st})
	counter := &storeCounter{}
	a.ServeDSHT(counter)

	meta, rc, err := b.FetchObject(testCtx(t), a.ID().String(), "only-on-a")
	if err != nil {
		t.Fatalf("fetch through the relay: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetch through the relay: %d bytes, %v", len(got), err)
	}
	if meta.Size != int64(len(body)) {
		t.Fatalf("meta size %d", meta.Size)
	}
	conns := b.host.Network().ConnsToPeer(a.ID())
	if len(conns) == 0 {
		t.Fatal("no connection B->A after the fetch")
	}
	for _, cn := range conns {
		if !isRelayed(cn.RemoteMultiaddr()) {
			t.Fatalf("B->A connection %s is direct; the link was supposed to be cut", cn.RemoteMultiaddr())
		}
		if !strings.Contains(cn.RemoteMultiaddr().String(), "/p2p/"+c.ID().String()+"/p2p-circuit") {
			t.Fatalf("B->A connection %s does not go through C", cn.RemoteMultiaddr())
		}
	}
	i := slices.IndexFunc(b.Status().Peers, func(p PeerStatus) bool { return p.ID == a.ID().String() })
	if i < 0 || !b.Status().Peers[i].Relayed {
		t.Fatalf("B's status does not show A as relayed: %+v", b.Status().Peers)
	}

	// DSHT traffic takes the same path.
	if _, err := b.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq()); err != nil {
		t.Fatalf("DSHT store through the relay: %v", err)
	}
	if counter.stores.Load() != 1 {
		t.Fatal("A did not get the DSHT store")
	}
}

// TestRelayedLinkTakesTheDirectPath: B reached A through C's relay
// although the direct path works (here: it was blocked while B dialled, as
// a direct handshake that loses the race to the relay is). The link moves
// to the direct path, and the relayed connection is closed: C's upload no
// longer carries A and B's traffic.
func TestRelayedLinkTakesTheDirectPath(t *testing.T) {
	psk := testSecret(t)
	cutB := &cutLink{}
	c := newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPublic })
	a := newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPrivate })
	b := newTestHost(t, psk, func(cfg *Config) { cfg.ConnectionGater = cutB })
	mustConnect(t, a, c)
	mustConnect(t, b, c)
	testkit.Eventually(t, 15*time.Second, "A's reservation on C", func() bool {
		return slices.Contains(a.Status().RelayReservations, c.ID().String())
	})

	cutB.block(a.ID())
	var circuits []ma.Multiaddr
	for _, addr := range a.host.Addrs() {
		if isRelayed(addr) {
			circuits = append(circuits, addr)
		}
	}
	if err := b.host.Connect(testCtx(t), peer.AddrInfo{ID: a.ID(), Addrs: circuits}); err != nil {
		t.Fatalf("B -> A through C: %v", err)
	}
	if directConns(b, a.ID()) != 0 || !b.links.hasRelayedConn(a.ID()) {
		t.Fatal("B's first connection to A is not the relayed one")
	}
	cutB.block("") // the direct path works from now on

	onlyDirect := func(h *Host, p peer.ID) func() bool {
		return func() bool { return directConns(h, p) > 0 && !h.links.hasRelayedConn(p) }
	}
	testkit.Eventually(t, 15*time.Second, "B reaches A directly and closed the relayed connection", onlyDirect(b, a.ID()))
	testkit.Eventually(t, 15*time.Second, "A reaches B directly and closed the relayed connection", onlyDirect(a, b.ID()))
}
