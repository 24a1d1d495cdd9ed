package p2p

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// randomPeerID is a fresh Ed25519 peer ID, as every Coral node has.
func randomPeerID(tb testing.TB) peer.ID {
	tb.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// The remembered conversions give what peer.Decode and String give, a
// second time from the cache, and refuse bad text every time.
func TestPeerIDsRemembered(t *testing.T) {
	id := randomPeerID(t)
	ids := newPeerIDs()
	for round := range 2 {
		if got := ids.text(id); got != id.String() {
			t.Errorf("round %d: text %q, want %q", round, got, id.String())
		}
		if got, err := ids.decode(id.String()); err != nil || got != id {
			t.Errorf("round %d: decode %v, %v; want %v", round, got, err, id)
		}
		for _, bad := range []string{"", "not-a-peer", id.String()[:20]} {
			if _, err := ids.decode(bad); err == nil {
				t.Errorf("round %d: decode(%q) accepted", round, bad)
			}
		}
	}
	h := &Host{ids: ids}
	for round := range 2 {
		if got, want := h.NodeInfo(id), NodeInfoFor(id); got != want {
			t.Errorf("round %d: NodeInfo %+v, want %+v", round, got, want)
		}
	}
	if ids.decoded.Len() != 1 || ids.encoded.Len() != 1 {
		t.Errorf("cached %d decoded, %d encoded; want one each (bad text not kept)", ids.decoded.Len(), ids.encoded.Len())
	}
}

// FetchObject decodes the referral's peer ID text once per fetch (the
// referral carries it as text on the wire), and the host's peer-ID cache
// (peerIDs) remembers what the heartbeat decodes every sweep; this prints
// what a decode costs, uncached and cached.
func BenchmarkPeerIDDecode(b *testing.B) {
	text := randomPeerID(b).String()
	b.Run("peer.Decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := peer.Decode(text); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		ids := newPeerIDs()
		for b.Loop() {
			if _, err := ids.decode(text); err != nil {
				b.Fatal(err)
			}
		}
	})
}
