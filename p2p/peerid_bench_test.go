package p2p

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// FetchObject decodes the referral's peer ID text once per fetch (the
// referral carries it as text on the wire); this prints what that costs,
// against the milliseconds of the transfer it starts.
func BenchmarkPeerIDDecode(b *testing.B) {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	text := id.String()
	for b.Loop() {
		if _, err := peer.Decode(text); err != nil {
			b.Fatal(err)
		}
	}
}
