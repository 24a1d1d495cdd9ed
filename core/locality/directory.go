package locality

import (
	"github.com/coralcdn/coral/core/shaping"

	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/ipclass"
)

// MaxMembers bounds the peers a Directory remembers. A node is connected to
// a few dozen peers (the libp2p connection manager trims beyond 96).
const MaxMembers = 1024

// maxProxyAddrs bounds the addresses kept per proxy.
const maxProxyAddrs = 8

// deadAfter consecutive failed exchanges drop a peer from the answers
// altogether: after the first the nameserver still probes it before use,
// but a hung peer's probes time out, and every query that ranks it would
// wait for one.
const deadAfter = 2

// Directory is the set of proxies this node can vouch for: itself and the
// peers it heard from. It implements dnsserver.Directory; Proxies returns a
// shared snapshot rebuilt only after a change, so a query costs no copying.
type Directory struct {
	mu      sync.Mutex
	self    dnsserver.Proxy
	members map[string]*member
	snap    []dnsserver.Proxy
	dirty   bool
}

type member struct {
	proxy    dnsserver.Proxy // LastHeard unset; see entry
	lastOK   time.Time
	lastFail time.Time
	fails    int // consecutive failures since lastOK
}

var _ dnsserver.Directory = (*Directory)(nil)

// NewDirectory returns a directory holding only self.
func NewDirectory(self dnsserver.Proxy) *Directory {
	return &Directory{self: self, members: map[string]*member{}, dirty: true}
}

// SetSelf replaces this node's own entry (its LastHeard should be now: a
// node vouches for itself while it runs).
func (d *Directory) SetSelf(p dnsserver.Proxy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.self = p
	d.dirty = true
}

// Heard records a successful exchange with peer id at time at: its
// announcement and the addresses this node sees it at (direct connections
// only; a relay's address is not the peer's).
func (d *Directory) Heard(id string, a Announcement, seen []netip.Addr, at time.Time) {
	if id == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if id == d.self.ID {
		return
	}
	m := d.members[id]
	if m == nil {
		if len(d.members) >= MaxMembers {
			d.evictLocked()
		}
		m = &member{}
		d.members[id] = m
	}
	m.proxy = dnsserver.Proxy{
		ID:         id,
		Addrs:      ProxyAddrs(a, seen),
		Public:     a.Public,
		Nameserver: a.Nameserver,
		Cluster:    a.Cluster,
		Full:       a.Headroom != (shaping.Headroom{}) && !a.Headroom.HasRoom(), // zero: not told
		Paused:     a.Headroom.Paused,
	}
	if at.After(m.lastOK) {
		m.lastOK, m.fails = at, 0
	}
	d.dirty = true
}

// Alive records that peer id answered a ping at time at (no new
// announcement). Unknown peers are ignored: without an announcement there
// is no address to hand out.
func (d *Directory) Alive(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.members[id]; m != nil && at.After(m.lastOK) {
		m.lastOK, m.fails = at, 0
		d.dirty = true
	}
}

// Failed records that an exchange with peer id failed at time at. Until it
// next succeeds the peer is not heard from, whatever it said before; after
// a second failure in a row it is left out.
func (d *Directory) Failed(id string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if m := d.members[id]; m != nil && at.After(m.lastFail) {
		m.lastFail = at
		if at.After(m.lastOK) {
			m.fails++
		}
		d.dirty = true
	}
}

// Forget drops peer id (its connection closed).
func (d *Directory) Forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.members[id]; ok {
		delete(d.members, id)
		d.dirty = true
	}
}

// Retain drops every peer for which keep returns false (a sweep against the
// set of connected peers, in case a disconnect notice was missed).
func (d *Directory) Retain(keep func(id string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id := range d.members {
		if !keep(id) {
			delete(d.members, id)
			d.dirty = true
		}
	}
}

// Len is the number of peers remembered (self not counted).
func (d *Directory) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.members)
}

// evictLocked drops the member heard from least recently.
func (d *Directory) evictLocked() {
	var oldest string
	var at time.Time
	for id, m := range d.members {
		if oldest == "" || m.lastOK.Before(at) {
			oldest, at = id, m.lastOK
		}
	}
	delete(d.members, oldest)
}

// Proxies implements dnsserver.Directory. A peer's LastHeard is its last
// successful exchange, or zero when a later one failed: the nameserver then
// pings it before use. After deadAfter failures in a row it is not listed.
func (d *Directory) Proxies() []dnsserver.Proxy {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dirty {
		return d.snap
	}
	out := make([]dnsserver.Proxy, 0, len(d.members)+1)
	if d.self.ID != "" {
		out = append(out, d.self)
	}
	for _, m := range d.members {
		if len(m.proxy.Addrs) == 0 || m.fails >= deadAfter {
			continue
		}
		p := m.proxy
		if m.lastOK.After(m.lastFail) {
			p.LastHeard = m.lastOK
		}
		out = append(out, p)
	}
	slices.SortFunc(out[min(1, len(out)):], func(a, b dnsserver.Proxy) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	d.snap, d.dirty = out, false
	return out
}

// ProxyAddrs are the addresses a peer's proxy is offered at: what it
// announced, filtered by where this node sees it from (seen, the remote
// addresses of direct connections), plus seen itself when the proxy
// listens on every address.
//
//   - unspecified, multicast, broadcast, link-local and invalid addresses:
//     never (ipclass: not Addressable);
//   - loopback: only when the peer is seen at a loopback address (same
//     machine; the nameserver offers those only to loopback resolvers);
//   - private (RFC 1918, ULA, CGNAT): only when the peer is seen at a
//     private or loopback address, i.e. on this node's LAN — another LAN's
//     192.168.1.10 is a different machine here;
//   - global: always; members hold the network secret.
func ProxyAddrs(a Announcement, seen []netip.Addr) []netip.Addr {
	seenLoop, seenLAN := false, false
	for _, s := range seen {
		c := ipclass.Of(s)
		seenLoop = seenLoop || c == ipclass.Loopback
		seenLAN = seenLAN || c == ipclass.Loopback || c.LAN()
	}
	var out []netip.Addr
	add := func(ip netip.Addr) {
		ip = ip.Unmap()
		c := ipclass.Of(ip)
		switch {
		case len(out) == maxProxyAddrs, !c.Addressable():
			return
		case c == ipclass.Loopback && !seenLoop:
			return
		case c.LAN() && !seenLAN:
			return
		case slices.Contains(out, ip):
			return
		}
		out = append(out, ip)
	}
	for _, ip := range a.Addrs {
		add(ip)
	}
	if a.AnyAddr {
		for _, ip := range seen {
			add(ip)
		}
	}
	return out
}

// HasRoom says whether peer id last said it has headroom (an unknown peer
// is given the benefit of the doubt): cooperative fetches try peers with
// room first.
func (d *Directory) HasRoom(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.members[id]
	return m == nil || !m.proxy.Full
}
