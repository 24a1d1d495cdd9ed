package p2p

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/coralcdn/coral/test/testkit"
)

func TestDSHTCallCarriesRequestAndResponse(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	counter := &storeCounter{}
	a.ServeDSHT(counter)
	mustConnect(t, b, a)

	resp, err := b.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Values) != 1 || string(resp.Values[0].Data) != "v" {
		t.Fatalf("response = %+v", resp)
	}
	counter.mu.Lock()
	from := counter.from[0]
	counter.mu.Unlock()
	if from != b.Self() {
		t.Fatalf("handler saw caller %+v, want %+v", from, b.Self())
	}

	// A handler error comes back as a RemoteError, not a hang or a reset.
	_, err = b.DSHTNetwork().Call(testCtx(t), a.Self(), &dsht.Request{Op: dsht.OpFindValue, Level: 7})
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "level 7 is haunted" {
		t.Fatalf("err = %v, want the handler's error", err)
	}
	if a.scorer.score(b.ID()) != 0 || b.scorer.score(a.ID()) != 0 {
		t.Fatal("well-formed exchanges were scored as misbehaviour")
	}
}

func TestDSHTCallFindsAddressesOfUnmetNodes(t *testing.T) {
	// The DSHT hands out contacts by peer ID only. a knows b, b knows c;
	// a calls c by its NodeInfo and gets there by asking b for c's address.
	psk := testSecret(t)
	a, b, c := newTestHost(t, psk), newTestHost(t, psk), newTestHost(t, psk)
	counter := &storeCounter{}
	c.ServeDSHT(counter)
	mustConnect(t, a, b)
	mustConnect(t, b, c)
	if len(a.host.Peerstore().Addrs(c.ID())) != 0 {
		t.Fatal("test set-up: a already knows c's addresses")
	}
	if _, err := a.DSHTNetwork().Call(testCtx(t), c.Self(), storeReq()); err != nil {
		t.Fatalf("call to an unmet node: %v", err)
	}
	if counter.stores.Load() != 1 {
		t.Fatal("c did not get the store")
	}
	// A node nobody knows is an error, not a hang.
	ghost := NodeInfoFor(newTestHost(t, psk).ID())
	if _, err := a.DSHTNetwork().Call(testCtx(t), ghost, storeReq()); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("call to an unknown node: err = %v, want ErrNoRoute", err)
	}
}

func TestPeerIDOfRejectsForgedContacts(t *testing.T) {
	h := newTestHost(t, testSecret(t))
	good := h.Self()
	if p, err := PeerIDOf(good); err != nil || p != h.ID() {
		t.Fatalf("PeerIDOf(self) = %v, %v", p, err)
	}
	forged := good
	forged.ID[0] ^= 1
	for _, n := range []dsht.NodeInfo{forged, {ID: good.ID, Addr: "not-a-peer-id"}, {}} {
		if _, err := PeerIDOf(n); err == nil {
			t.Errorf("PeerIDOf(%+v) accepted", n)
		}
		if _, err := h.DSHTNetwork().Call(testCtx(t), n, storeReq()); err == nil {
			t.Errorf("Call to %+v succeeded", n)
		}
	}
}

func TestOversizeRequestFailsLocally(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	counter := &storeCounter{}
	a.ServeDSHT(counter)
	mustConnect(t, b, a)
	req := storeReq()
	req.Value = make([]byte, maxDSHTMsg+1)
	if _, err := b.DSHTNetwork().Call(testCtx(t), a.Self(), req); err == nil {
		t.Fatal("oversize request went through")
	}
	if a.scorer.score(b.ID()) != 0 {
		t.Fatal("the receiver penalised a request the sender should have refused to send")
	}
}

// rawDSHT opens a DSHT stream from b to a and writes raw bytes.
func rawDSHT(t *testing.T, from, to *Host, data []byte) error {
	t.Helper()
	s, err := from.host.NewStream(testCtx(t), to.ID(), to.protos.dsht)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write(data); err != nil {
		return err
	}
	_ = s.CloseWrite()
	_, err = io.ReadAll(bufio.NewReader(s))
	return err
}

func TestMalformedMessagesResetStreamAndGetPeerBlocked(t *testing.T) {
	psk := testSecret(t)
	a, b := newTestHost(t, psk), newTestHost(t, psk)
	a.ServeDSHT(&storeCounter{})
	mustConnect(t, b, a)

	garbage := frame([]byte{0xff, 0x00, 0x13, 0x37})
	if err := rawDSHT(t, b, a, garbage); err == nil {
		t.Fatal("the stream carrying a malformed message was not reset")
	}
	var se *network.StreamError
	_ = errors.As(rawDSHT(t, b, a, garbage), &se) // second strike
	if s := a.scorer.score(b.ID()); s < 2*penaltyMalformed-1 {
		t.Fatalf("score after two malformed messages = %v", s)
	}
	if a.scorer.isBanned(b.ID()) {
		t.Fatal("banned after two malformed messages; the threshold is meant to forgive a glitch")
	}
	// Keep going until the threshold: the peer is dropped and refused.
	for i := 0; i < int(banThreshold/penaltyMalformed) && !a.scorer.isBanned(b.ID()); i++ {
		_ = rawDSHT(t, b, a, append(bytes.Repeat([]byte{0xff}, 11), 0x01))
	}
	if !a.scorer.isBanned(b.ID()) {
		t.Fatal("peer not banned after repeated malformed messages")
	}
	testkit.Eventually(t, 5*time.Second, "banned peer disconnected", func() bool {
		return !slices.Contains(a.ConnectedPeers(), b.ID()) && !slices.Contains(b.ConnectedPeers(), a.ID())
	})
	// The banned peer's dial may complete its handshake (the muxer rides
	// in the Noise handshake) before a's gater drops it, so what must hold
	// is that it gets nothing served and keeps no connection.
	_ = b.Connect(testCtx(t), addrInfo(a))
	if _, err := b.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq()); err == nil {
		t.Fatal("banned peer got a DSHT request served")
	}
	testkit.Eventually(t, 5*time.Second, "banned peer's new connection dropped", func() bool {
		return !slices.Contains(a.ConnectedPeers(), b.ID())
	})
	if err := a.Connect(testCtx(t), addrInfo(b)); err == nil {
		t.Fatal("node dialled a peer it banned")
	}
	if n := a.Status().BlockedPeers; n != 1 {
		t.Fatalf("status blocked_peers = %d, want 1", n)
	}
}

func TestBanExpires(t *testing.T) {
	s := newScorer(testLogger(), time.Minute, nil)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	p := newTestHost(t, testSecret(t)).ID()
	if !s.penalise(p, penaltyBadObject, "test") || !s.isBanned(p) {
		t.Fatal("not banned at the threshold")
	}
	now = now.Add(2 * time.Minute)
	if s.isBanned(p) || s.score(p) != 0 {
		t.Fatal("ban did not expire with a clean slate")
	}
	s.penalise(p, 50, "test")
	now = now.Add(scoreHalfLife)
	if got := s.score(p); got < 24.9 || got > 25.1 {
		t.Fatalf("score after one half-life = %v, want 25", got)
	}
}
