package node

import (
	"cmp"
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/locality"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/p2p"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// The directory of live proxies behind the nameserver.
//
// Peers learn each other's proxy over /coral/info (p2p.ServeInfo): the
// reply is this node's locality.Announcement — the addresses its HTTP proxy
// accepts visitors on, whether it is publicly reachable, whether it answers
// DNS on port 53, its DSHT clusters. Chosen over announcing in the DSHT
// because the exchange doubles as the liveness heartbeat, reaches exactly
// the peers whose liveness this node can vouch for (the connected ones), and
// needs no lookup per peer.
//
// Every heartbeatInterval the node asks each connected peer (no dial,
// heartbeatTimeout each); a newly connected peer is asked at once. A failed
// exchange makes the peer "not heard from" until one succeeds again, so the
// nameserver pings it synchronously (libp2p ping) before handing it out; a
// second failure in a row drops it from the answers until it answers again;
// and a peer whose last connection closes is dropped at once. A crashed proxy
// therefore leaves the answers when the kernel closes its connections, and
// a hung one within heartbeatInterval+heartbeatTimeout; dnsserver's
// LiveWindow (60 s) is only the bound for a stalled heartbeat loop.
const (
	heartbeatInterval = 5 * time.Second
	heartbeatTimeout  = 2 * time.Second
	heartbeatParallel = 16
	startupRetry      = 500 * time.Millisecond
)

// heartbeat keeps the directory current until ctx ends.
func (l *locator) heartbeat(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	sem := make(chan struct{}, heartbeatParallel)
	var mu sync.Mutex
	busy := map[string]bool{}
	ask := func(id string) {
		mu.Lock()
		if busy[id] {
			mu.Unlock()
			return
		}
		busy[id] = true
		mu.Unlock()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() {
				<-sem
				mu.Lock()
				delete(busy, id)
				mu.Unlock()
			}()
			l.exchange(ctx, id)
		})
	}
	beat := func() {
		l.refreshSelf()
		if !l.dnsOn {
			return
		}
		l.dir.Retain(l.host.IsConnected)
		for _, p := range l.host.ConnectedPeers() {
			ask(p.String())
		}
	}
	beat()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-l.wake:
			if l.dnsOn {
				ask(id)
			}
		case <-t.C:
			beat()
		}
	}
}

// exchange asks one peer for its announcement and records the outcome.
func (l *locator) exchange(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	data, _, err := l.host.PeerInfo(cctx, id)
	cancel()
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			l.dir.Failed(id, now)
			l.log.Debug("proxy heartbeat failed", "peer", id, "err", err)
		}
		return
	}
	ann, err := locality.ParseAnnouncement(data)
	if err != nil {
		l.dir.Failed(id, now)
		l.log.Debug("bad proxy announcement", "peer", id, "err", err)
		return
	}
	l.dir.Heard(id, ann, l.host.PeerIPs(id), now)
	if !l.host.IsConnected(id) {
		l.dir.Forget(id) // it left while we were asking
		return
	}
	if len(ann.Addrs) == 0 && !ann.AnyAddr {
		// A node connects before its HTTP listener is bound; ask again
		// soon rather than a heartbeat later.
		time.AfterFunc(startupRetry, func() {
			select {
			case l.wake <- id:
			default:
			}
		})
	}
}

// refreshSelf recomputes this node's announcement (served to peers) and
// its own directory entry.
func (l *locator) refreshSelf() {
	a := l.selfAnnouncement()
	if b, err := a.Marshal(); err == nil {
		l.announce.Store(&b)
	} else {
		l.log.Warn("encoding this node's announcement", "err", err)
	}
	loop := []netip.Addr{netip.IPv6Loopback()} // everything of ours is local to us
	l.dir.SetSelf(dnsserver.Proxy{
		ID:         l.self,
		Addrs:      locality.ProxyAddrs(locality.Announcement{Addrs: a.Addrs}, loop),
		LastHeard:  time.Now(),
		Public:     a.Public,
		Nameserver: a.Nameserver,
		Cluster:    a.Cluster,
		Full:       !a.Headroom.HasRoom(),
	})
}

