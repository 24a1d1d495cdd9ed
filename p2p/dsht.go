package p2p

import (
	"context"
	"fmt"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// dshtTimeout caps one DSHT RPC (the DSHT's own adaptive timeouts are
// usually much shorter) and the time a handler may take.
const dshtTimeout = 10 * time.Second

// NodeInfoFor is the DSHT's name for a peer: ID = SHA-256 of the peer ID's
// bytes, Addr = the peer ID string.
func NodeInfoFor(p peer.ID) dsht.NodeInfo {
	return dsht.NodeInfo{ID: dsht.NodeID([]byte(p)), Addr: p.String()}
}

// NodeInfo is NodeInfoFor, remembered for the peers met lately: the
// node's peers are named to the DSHT every few seconds, and the hash and
// the base58 text were a fifth of an idle node's CPU with 96 peers
// (issue 17).
func (h *Host) NodeInfo(p peer.ID) dsht.NodeInfo {
	if info, ok := h.ids.infos.Get(p); ok {
		return info
	}
	info := NodeInfoFor(p)
	h.ids.infos.Add(p, info)
	return info
}

// PeerIDOf recovers the peer ID from a NodeInfo, checking that its DSHT ID
// matches (a contact with a forged ID is refused).
func PeerIDOf(n dsht.NodeInfo) (peer.ID, error) {
	p, err := peer.Decode(n.Addr)
	if err != nil {
		return "", fmt.Errorf("p2p: node address %q is not a peer ID: %w", n.Addr, err)
	}
	if dsht.NodeID([]byte(p)) != n.ID {
		return "", fmt.Errorf("p2p: node %s: DSHT ID does not match its peer ID", n.Addr)
	}
	return p, nil
}

// Self is this node's DSHT name.
func (h *Host) Self() dsht.NodeInfo { return h.NodeInfo(h.ID()) }

// ServeDSHT answers /coral/dsht streams with handler.
func (h *Host) ServeDSHT(handler dsht.Handler) {
	serveRPC(h, h.protos.dsht, maxDSHTMsg, dshtTimeout,
		func(ctx context.Context, from peer.ID, req *dsht.Request) (*dsht.Response, error) {
			return handler.HandleRPC(ctx, h.NodeInfo(from), req)
		})
}

// DSHTNetwork carries the DSHT's RPCs over /coral/dsht streams.
func (h *Host) DSHTNetwork() dsht.Network { return dshtNetwork{h} }

type dshtNetwork struct{ h *Host }

var _ dsht.TimedNetwork = dshtNetwork{}

func (n dshtNetwork) Call(ctx context.Context, to dsht.NodeInfo, req *dsht.Request) (*dsht.Response, error) {
	resp, _, err := n.CallTimed(ctx, to, req)
	return resp, err
}

// CallTimed is Call that also returns the round trip of the exchange
// alone: dialling (when no connection is open, as after the connection
// manager trimmed it) is not part of the distance to a node.
func (n dshtNetwork) CallTimed(ctx context.Context, to dsht.NodeInfo, req *dsht.Request) (*dsht.Response, time.Duration, error) {
	p, err := PeerIDOf(to)
	if err != nil {
		return nil, 0, err
	}
	if err := n.h.ensureConnected(ctx, p); err != nil {
		return nil, 0, err
	}
	start := time.Now()
	var resp dsht.Response
	if err := n.h.call(ctx, p, n.h.protos.dsht, req, &resp, maxDSHTMsg, dshtTimeout); err != nil {
		return nil, 0, err
	}
	return &resp, time.Since(start), nil
}

// Connected says whether a request to the node can go out without a dial.
func (n dshtNetwork) Connected(to dsht.NodeInfo) bool {
	p, err := PeerIDOf(to)
	return err == nil && hasConn(n.h.host.Network().Connectedness(p))
}
