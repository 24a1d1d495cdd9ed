package p2p

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Node information, /coral/info/<version>: an empty request, and a reply
// carrying bytes the application supplies (app/node sends a
// locality.Announcement: where its proxy listens, whether it is public, its
// clusters). This package does not look inside. The exchange is also the
// heartbeat the DNS directory uses to judge liveness, so it is small and
// never dials.
const (
	maxInfoMsg  = 4 << 10
	infoTimeout = 5 * time.Second
)

type infoRequest struct{}

type infoReply struct {
	Data []byte `cbor:"1,keyasint"`
}

func (h *Host) infoProtocol() protocol.ID {
	return protocol.ID("/coral/info/" + h.cfg.ProtocolVersion)
}

// ServeInfo answers /coral/info requests with info(asking peer's ID).
func (h *Host) ServeInfo(info func(from string) []byte) {
	serveRPC(h, h.infoProtocol(), maxInfoMsg, infoTimeout,
		func(_ context.Context, from peer.ID, _ *infoRequest) (*infoReply, error) {
			return &infoReply{Data: info(h.ids.text(from))}, nil
		})
}

// PeerInfo asks a connected peer for its information over an existing
// connection (no dial) and returns it with the exchange's round trip.
func (h *Host) PeerInfo(ctx context.Context, id string) ([]byte, time.Duration, error) {
	p, err := h.ids.decode(id)
	if err != nil {
		return nil, 0, fmt.Errorf("p2p: info: bad peer ID %q: %w", id, err)
	}
	start := time.Now()
	var resp infoReply
	if err := h.call(ctx, p, h.infoProtocol(), &infoRequest{}, &resp, maxInfoMsg, infoTimeout); err != nil {
		return nil, 0, err
	}
	return resp.Data, time.Since(start), nil
}

// Change notices, /coral/info-changed/<version>: an empty request telling
// a connected peer that this node's information changed, so it asks again
// now (over /coral/info) instead of at its next periodic refresh. Peers
// then only need to re-ask rarely, and a change (paused, full, a new
// address) still reaches them within a round trip.
type infoChangedRequest struct{}

type infoChangedReply struct{}

func (h *Host) infoChangedProtocol() protocol.ID {
	return protocol.ID("/coral/info-changed/" + h.cfg.ProtocolVersion)
}

// OnInfoChanged calls changed(peer ID) when a peer says its information
// changed. changed runs on the stream's goroutine and must not block.
func (h *Host) OnInfoChanged(changed func(from string)) {
	serveRPC(h, h.infoChangedProtocol(), maxInfoMsg, infoTimeout,
		func(_ context.Context, from peer.ID, _ *infoChangedRequest) (*infoChangedReply, error) {
			changed(h.ids.text(from))
			return &infoChangedReply{}, nil
		})
}

// NotifyInfoChanged tells a connected peer (no dial) that this node's
// information changed.
func (h *Host) NotifyInfoChanged(ctx context.Context, id string) error {
	p, err := h.ids.decode(id)
	if err != nil {
		return fmt.Errorf("p2p: info changed: bad peer ID %q: %w", id, err)
	}
	var resp infoChangedReply
	return h.call(ctx, p, h.infoChangedProtocol(), &infoChangedRequest{}, &resp, maxInfoMsg, infoTimeout)
}

// PeerIPs are the remote IP addresses of the direct connections to a peer:
// where this node sees it from. Relayed connections are left out (their
// address is the relay's).
func (h *Host) PeerIPs(id string) []netip.Addr {
	p, err := h.ids.decode(id)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, c := range h.host.Network().ConnsToPeer(p) {
		if relayedConn(c) {
			continue
		}
		ip, err := manet.ToIP(c.RemoteMultiaddr())
		if err != nil {
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok && !containsAddr(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func containsAddr(as []netip.Addr, a netip.Addr) bool {
	for _, b := range as {
		if a == b {
			return true
		}
	}
	return false
}

// IsConnected reports whether the node has a connection (direct or
// relayed) to the peer.
func (h *Host) IsConnected(id string) bool {
	p, err := h.ids.decode(id)
	return err == nil && hasConn(h.host.Network().Connectedness(p))
}

// WatchPeers calls connected when a connection to a peer opens, and
// disconnected when a peer's last connection closes. The callbacks run on
// libp2p's goroutines and must not block; connected may repeat for a peer
// with several connections.
func (h *Host) WatchPeers(connected, disconnected func(id string)) {
	h.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if connected != nil {
				connected(h.ids.text(c.RemotePeer()))
			}
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if disconnected != nil && !hasConn(n.Connectedness(c.RemotePeer())) {
				disconnected(h.ids.text(c.RemotePeer()))
			}
		},
	})
}
