package locality

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/shaping"
)

// pausable is a Locator's budget as far as its announcement goes: paused
// or not.
type pausable struct{ paused atomic.Bool }

func (p *pausable) headroom() shaping.Headroom {
	return shaping.Headroom{Paused: p.paused.Load(), SpareRate: -1, QuotaLeft: -1}
}

// heldPeers is memPeers whose PeerInfo can be held after it has read the
// peer's announcement: a reply on its way while the peer changes.
type heldPeers struct {
	*memPeers
	mu      sync.Mutex
	hold    chan struct{} // non-nil: the next PeerInfo waits for it to close
	holding chan struct{} // closed once that PeerInfo has read the announcement
}

func (h *heldPeers) holdNext() (holding, release chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold, h.holding = make(chan struct{}), make(chan struct{})
	return h.holding, h.hold
}

func (h *heldPeers) PeerInfo(ctx context.Context, id string) ([]byte, time.Duration, error) {
	data, rtt, err := h.memPeers.PeerInfo(ctx, id)
	h.mu.Lock()
	hold, holding := h.hold, h.holding
	h.hold, h.holding = nil, nil
	h.mu.Unlock()
	if hold != nil {
		close(holding)
		<-hold
	}
	return data, rtt, err
}

// A change notice that arrives while this node is already asking that
// peer (the reply, read before the change, still on its way) is not lost:
// the peer is asked again once the exchange ends, so a volunteer who
// pauses leaves this node's answers within a round trip, not at the next
// periodic refresh minutes later. (CI saw a paused node named for 20 s.)
func TestChangeNoticeDuringAnExchangeIsNotLost(t *testing.T) {
	var b pausable
	addrB := netip.MustParseAddr("192.0.2.7")
	nodeB := newTestLocator(t, LocatorConfig{Self: "B", Headroom: b.headroom, Advertise: []netip.Addr{addrB}}, newMemPeers())
	peersA := &heldPeers{memPeers: newMemPeers()}
	a := newTestLocator(t, LocatorConfig{Self: "A", DNSListen: "127.0.0.1:5354", Nameserver: "auto"}, peersA)
	peersA.connect("B", nodeB, addrB) // directly: no periodic asking
	a.Connected("B")
	eventually(t, 5*time.Second, "A lists B", func() bool { _, ok := findProxy(a, "B"); return ok })
	eventually(t, 5*time.Second, "A done asking B", func() bool { return !a.asking("B") })

	holding, release := peersA.holdNext()
	a.Connected("B") // a second connection: A asks again, and the reply is held
	<-holding
	b.paused.Store(true)
	nodeB.Refresh()
	a.Connected("B") // B's change notice reaches A mid-exchange
	close(release)
	eventually(t, heartbeatInterval/2, "A sees B paused", func() bool {
		p, ok := findProxy(a, "B")
		return ok && p.Paused
	})
}

// A change notice never goes out before the announcement it announces:
// a peer that asks back at once gets the new one.
func TestNoticeFollowsTheAnnouncement(t *testing.T) {
	var b pausable
	var nodeB atomic.Pointer[Locator]
	var mu sync.Mutex
	var sawPaused []bool
	peersB := &noticeReader{memPeers: newMemPeers(), read: func() {
		ann, err := ParseAnnouncement(nodeB.Load().Announcement("A"))
		mu.Lock()
		defer mu.Unlock()
		sawPaused = append(sawPaused, err == nil && ann.Headroom.Paused)
	}}
	// A is connected from the start, so B's first notice (its startup)
	// is counted before the rounds begin.
	peersB.connect("A", newTestLocator(t, LocatorConfig{Self: "A"}, newMemPeers()))
	l, err := NewLocator(LocatorConfig{Self: "B", Headroom: b.headroom, Logger: testLogger()}, peersB, newDSHT(t, 1)[0])
	if err != nil {
		t.Fatal(err)
	}
	nodeB.Store(l)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	l.Start(ctx, &wg)
	t.Cleanup(func() { cancel(); wg.Wait() })
	notices := func() int { mu.Lock(); defer mu.Unlock(); return len(sawPaused) }
	eventually(t, 5*time.Second, "B's startup notice", func() bool { return notices() == 1 })
	for round := range 300 {
		before := notices()
		b.paused.Store(round%2 == 0)
		l.Refresh()
		eventually(t, 5*time.Second, "the change notice sent", func() bool { return notices() > before })
		mu.Lock()
		got := sawPaused[len(sawPaused)-1]
		mu.Unlock()
		if want := round%2 == 0; got != want {
			t.Fatalf("round %d: the notice of paused=%v went out while the announcement said paused=%v", round, want, got)
		}
	}
}

// noticeReader is memPeers that reads this node's announcement as each
// change notice goes out, as a peer asking back at once would.
type noticeReader struct {
	*memPeers
	read func()
}

func (n *noticeReader) NotifyInfoChanged(ctx context.Context, id string) error {
	n.read()
	return n.memPeers.NotifyInfoChanged(ctx, id)
}

// Refreshes running at once (the budget's and the settings' subscriptions,
// the heartbeat's sweep) leave the newest announcement in force, never
// one computed earlier and stored later: here the first refresh reads the
// budget (serving), the volunteer pauses, a second refresh runs, and only
// then does the first one go on.
func TestConcurrentRefreshesKeepTheNewest(t *testing.T) {
	var b pausable
	var first atomic.Bool
	read, proceed := make(chan struct{}), make(chan struct{})
	headroom := func() shaping.Headroom {
		h := b.headroom()
		if first.CompareAndSwap(true, false) {
			close(read)
			<-proceed
		}
		return h
	}
	nodeB := newTestLocator(t, LocatorConfig{Self: "B", Headroom: headroom}, newMemPeers())
	first.Store(true)
	firstDone, secondDone := make(chan struct{}), make(chan struct{})
	go func() { nodeB.Refresh(); close(firstDone) }()
	<-read
	b.paused.Store(true)
	go func() { nodeB.Refresh(); close(secondDone) }()
	// Give the second refresh the time to finish if nothing holds it back
	// (the bug); with refreshes one at a time it waits for the first.
	select {
	case <-secondDone:
	case <-time.After(100 * time.Millisecond):
	}
	close(proceed)
	<-firstDone
	<-secondDone
	ann, err := ParseAnnouncement(nodeB.Announcement("A"))
	if err != nil {
		t.Fatal(err)
	}
	self, _ := findProxy(nodeB, "B")
	if !ann.Headroom.Paused || !self.Paused {
		t.Errorf("after both refreshes the announcement says paused=%v, the own entry paused=%v; the volunteer paused", ann.Headroom.Paused, self.Paused)
	}
}

// asking says whether the heartbeat is exchanging with peer id now.
func (l *Locator) asking(id string) bool { return l.sched.isBusy(id) }

// A burst of connections and change notices larger than any buffer (a
// crowd's nodes all changing at once) gets every peer asked.
func TestEveryAskedPeerIsAsked(t *testing.T) {
	peersA := newMemPeers()
	a := newTestLocator(t, LocatorConfig{Self: "A", DNSListen: "127.0.0.1:5354", Nameserver: "auto"}, peersA)
	const n = 200
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("P%03d", i)
		other := newTestLocator(t, LocatorConfig{Self: ids[i], Advertise: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}}, newMemPeers())
		peersA.connect(ids[i], other, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	for _, id := range ids {
		a.Connected(id)
	}
	eventually(t, heartbeatInterval/2, "every peer asked", func() bool {
		for _, id := range ids {
			if peersA.exchanges(id) == 0 {
				return false
			}
		}
		return true
	})
}
