package node

import (
	"net/netip"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// reachedAt lists the addresses this node is reached at that need not be
// on its interfaces: [http] advertise, and the public addresses libp2p
// observed or mapped on the router (relayed addresses are the relay's, not
// ours). The proxy refuses origins there, since NAT hairpinning would lead
// a fetch back into the volunteer's network.
func (n *Node) reachedAt() []netip.Addr {
	var out []netip.Addr
	for _, a := range n.cfg.HTTP.Advertise {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	for _, m := range n.host.Addrs() {
		if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		if ip, err := manet.ToIP(m); err == nil {
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}
