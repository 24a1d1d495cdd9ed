package p2p

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Ping measures the round trip to a connected peer with libp2p's ping
// protocol (/ipfs/ping/1.0.0, served by every libp2p host). It never dials:
// the nameserver pings a proxy synchronously before handing it out, and a
// proxy it is not connected to is not one it can vouch for in time.
func (h *Host) Ping(ctx context.Context, id string) (time.Duration, error) {
	p, err := h.ids.decode(id)
	if err != nil {
		return 0, fmt.Errorf("p2p: ping: bad peer ID %q: %w", id, err)
	}
	if !hasConn(h.host.Network().Connectedness(p)) {
		return 0, fmt.Errorf("p2p: ping %s: not connected", p)
	}
	planted, err := h.emulateDelay(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("p2p: ping %s: %w", p, err)
	}
	ctx, cancel := context.WithCancel(network.WithNoDial(ctx, "ping"))
	defer cancel() // stops ping.Ping's loop and resets its stream
	select {
	case r, ok := <-ping.Ping(ctx, h.host, p):
		switch {
		case !ok:
			return 0, fmt.Errorf("p2p: ping %s: %w", p, context.Cause(ctx))
		case r.Error != nil:
			return 0, fmt.Errorf("p2p: ping %s: %w", p, r.Error)
		}
		h.links.sampled(p, r.RTT) // libp2p's ping recorded it in the peerstore itself
		return r.RTT + planted, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("p2p: ping %s: %w", p, ctx.Err())
	}
}
