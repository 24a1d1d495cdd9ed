package dsht

import (
	"context"
	"crypto/sha256"
	"time"
)

// ID names both nodes and keys in one 256-bit space; distance is XOR.
type ID [32]byte

// NodeID derives a node's ID from its transport identity (for libp2p, the
// peer ID's bytes), so the same node has the same ID in every cluster.
func NodeID(identity []byte) ID { return sha256.Sum256(identity) }

// A key is the ID a name is kept under; for a URL it is its object.Key,
// computed once per request by the proxy: dsht.ID(object.KeyOf(url)).

// NodeInfo is how the DSHT names a node to its Network. Addr is opaque to
// the DSHT: the libp2p network uses the peer ID string, the simulator an index.
type NodeInfo struct {
	ID   ID     `cbor:"1,keyasint"`
	Addr string `cbor:"2,keyasint"`
}

// Network carries DSHT RPCs. The libp2p implementation lives in package p2p;
// the simulator in package dshtsim. RTT is measured by the DSHT around Call,
// or by the network (TimedNetwork).
type Network interface {
	Call(ctx context.Context, to NodeInfo, req *Request) (*Response, error)
}

// TimedNetwork is an optional extension of Network for transports that
// set up a connection before a request when there is none (libp2p dials,
// and under load a dial with its handshakes takes longer than the round
// trip itself): CallTimed also returns the round trip of the exchange
// alone, which the node then takes as its RTT sample. A sample with the
// dial in it made near nodes look far, and a node measured once is not
// measured again soon, so its cluster could look unacceptable for minutes.
// A request that must dial first (Connected false) gets the node's
// InitialRTO on top of its timeout: timing out on the dial would mark a
// live node failed.
type TimedNetwork interface {
	Network
	CallTimed(ctx context.Context, to NodeInfo, req *Request) (_ *Response, rtt time.Duration, _ error)
	Connected(to NodeInfo) bool
}
