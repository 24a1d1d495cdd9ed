package locality

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/shaping"
)

// memPeers is the host as the Locator sees it, connecting Locators in
// memory: PeerInfo is the other Locator's Announcement, and a peer can be
// made to fail its exchanges and pings.
type memPeers struct {
	mu      sync.Mutex
	public  bool
	peers   map[string]*Locator
	seen    map[string][]netip.Addr
	failing map[string]bool
	// notices counts change notices that got through, and refused those
	// that did not (to a failing peer), by peer; asked the PeerInfo
	// exchanges.
	notices, refused, asked map[string]int
	heard                   map[string]time.Time // HeardFrom
}

func newMemPeers() *memPeers {
	return &memPeers{peers: map[string]*Locator{}, seen: map[string][]netip.Addr{}, failing: map[string]bool{},
		notices: map[string]int{}, refused: map[string]int{}, asked: map[string]int{}, heard: map[string]time.Time{}}
}

// hear records that peer id delivered bytes at t.
func (m *memPeers) hear(id string, t time.Time) {
	m.mu.Lock()
	m.heard[id] = t
	m.mu.Unlock()
}

func (m *memPeers) HeardFrom(id string) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.heard[id]
}

// exchanges is how many times peer id was asked for its announcement.
func (m *memPeers) exchanges(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.asked[id]
}

func (m *memPeers) connect(id string, l *Locator, seen ...netip.Addr) {
	m.mu.Lock()
	m.peers[id], m.seen[id] = l, seen
	m.mu.Unlock()
}

func (m *memPeers) fail(id string, failing bool) {
	m.mu.Lock()
	m.failing[id] = failing
	m.mu.Unlock()
}

func (m *memPeers) ConnectedIDs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for id := range m.peers {
		out = append(out, id)
	}
	return out
}

func (m *memPeers) IsConnected(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peers[id] != nil
}

func (m *memPeers) PeerInfo(_ context.Context, id string) ([]byte, time.Duration, error) {
	m.mu.Lock()
	l, failing := m.peers[id], m.failing[id]
	if m.asked != nil {
		m.asked[id]++
	}
	m.mu.Unlock()
	if l == nil || failing {
		return nil, 0, errors.New("memPeers: no answer")
	}
	return l.Announcement("self"), time.Millisecond, nil
}

func (m *memPeers) PeerIPs(id string) []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[id]
}

func (m *memPeers) Ping(ctx context.Context, id string) (time.Duration, error) {
	_, rtt, err := m.PeerInfo(ctx, id)
	return rtt, err
}

func (m *memPeers) NotifyInfoChanged(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.peers[id] == nil:
		return errors.New("memPeers: not connected")
	case m.failing[id]:
		m.refused[id]++
		return errors.New("memPeers: no answer")
	}
	m.notices[id]++
	return nil
}

// counts reads the notice counters of peer id.
func (m *memPeers) counts(id string) (notices, refused int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notices[id], m.refused[id]
}

func (m *memPeers) WatchLinks([]string, time.Duration) {}

func (m *memPeers) Public() bool            { return m.public }
func (m *memPeers) DirectIPs() []netip.Addr { return nil }

