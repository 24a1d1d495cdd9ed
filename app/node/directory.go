package node

import (
	"net"
	"net/netip"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/p2p"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// directory tells the DNS server which proxies exist: this node and the
// members it is connected to. A live libp2p connection is the liveness
// signal: libp2p drops dead connections, so a crashed proxy leaves the
// directory as soon as its connection does.
type directory struct {
	host     *p2p.Host
	self     string
	httpAddr func() string
}

var _ dnsserver.Directory = (*directory)(nil)

func (d *directory) Proxies() []dnsserver.Proxy {
	now := time.Now()
	st := d.host.Status()
	out := []dnsserver.Proxy{{ID: d.self, Addrs: d.selfAddrs(st), LastHeard: now, Public: st.Reachability == p2p.ReachabilityPublic}}
	for _, p := range st.Peers {
		if p.Relayed {
			continue // visitors could not reach it directly either
		}
		ip, ok := multiaddrIP(p.Addr)
		if !ok {
			continue
		}
		out = append(out, dnsserver.Proxy{ID: p.ID, Addrs: []netip.Addr{ip}, LastHeard: now, Public: isPublic(ip)})
	}
	return out
}

// selfAddrs are the addresses visitors can use for this node's proxy: the
// HTTP listener's address when it is bound to one, else the addresses the
// p2p host listens on.
func (d *directory) selfAddrs(st p2p.Status) []netip.Addr {
	if host, _, err := net.SplitHostPort(d.httpAddr()); err == nil {
		if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
			return []netip.Addr{ip.Unmap()}
		}
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range st.ListenAddrs {
		if ip, ok := multiaddrIP(a); ok && !ip.IsUnspecified() && !seen[ip] {
			seen[ip] = true
			out = append(out, ip)
		}
	}
	return out
}

func multiaddrIP(s string) (netip.Addr, bool) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	ip, err := manet.ToIP(m)
	if err != nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

func isPublic(ip netip.Addr) bool {
	return ip.IsGlobalUnicast() && !ip.IsPrivate()
}
