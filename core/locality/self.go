package locality

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/ipclass"
	"github.com/coralcdn/coral/core/shaping"
)

// Refresh recomputes this node's announcement (served to peers) and its
// own directory entry; call it when the budget's headroom changes. Peers
// are told of a change only once the new announcement is what they get
// when they ask back.
func (l *Locator) Refresh() {
	l.refreshing.Lock()
	defer l.refreshing.Unlock()
	a := l.SelfAnnouncement()
	if b, err := a.Marshal(); err == nil {
		l.announce.Store(&b)
	} else {
		l.log.Warn("encoding this node's announcement", "err", err)
	}
	l.dir.SetSelf(l.selfProxy(a))
	key := peersSee(a)
	if old := l.seen.Swap(&key); old == nil || *old != key {
		if old != nil {
			l.log.Debug("announcement changed; telling connected peers", "was", *old, "now", key)
		}
		select {
		case l.changed <- struct{}{}:
		default: // a notice is already pending
		}
	}
}

// selfProxy is this node's own directory entry for announcement a.
func (l *Locator) selfProxy(a Announcement) dnsserver.Proxy {
	loop := []netip.Addr{netip.IPv6Loopback()} // everything of ours is local to us
	return dnsserver.Proxy{
		ID:         l.cfg.Self,
		Addrs:      ProxyAddrs(Announcement{Addrs: a.Addrs}, loop),
		LastHeard:  time.Now(),
		Public:     a.Public,
		Nameserver: a.Nameserver,
		Cluster:    a.Cluster,
		Full:       !a.Headroom.HasRoom(),
		Paused:     a.Headroom.Paused,
	}
}

// Announcement is the encoded announcement this node sends the asking peer
// (p2p.Host.ServeInfo's callback).
func (l *Locator) Announcement(from string) []byte {
	if b := l.announce.Load(); b != nil {
		return *b
	}
	return nil
}

// SelfAnnouncement is this node's announcement now: the advertised
// addresses when configured; else the HTTP listener's address when it is
// bound to one; else (listening on every address) the machine's addresses
// and the public addresses the host observed, with AnyAddr so peers add
// the address they see us at.
func (l *Locator) SelfAnnouncement() Announcement {
	a := Announcement{
		Public:   l.peers.Public(),
		Cluster:  l.clusters(),
		Headroom: shaping.Unbounded,
	}
	if l.cfg.Headroom != nil {
		a.Headroom = l.cfg.Headroom()
	}
	switch {
	case len(l.cfg.Advertise) > 0:
		a.Addrs = l.cfg.Advertise
	default:
		ip, v4only, ok := l.httpIP()
		if !ok {
			break // not listening yet
		}
		if !ip.IsUnspecified() {
			a.Addrs = []netip.Addr{ip}
			break
		}
		a.AnyAddr = true
		a.Addrs = ownAddrs(interfaceAddrs(), l.peers.DirectIPs(), v4only)
	}
	a.Nameserver = isNameserver(l.cfg.DNSListen, l.cfg.Nameserver, a.Addrs)
	return a
}

// httpIP is the HTTP listener's IP; v4only for 0.0.0.0 (":port" and "[::]"
// listen on both families).
func (l *Locator) httpIP() (ip netip.Addr, v4only, ok bool) {
	addr := l.httpAddr.Load()
	if addr == nil {
		return netip.Addr{}, false, false
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return netip.Addr{}, false, false
	}
	host, _, _ := net.SplitHostPort(l.cfg.HTTPListen)
	return ap.Addr().Unmap(), host == "0.0.0.0", true
}

// interfaceAddrs are the machine's interface addresses.
func interfaceAddrs() []netip.Addr {
	var out []netip.Addr
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range ifs {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				out = append(out, pfx.Addr())
			}
		}
	}
	return out
}

// ownAddrs merges interface addresses with the IPs the host itself is
// reachable at, global ones first, at most MaxAnnouncedAddrs; unspecified,
// link-local, multicast, broadcast and (v4only) IPv6 addresses are left out.
func ownAddrs(ifAddrs, hostIPs []netip.Addr, v4only bool) []netip.Addr {
	var out []netip.Addr
	for _, ip := range slices.Concat(ifAddrs, hostIPs) {
		ip = ip.Unmap()
		if ipclass.Of(ip).Addressable() && (!v4only || ip.Is4()) && !slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	rank := func(a netip.Addr) int {
		switch ipclass.Of(a) {
		case ipclass.Global:
			return 0
		case ipclass.Loopback:
			return 2
		}
		return 1 // LAN, CGNAT, a proxy tool's TUN, ...
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int { return cmp.Compare(rank(a), rank(b)) })
	return out[:min(len(out), MaxAnnouncedAddrs)]
}

// isNameserver: this node answers DNS on port 53 at its proxy's addresses,
// by its own listener (dns.nameserver "auto") or, as the operator says
// ("yes"), through a redirect to it. dnsListen "" means no DNS server.
func isNameserver(dnsListen, mode string, proxyAddrs []netip.Addr) bool {
	switch {
	case dnsListen == "" || mode == "no":
		return false
	case mode == "yes":
		return true
	}
	host, port, err := net.SplitHostPort(dnsListen)
	if err != nil {
		return false
	}
	if p, err := strconv.Atoi(port); err != nil || p != 53 {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return host == "" || (err == nil && (ip.IsUnspecified() || slices.Contains(proxyAddrs, ip.Unmap())))
}

// clusters are this node's DSHT cluster IDs from the most local level out,
// as the status page shows them (12 hex digits, a valid DNS label).
func (l *Locator) clusters() [3]string {
	var out [3]string
	levels := l.dht.NumLevels()
	for i := range out {
		lvl := levels - 1 - i
		if lvl < 0 {
			break
		}
		if id := l.dht.Cluster(lvl); id != (dsht.ID{}) {
			out[i] = hex.EncodeToString(id[:6])
		}
	}
	return out
}

// peersSee is what of an announcement peers act on: spare upload and quota
// left change all the time, but peers only ask whether there is room.
func peersSee(a Announcement) string {
	return fmt.Sprint(a.Addrs, a.AnyAddr, a.Public, a.Nameserver, a.Cluster, a.Headroom.HasRoom())
}
