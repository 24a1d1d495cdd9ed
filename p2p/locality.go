package p2p

import (
	"net/netip"
	"time"

	"github.com/coralcdn/coral/core/locality"
	ma "github.com/multiformats/go-multiaddr"
)

// The host is what the nameserver's locator talks to the peers through.
var _ locality.Peers = (*Host)(nil)

// ConnectedIDs lists the peers with at least one open connection, by their
// ID as text.
func (h *Host) ConnectedIDs() []string {
	ps := h.ConnectedPeers()
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = h.ids.text(p)
	}
	return out
}

// HeardFrom is when a peer last delivered bytes to this node on any
// stream (an answer, a request, a ping's echo); zero if not in the last
// hour. The link watch pings an idle direct connection every few seconds,
// so a live peer is heard from at least that often.
func (h *Host) HeardFrom(id string) time.Time {
	p, err := h.ids.decode(id)
	if err != nil {
		return time.Time{}
	}
	return h.links.recv.lastFrom(p)
}

// Public reports whether the host is reachable from the Internet (as
// configured, or as AutoNAT found).
func (h *Host) Public() bool { return h.Reachability() == ReachabilityPublic }

// DirectIPs are the IPs of the addresses the host listens or was observed
// at, relayed ones left out.
func (h *Host) DirectIPs() []netip.Addr { return directIPs(h.Addrs()) }

// directIPs are the IPs of addrs that reach this host itself. A relayed
// address (/ip4/<relay>/tcp/4100/p2p/<relay>/p2p-circuit) carries the
// relay's IP: visitors sent there would reach the relay, not this proxy.
func directIPs(addrs []ma.Multiaddr) []netip.Addr {
	var out []netip.Addr
	for _, m := range addrs {
		if ip, ok := directIP(m); ok {
			out = append(out, ip)
		}
	}
	return out
}
