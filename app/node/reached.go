package node

import (
	"net/netip"
)

// reachedAt lists the addresses this node is reached at that need not be on
// its interfaces: [http] advertise, and the public addresses libp2p knows or
// its peers see it at (p2p.Host.ReachedIPs; relayed addresses are the
// relay's, not ours). The proxy refuses origins there, since NAT
// hairpinning would lead a fetch back into the volunteer's network.
func (n *Node) reachedAt() []netip.Addr {
	var out []netip.Addr
	for _, a := range n.cfg.HTTP.Advertise {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
		}
	}
	return append(out, n.host.ReachedIPs()...)
}
