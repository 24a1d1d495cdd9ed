package p2p

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

func TestPeerInfoAndPing(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	b.ServeInfo(func(from string) []byte { return []byte("b's proxy, asked by " + from) })
	mustConnect(t, a, b)

	got, rtt, err := a.PeerInfo(testCtx(t), b.ID().String())
	if err != nil {
		t.Fatalf("PeerInfo: %v", err)
	}
	if string(got) != "b's proxy, asked by "+a.ID().String() || rtt <= 0 {
		t.Errorf("PeerInfo = %q, %v", got, rtt)
	}
	if rtt, err := a.Ping(testCtx(t), b.ID().String()); err != nil || rtt <= 0 {
		t.Errorf("Ping = %v, %v", rtt, err)
	}
	if ips := a.PeerIPs(b.ID().String()); !slices.Equal(ips, []netip.Addr{netip.MustParseAddr("127.0.0.1")}) {
		t.Errorf("PeerIPs = %v", ips)
	}
	if !a.IsConnected(b.ID().String()) {
		t.Error("IsConnected false for a connected peer")
	}
	// A peer that does not serve info (no ServeInfo) refuses the protocol.
	if _, _, err := b.PeerInfo(testCtx(t), a.ID().String()); err == nil {
		t.Error("PeerInfo from a host without ServeInfo succeeded")
	}
	for _, bad := range []string{"", "not-a-peer-id"} {
		if _, err := a.Ping(testCtx(t), bad); err == nil {
			t.Errorf("Ping(%q) succeeded", bad)
		}
		if _, _, err := a.PeerInfo(testCtx(t), bad); err == nil {
			t.Errorf("PeerInfo(%q) succeeded", bad)
		}
		if a.PeerIPs(bad) != nil || a.IsConnected(bad) {
			t.Errorf("%q looks connected", bad)
		}
	}
}

// Liveness probes never dial: a peer the node is not connected to fails at
// once and stays unconnected.
func TestPingAndInfoDoNotDial(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	b.ServeInfo(func(string) []byte { return []byte("b") })
	mustConnect(t, a, b)
	if err := a.host.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "disconnect", func() bool { return !a.IsConnected(b.ID().String()) })
	if _, err := a.Ping(testCtx(t), b.ID().String()); err == nil {
		t.Error("Ping to an unconnected peer succeeded")
	}
	if _, _, err := a.PeerInfo(testCtx(t), b.ID().String()); err == nil {
		t.Error("PeerInfo to an unconnected peer succeeded")
	}
	if a.IsConnected(b.ID().String()) {
		t.Error("a probe dialled the peer")
	}
}

func TestOversizeInfoIsRefused(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	b.ServeInfo(func(string) []byte { return []byte(strings.Repeat("x", 2*maxInfoMsg)) })
	mustConnect(t, a, b)
	if _, _, err := a.PeerInfo(testCtx(t), b.ID().String()); err == nil {
		t.Error("an oversize info reply was accepted")
	}
	// The link survives: a ping still works.
	if _, err := a.Ping(testCtx(t), b.ID().String()); err != nil {
		t.Errorf("ping after refused reply: %v", err)
	}
}

func TestWatchPeers(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	var mu sync.Mutex
	var events []string
	a.WatchPeers(
		func(id string) { mu.Lock(); events = append(events, "up "+id); mu.Unlock() },
		func(id string) { mu.Lock(); events = append(events, "down "+id); mu.Unlock() },
	)
	has := func(e string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(events, e)
	}
	mustConnect(t, a, b)
	testkit.Eventually(t, 5*time.Second, "connected event", func() bool { return has("up " + b.ID().String()) })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "disconnected event", func() bool { return has("down " + b.ID().String()) })
}

// A change notice reaches the peer's callback with the sender's ID; a
// peer that does not listen for notices refuses them, and notices never
// dial.
func TestInfoChangedNotice(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	got := make(chan string, 1)
	b.OnInfoChanged(func(from string) { got <- from })
	mustConnect(t, a, b)
	if err := a.NotifyInfoChanged(testCtx(t), b.ID().String()); err != nil {
		t.Fatalf("NotifyInfoChanged: %v", err)
	}
	select {
	case from := <-got:
		if from != a.ID().String() {
			t.Errorf("notice from %q, want %q", from, a.ID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the notice never reached the peer's callback")
	}
	if err := b.NotifyInfoChanged(testCtx(t), a.ID().String()); err == nil {
		t.Error("a notice to a host without OnInfoChanged succeeded")
	}
	if err := a.NotifyInfoChanged(testCtx(t), "not-a-peer-id"); err == nil {
		t.Error("a notice to a bad peer ID succeeded")
	}
	if err := a.host.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	if err := a.NotifyInfoChanged(testCtx(t), b.ID().String()); err == nil || a.IsConnected(b.ID().String()) {
		t.Errorf("a notice to an unconnected peer: err %v, connected %v; want an error and no dial", err, a.IsConnected(b.ID().String()))
	}
}
