package p2p

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// observedIPs remembers, for each connected peer, the IP it last saw this
// node at (identify's observed address): behind a home NAT, the router's
// public address. libp2p's own address list leaves that address out until
// several peers agree on it, and drops it again once AutoNAT finds it
// unreachable -- the usual case at home -- yet peers still hand it to
// visitors, and a fetch from it would hairpin back into the volunteer's
// network. One entry per connected peer: a member reporting odd addresses
// adds one, and cannot push the others out.
type observedIPs struct {
	mu sync.Mutex
	by map[peer.ID]netip.Addr
}

// note takes an identify or connectedness event from the host's bus.
func (o *observedIPs) note(ev any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch e := ev.(type) {
	case event.EvtPeerIdentificationCompleted:
		ip, ok := directIP(e.ObservedAddr)
		if !ok {
			return
		}
		if o.by == nil {
			o.by = map[peer.ID]netip.Addr{}
		}
		o.by[e.Peer] = ip
	case event.EvtPeerConnectednessChanged:
		if e.Connectedness != network.Connected {
			delete(o.by, e.Peer)
		}
	}
}

// list is the distinct IPs the connected peers see this node at.
func (o *observedIPs) list() []netip.Addr {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]netip.Addr, 0, len(o.by))
	for _, ip := range o.by {
		if !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

// directIP is the IP of a direct (not relayed) address.
func directIP(m ma.Multiaddr) (netip.Addr, bool) {
	if m == nil {
		return netip.Addr{}, false
	}
	if _, err := m.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.Addr{}, false // the relay's address, not ours
	}
	ip, err := manet.ToIP(m)
	if err != nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// ReachedIPs are the addresses other machines reach this node at that need
// not be on its interfaces: every direct address libp2p knows for it
// (listening, mapped on the router, observed by enough peers -- whether or
// not AutoNAT found them reachable) and what each connected peer sees it
// at. The proxy refuses origins there (NAT hairpinning).
func (h *Host) ReachedIPs() []netip.Addr {
	addrs := h.host.Addrs()
	if all, ok := h.host.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		addrs = all.AllAddrs() // Addrs' direct ones and those AutoNAT found unreachable
	}
	out := h.observed.list()
	for _, ip := range directIPs(addrs) {
		if !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}