func newTestLocator(t *testing.T, cfg LocatorConfig, peers Peers) *Locator {
	t.Helper()
	cfg.Logger = testLogger()
	l, err := NewLocator(cfg, peers, newDSHT(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	l.Start(ctx, &wg)
	t.Cleanup(func() { cancel(); wg.Wait() })
	return l
}

func findProxy(l *Locator, id string) (dnsserver.Proxy, bool) {
	for _, p := range l.Directory().Proxies() {
		if p.ID == id {
			return p, true
		}
	}
	return dnsserver.Proxy{}, false
}

// A Locator learns a connected peer's proxy from its announcement, stops
// vouching for it when an exchange fails, takes a successful probe as
// hearing from it again, and forgets it when it disconnects.
func TestLocatorFollowsPeers(t *testing.T) {
	addrB := netip.MustParseAddr("192.0.2.7")
	peersA, peersB := newMemPeers(), &memPeers{public: true}
	a := newTestLocator(t, LocatorConfig{Self: "A", DNSListen: "127.0.0.1:5354", Nameserver: "auto"}, peersA)
	b := newTestLocator(t, LocatorConfig{Self: "B", DNSListen: ":53", Nameserver: "auto",
		Advertise: []netip.Addr{addrB}}, peersB)

	peersA.connect("B", b, addrB)
	a.Connected("B")
	eventually(t, 5*time.Second, "A lists B's proxy", func() bool {
		p, ok := findProxy(a, "B")
		return ok && slices.Equal(p.Addrs, []netip.Addr{addrB}) && p.Public && p.Nameserver && !p.LastHeard.IsZero()
	})

	peersA.fail("B", true)
	a.Connected("B")
	eventually(t, 5*time.Second, "B not heard from after a failed exchange", func() bool {
		p, ok := findProxy(a, "B")
		return ok && p.LastHeard.IsZero()
	})
	if err := a.Ping(t.Context(), "B"); err == nil {
		t.Error("probe of a peer that does not answer succeeded")
	}
	peersA.fail("B", false)
	if err := a.Ping(t.Context(), "B"); err != nil {
		t.Errorf("probe: %v", err)
	}
	if p, ok := findProxy(a, "B"); !ok || p.LastHeard.IsZero() {
		t.Errorf("a probe that answered does not count as hearing from B: %+v", p)
	}

	a.Forget("B")
	if _, ok := findProxy(a, "B"); ok {
		t.Error("B still listed after it disconnected")
	}
}

// The announcement a Locator serves is the one it computes, encoded: the
// advertised addresses, the nameserver flag and the headroom it is told.
func TestLocatorAnnouncement(t *testing.T) {
	addr := netip.MustParseAddr("198.51.100.9")
	l := newTestLocator(t, LocatorConfig{Self: "A", DNSListen: "198.51.100.9:53", Nameserver: "auto",
		Advertise: []netip.Addr{addr}}, newMemPeers())
	got, err := ParseAnnouncement(l.Announcement("B"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Addrs, []netip.Addr{addr}) || !got.Nameserver || got.AnyAddr || got.Public {
		t.Errorf("announcement %+v", got)
	}
	self, ok := findProxy(l, "A")
	if !ok || self.LastHeard.IsZero() || self.Full {
		t.Errorf("own entry %+v, %v", self, ok)
	}
}

// A change notice that does not get through (a peer busy or slow for a
// moment) is sent again at the next heartbeat sweep, so that peer stops
// handing out a paused node well before its own periodic refresh.
func TestFailedChangeNoticeIsSentAgain(t *testing.T) {
	var paused atomic.Bool
	peers := newMemPeers()
	b := newTestLocator(t, LocatorConfig{Self: "B", Headroom: func() shaping.Headroom {
		return shaping.Headroom{Paused: paused.Load(), SpareRate: -1, QuotaLeft: -1}
	}}, peers)
	peers.connect("A", newTestLocator(t, LocatorConfig{Self: "A"}, newMemPeers()))
	peers.fail("A", true)
	_, before := peers.counts("A")
	paused.Store(true)
	b.Refresh() // as the budget's subscription does
	eventually(t, 5*time.Second, "the notice of the pause refused by A", func() bool {
		_, refused := peers.counts("A")
		return refused > before
	})
	peers.fail("A", false)
	eventually(t, heartbeatInterval+2*time.Second, "the notice sent again at the next sweep", func() bool {
		told, _ := peers.counts("A")
		return told > 0
	})
}

// Between announcement refreshes a peer stays heard from on the traffic it
// sends anyway (a ping's echo, an answer): each sweep marks a directly
// connected peer that delivered bytes since its last exchange alive,
// without asking it again. A peer reached only through a relay that goes
// quiet is asked at the next sweep, since nothing pings its connection.
func TestTrafficKeepsPeersHeardWithoutExchanges(t *testing.T) {
	direct, relayed := netip.MustParseAddr("192.0.2.7"), newMemPeers()
	peersA := newMemPeers()
	a := newTestLocator(t, LocatorConfig{Self: "A", DNSListen: "127.0.0.1:5354", Nameserver: "auto"}, peersA)
	for _, id := range []string{"B", "C"} {
		other := newTestLocator(t, LocatorConfig{Self: id, Advertise: []netip.Addr{direct}}, relayed)
		if id == "B" {
			peersA.connect(id, other, direct) // direct: B's IP seen
		} else {
			peersA.connect(id, other) // relay only
		}
		a.Connected(id)
	}
	heardAt := func(id string) time.Time {
		p, _ := findProxy(a, id)
		return p.LastHeard
	}
	eventually(t, 5*time.Second, "A heard B and C once", func() bool {
		return !heardAt("B").IsZero() && !heardAt("C").IsZero()
	})
	exchangedB := peersA.exchanges("B")
	later := heardAt("B").Add(3 * time.Second)
	peersA.hear("B", later)
	eventually(t, heartbeatInterval+2*time.Second, "B's traffic counted as hearing from it", func() bool {
		return heardAt("B").Equal(later)
	})
	if n := peersA.exchanges("B"); n != exchangedB {
		t.Errorf("B asked %d more times although its traffic showed it alive", n-exchangedB)
	}
	exchangedC := peersA.exchanges("C")
	eventually(t, 2*heartbeatInterval+2*time.Second, "quiet relayed C asked again", func() bool {
		return peersA.exchanges("C") > exchangedC
	})
}
