package node

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/p2p"
	"github.com/coralcdn/coral/test/testkit"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A rogue member swaps the operator key in a genuine invite for its own
// (invites are not signed) and hands it to newcomer B. The operator key is
// part of the network's identity, so B does not become a member of the
// real network that obeys the rogue: no member accepts B, B says why on its
// status page, and the rogue's member node cannot reach B to hand it a
// document; B keeps serving with its secret untouched. The rogue's node
// cannot be both: trusting its own key, it is refused by the real network.
func TestForgedInviteOperatorKey(t *testing.T) {
	pub, _ := operatorKeys(t)
	roguePub, roguePriv := operatorKeys(t)
	cfgA := testConfig(t)
	cfgA.Operator.Key = runstate.FormatPublicKey(pub)
	a := startNode(t, cfgA)
	_, genuine := controlDo(t, a, "GET", "/api/invite", nil)
	inv, err := ParseInvite(genuine)
	if err != nil {
		t.Fatal(err)
	}
	inv.Operator = runstate.FormatPublicKey(roguePub) // the forgery: one field
	cfgB := testConfig(t)
	if _, err := Join(cfgB, inv.Encode()); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, cfgB)
	secretB, _ := p2p.LoadSecret(cfgB.Path(cfgB.P2P.SecretFile))

	// The rogue's member node joined with the genuine invite.
	cfgR := testConfig(t)
	if _, err := Join(cfgR, strings.TrimSpace(genuine)); err != nil {
		t.Fatal(err)
	}
	r := startNode(t, cfgR)
	testkit.Eventually(t, 20*time.Second, "the rogue's node on the real network", func() bool { return r.host.IsConnected(a.nodeID) })

	testkit.Eventually(t, 40*time.Second, "B to say why it is not on the network", func() bool {
		st, err := b.Status(t.Context())
		return err == nil && st.P2P != nil && st.P2P.JoinProblem == p2p.ErrNotTheNetwork.Error()
	})
	if b.host.IsConnected(a.nodeID) || a.host.IsConnected(b.nodeID) {
		t.Fatal("B, holding a forged operator key, is connected to the real network")
	}
	page := controlPage(t, b)
	if !strings.Contains(page, "no member accepted the connection") || !strings.Contains(page, "ask a member for a fresh invite") {
		t.Errorf("B's status page does not say why it is alone:\n%s", page)
	}
	// ConnectDirect: a dial that stalls in the handshake ends by the
	// swarm's timeout with the reason, not by ours with a bare timeout.
	if err := r.host.ConnectDirect(t.Context(), nodeAddrInfo(t, b)); !errors.Is(err, p2p.ErrNotTheNetwork) {
		t.Fatalf("the rogue's member node dialling B: %v, want ErrNotTheNetwork", err)
	}
	rogueDoc := signDoc(t, runstate.Document{Serial: 1, Paused: []string{runstate.Proxy},
		Rotation: &runstate.Rotation{Secret: strings.Repeat("ab", 32), From: time.Now().Add(time.Second)}}, roguePriv)
	if code, body := controlDo(t, r, "POST", "/api/runstate", rogueDoc); code != http.StatusBadRequest {
		t.Errorf("a member accepted the rogue's document: %d %s", code, body)
	}

	// The rogue's other choice: a node trusting its own key. The real
	// network refuses it (so it can never sit among members to reach B).
	cfgR2 := testConfig(t)
	if _, err := Join(cfgR2, inv.Encode()); err != nil {
		t.Fatal(err)
	}
	r2 := startNode(t, cfgR2)
	testkit.Eventually(t, 40*time.Second, "the real network to refuse a node trusting the rogue's key", func() bool {
		st, err := r2.Status(t.Context())
		return err == nil && st.P2P != nil && st.P2P.JoinProblem == p2p.ErrNotTheNetwork.Error()
	})
	if r2.host.IsConnected(a.nodeID) {
		t.Error("a node trusting the rogue's key is connected to the real network")
	}

	st, _ := b.Status(t.Context())
	if st.RunState == nil || st.RunState.Serial != 0 {
		t.Errorf("B holds a run-state document: %+v", st.RunState)
	}
	if resp, _ := coralGet(t, b, "localhost", "/"); resp.StatusCode == http.StatusServiceUnavailable {
		t.Error("B's proxy is paused")
	}
	if now, _ := p2p.LoadSecret(cfgB.Path(cfgB.P2P.SecretFile)); !bytes.Equal(now, secretB) {
		t.Error("B's secret changed")
	}
}

func nodeAddrInfo(t *testing.T, n *Node) peer.AddrInfo {
	t.Helper()
	ai, err := peer.AddrInfosFromP2pAddrs(n.host.P2PAddrs()...)
	if err != nil || len(ai) == 0 {
		t.Fatalf("addresses of %s: %v", n.nodeID, err)
	}
	return ai[0]
}

func controlPage(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.Addrs().Control + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
