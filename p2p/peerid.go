package p2p

import (
	"github.com/coralcdn/coral/core/dsht"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerIDs converts peer IDs to and from the text the application names
// peers by (core/locality, the DNS directory, the control API). The
// directory heartbeat asks about every connected peer every few seconds,
// and base58 decoding and encoding came to a tenth of an idle node's CPU
// with 96 peers (issue 17); a peer's text never changes, so both
// directions are remembered for the peers met lately.
type peerIDs struct {
	decoded *lru.Cache[string, peer.ID]
	encoded *lru.Cache[peer.ID, string]
	infos   *lru.Cache[peer.ID, dsht.NodeInfo] // Host.NodeInfo
}

// peerIDCacheSize covers the peers a node talks to, with room to spare
// (the connection manager keeps at most 96).
const peerIDCacheSize = 1024

func newPeerIDs() *peerIDs {
	dec, _ := lru.New[string, peer.ID](peerIDCacheSize) // errors only for a size <= 0
	enc, _ := lru.New[peer.ID, string](peerIDCacheSize)
	infos, _ := lru.New[peer.ID, dsht.NodeInfo](peerIDCacheSize)
	return &peerIDs{decoded: dec, encoded: enc, infos: infos}
}

// decode is peer.Decode, remembered.
func (c *peerIDs) decode(s string) (peer.ID, error) {
	if p, ok := c.decoded.Get(s); ok {
		return p, nil
	}
	p, err := peer.Decode(s)
	if err == nil {
		c.decoded.Add(s, p)
	}
	return p, err
}

// text is p.String(), remembered.
func (c *peerIDs) text(p peer.ID) string {
	if s, ok := c.encoded.Get(p); ok {
		return s
	}
	s := p.String()
	c.encoded.Add(p, s)
	return s
}
