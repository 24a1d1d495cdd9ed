package node

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
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
// A newly connected peer is asked at once. After that a peer is asked
// again only when it says its announcement changed (p2p.NotifyInfoChanged,
// sent by refreshSelf's caller on every change that matters to peers:
// addresses, reachability, clusters, room to serve) or when heartbeatRefresh
// has passed — so an idle node with many peers costs a few exchanges a
// second, not one per peer every few seconds (issue 17). Peers reached only
// through a relay, and peers whose last exchange failed, are still asked
// every heartbeatInterval: the link watch does not ping relayed connections,
// so for those the heartbeat is the liveness check.
//
// A failed exchange makes the peer "not heard from" until one succeeds
// again, so the nameserver pings it synchronously (libp2p ping) before
// handing it out; a second failure in a row drops it from the answers until
// it answers again; and a peer whose last connection closes is dropped at
// once. A crashed proxy therefore leaves the answers when the kernel closes
// its connections, and a hung one when the link watch (p2p/links.go,
// pinging every direct connection that carried nothing for 2 s, 2 s
// timeout) closes its connection; dnsserver's LiveWindow (60 s, longer
// than heartbeatRefresh) is only the bound for a stalled heartbeat loop.
const (
	heartbeatInterval = 5 * time.Second
	heartbeatRefresh  = 30 * time.Second
	heartbeatTimeout  = 2 * time.Second
	heartbeatParallel = 16
)

// heartbeat keeps the directory current, and tells connected peers when
// this node's announcement changed, until ctx ends.
func (l *locator) heartbeat(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	sched := newAskSchedule()
	sem := make(chan struct{}, heartbeatParallel)
	run := func(f func()) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			f()
		})
	}
	ask := func(id string) {
		if sched.start(id) {
			run(func() { sched.done(id, l.exchange(ctx, id), time.Now()) })
		}
	}
	beat := func() {
		l.refreshSelf()
		if !l.dnsOn {
			return
		}
		l.dir.Retain(l.host.IsConnected)
		sched.retain(l.host.IsConnected)
		now := time.Now()
		for _, p := range l.host.ConnectedPeers() {
			id := p.String()
			if sched.due(id, now, len(l.host.PeerIPs(id)) == 0) {
				ask(id)
			}
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
		case <-l.changed:
			for _, p := range l.host.ConnectedPeers() {
				id := p.String()
				run(func() { l.notifyChanged(ctx, id) })
			}
		case <-t.C:
			beat()
		}
	}
}

// notifyChanged tells one peer that this node's announcement changed.
// Peers that do not listen (an older version) refresh on their own.
func (l *locator) notifyChanged(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	if err := l.host.NotifyInfoChanged(cctx, id); err != nil && ctx.Err() == nil {
		l.log.Debug("telling a peer our announcement changed", "peer", id, "err", err)
	}
}

// askSchedule remembers, per connected peer, whether an exchange is under
// way and when the last one succeeded.
type askSchedule struct {
	mu   sync.Mutex
	busy map[string]bool
	ok   map[string]time.Time // last successful exchange; absent: none, or the last failed
}

func newAskSchedule() *askSchedule {
	return &askSchedule{busy: map[string]bool{}, ok: map[string]time.Time{}}
}

// due says whether peer id should be asked at now: never heard, last
// exchange failed, reached only through a relay (relayOnly) and
// heartbeatInterval passed, or heartbeatRefresh passed.
func (s *askSchedule) due(id string, now time.Time, relayOnly bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.ok[id]
	every := heartbeatRefresh
	if relayOnly {
		every = heartbeatInterval
	}
	// A tick's slack, so a peer asked just after a tick is not a whole
	// interval late at the one a refresh later.
	return !ok || now.Sub(last) >= every-heartbeatInterval/2
}

// start marks id busy; false if it already was.
func (s *askSchedule) start(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[id] {
		return false
	}
	s.busy[id] = true
	return true
}

// done records the outcome of the exchange start began.
func (s *askSchedule) done(id string, ok bool, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, id)
	if ok {
		s.ok[id] = at
	} else {
		delete(s.ok, id)
	}
}

// retain forgets peers for which keep is false (disconnected).
func (s *askSchedule) retain(keep func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.ok {
		if !keep(id) {
			delete(s.ok, id)
		}
	}
}

// exchange asks one peer for its announcement, records the outcome and
// reports whether it succeeded.
func (l *locator) exchange(ctx context.Context, id string) bool {
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	data, _, err := l.host.PeerInfo(cctx, id)
	cancel()
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			l.dir.Failed(id, now)
			l.log.Debug("proxy heartbeat failed", "peer", id, "err", err)
		}
		return false
	}
	ann, err := locality.ParseAnnouncement(data)
	if err != nil {
		l.dir.Failed(id, now)
		l.log.Debug("bad proxy announcement", "peer", id, "err", err)
		return false
	}
	l.dir.Heard(id, ann, l.host.PeerIPs(id), now)
	if !l.host.IsConnected(id) {
		l.dir.Forget(id) // it left while we were asking
		return false
	}
	// A node connects before its HTTP listener is bound: not done with
	// it yet (asked again at the next sweep, or sooner when binding
	// changes its announcement and it tells us).
	return len(ann.Addrs) > 0 || ann.AnyAddr
}

// refreshSelf recomputes this node's announcement (served to peers) and
// its own directory entry.
func (l *locator) refreshSelf() {
	a := l.selfAnnouncement()
	key := peersSee(a)
	if old := l.seen.Swap(&key); old == nil || *old != key {
		select {
		case l.changed <- struct{}{}:
		default: // a notice is already pending
		}
	}
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

// peersSee is what of an announcement peers act on: spare upload and quota
// left change all the time, but peers only ask whether there is room.
func peersSee(a locality.Announcement) string {
	return fmt.Sprint(a.Addrs, a.AnyAddr, a.Public, a.Nameserver, a.Cluster, a.Headroom.HasRoom())
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
