package dsht

import (
	"context"
	"crypto/sha256"
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
// the simulator in package dshtsim. RTT is measured by the DSHT around Call.
type Network interface {
	Call(ctx context.Context, to NodeInfo, req *Request) (*Response, error)
}
