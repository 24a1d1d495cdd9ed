package p2p

import (
	"context"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	manet "github.com/multiformats/go-multiaddr/net"
)

// RTTRule plants a round-trip time between two address ranges, for tests
// and benchmarks of many nodes on one machine, where kernel latency
// emulation is not available: every DSHT RPC and peer fetch between an
// address in A and one in B (either way round) waits RTT before it is sent.
// The DSHT measures RTTs around its RPCs, so it sees the planted distances
// and forms its latency clusters from them.
type RTTRule struct {
	A, B netip.Prefix
	RTT  time.Duration
}

func (r RTTRule) matches(x, y netip.Addr) bool {
	return r.A.Contains(x) && r.B.Contains(y) || r.A.Contains(y) && r.B.Contains(x)
}

// emulatedRTT is the planted RTT to p over the current connection: the
// first rule that matches its local and remote addresses, else zero.
func (h *Host) emulatedRTT(p peer.ID) time.Duration {
	if len(h.cfg.EmulateRTT) == 0 {
		return 0
	}
	for _, c := range h.host.Network().ConnsToPeer(p) {
		l, lerr := manet.ToIP(c.LocalMultiaddr())
		r, rerr := manet.ToIP(c.RemoteMultiaddr())
		if lerr != nil || rerr != nil {
			continue // a relayed connection has no IP of its own
		}
		la, _ := netip.AddrFromSlice(l)
		ra, _ := netip.AddrFromSlice(r)
		for _, rule := range h.cfg.EmulateRTT {
			if rule.matches(la.Unmap(), ra.Unmap()) {
				return rule.RTT
			}
		}
		return 0
	}
	return 0
}

// emulateDelay waits out the planted RTT to p, or until ctx ends, and
// says how long it was.
func (h *Host) emulateDelay(ctx context.Context, p peer.ID) (time.Duration, error) {
	d := h.emulatedRTT(p)
	if d <= 0 {
		return 0, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		return d, ctx.Err()
	}
}