// announcement is what ServeInfo sends.
func (l *locator) announcement(string) []byte {
	if b := l.announce.Load(); b != nil {
		return *b
	}
	return nil
}

// selfAnnouncement: the advertised addresses when configured; else the
// HTTP listener's address when it is bound to one; else (listening on
// every address) the machine's addresses and the public addresses libp2p
// observed, with AnyAddr so peers add the address they see us at.
func (l *locator) selfAnnouncement() locality.Announcement {
	a := locality.Announcement{
		Public:   l.host.Reachability() == p2p.ReachabilityPublic,
		Cluster:  l.clusters(),
		Headroom: shaping.Unbounded,
	}
	if l.headroom != nil {
		a.Headroom = l.headroom()
	}
	switch {
	case len(l.advertise) > 0:
		a.Addrs = l.advertise
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
		a.Addrs = l.machineAddrs(v4only)
	}
	a.Nameserver = l.nameserver(a.Addrs)
	return a
}

// httpIP is the HTTP listener's IP; v4only for 0.0.0.0 (":port" and "[::]"
// listen on both families).
func (l *locator) httpIP() (ip netip.Addr, v4only, ok bool) {
	addr := l.httpAddr.Load()
	if addr == nil {
		return netip.Addr{}, false, false
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		return netip.Addr{}, false, false
	}
	host, _, _ := net.SplitHostPort(l.httpListen)
	return ap.Addr().Unmap(), host == "0.0.0.0", true
}

// machineAddrs lists the interface addresses and libp2p's addresses for
// this host that are its own (observed public ones included, relayed ones
// never), global ones first, at most MaxAnnouncedAddrs.
func (l *locator) machineAddrs(v4only bool) []netip.Addr {
	var ifAddrs []netip.Addr
	if ifs, err := net.InterfaceAddrs(); err == nil {
		for _, ia := range ifs {
			if pfx, err := netip.ParsePrefix(ia.String()); err == nil {
				ifAddrs = append(ifAddrs, pfx.Addr())
			}
		}
	}
	return ownAddrs(ifAddrs, l.host.Addrs(), v4only)
}

// ownAddrs merges interface addresses with the IPs of libp2p multiaddrs at
// which this host itself listens. A relayed address
// (/ip4/<relay>/tcp/4100/p2p/<relay>/p2p-circuit) carries the relay's IP:
// visitors sent there would reach the relay, not this proxy, so it is
// skipped.
func ownAddrs(ifAddrs []netip.Addr, p2pAddrs []ma.Multiaddr, v4only bool) []netip.Addr {
	var out []netip.Addr
	add := func(ip netip.Addr) {
		ip = ip.Unmap()
		if ip.IsValid() && !ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && (!v4only || ip.Is4()) &&
			!slices.Contains(out, ip) {
			out = append(out, ip)
		}
	}
	for _, a := range ifAddrs {
		add(a)
	}
	for _, m := range p2pAddrs {
		if isRelayedAddr(m) {
			continue
		}
		if ip, err := manet.ToIP(m); err == nil {
			if a, ok := netip.AddrFromSlice(ip); ok {
				add(a)
			}
		}
	}
	rank := func(a netip.Addr) int {
		switch {
		case a.IsLoopback():
			return 2
		case a.IsPrivate():
			return 1
		}
		return 0
	}
	slices.SortStableFunc(out, func(a, b netip.Addr) int { return cmp.Compare(rank(a), rank(b)) })
	return out[:min(len(out), locality.MaxAnnouncedAddrs)]
}

// isRelayedAddr reports whether m goes through a circuit relay.
func isRelayedAddr(m ma.Multiaddr) bool {
	_, err := m.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// nameserver: this node answers DNS on port 53 at its proxy's addresses,
// by its own listener (dns.nameserver "auto") or, as the operator says
// ("yes"), through a redirect to it.
func (l *locator) nameserver(proxyAddrs []netip.Addr) bool {
	switch {
	case !l.dnsOn || l.nsMode == "no":
		return false
	case l.nsMode == "yes":
		return true
	}
	host, port, err := net.SplitHostPort(l.dnsListen)
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
func (l *locator) clusters() [3]string {
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
