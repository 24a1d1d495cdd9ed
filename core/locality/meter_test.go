package locality

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
)

// recPutter records puts and fails while fail is set.
type recPutter struct {
	mu   sync.Mutex
	puts map[dsht.ID][]string
	fail bool
}

func (p *recPutter) Put(_ context.Context, key dsht.ID, value []byte, _ time.Duration, _ ...dsht.Option) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		return dsht.ErrNoStore
	}
	if p.puts == nil {
		p.puts = map[dsht.ID][]string{}
	}
	p.puts[key] = append(p.puts[key], string(value))
	return nil
}

func (p *recPutter) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, v := range p.puts {
		n += len(v)
	}
	return n
}

func (p *recPutter) last(n netip.Prefix) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	vs := p.puts[HintKey(n)]
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestMeterPublishesWhatVisitorsShowed(t *testing.T) {
	clock := newClock()
	put := &recPutter{}
	m, err := NewMeter(MeterConfig{Self: peerA, Clock: clock.Now, Logger: testLogger()}, put)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	netA, netB := netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.0/24")
	m.Observe(netip.MustParseAddr("203.0.113.7"), ms(34))
	m.Observe(netip.MustParseAddr("203.0.113.200"), ms(21)) // same /24: the smallest counts
	m.Observe(netip.MustParseAddr("198.51.100.1"), ms(80))
	m.Observe(netip.MustParseAddr("10.0.0.1"), ms(1))  // LAN: not a hint network
	m.Observe(netip.MustParseAddr("127.0.0.1"), ms(1)) // loopback
	m.Observe(netip.MustParseAddr("203.0.113.8"), 0)   // no sample
	if n := m.Networks(); n != 2 {
		t.Fatalf("%d networks remembered, want 2", n)
	}
	if rtt, ok := m.RTT(netA); !ok || rtt != ms(20) {
		t.Errorf("own RTT for %v: %v %v", netA, rtt, ok)
	}

	if n, err := m.Publish(ctx); n != 2 || err != nil {
		t.Fatalf("first round stored %d (%v), want 2", n, err)
	}
	if got := put.last(netA); got != "coral-hint/1 "+peerA+" 20" {
		t.Errorf("hint for %v: %q", netA, got)
	}
	if got := put.last(netB); got != "coral-hint/1 "+peerA+" 80" {
		t.Errorf("hint for %v: %q", netB, got)
	}
	// Nothing new: nothing to publish, but the published value stays ours.
	if n, _ := m.Publish(ctx); n != 0 {
		t.Errorf("idle round stored %d", n)
	}
	if rtt, ok := m.RTT(netB); !ok || rtt != ms(80) {
		t.Errorf("own RTT after publishing: %v %v", rtt, ok)
	}
	// A similar sample does not cause a new put before renewal time...
	m.Observe(netip.MustParseAddr("203.0.113.9"), ms(22))
	if n, _ := m.Publish(ctx); n != 0 {
		t.Errorf("unchanged network republished early (%d)", n)
	}
	// ...but is renewed once half the TTL has passed.
	clock.Advance(31 * time.Minute)
	if n, _ := m.Publish(ctx); n != 1 {
		t.Errorf("renewal round stored %d, want 1 (only the network still visited)", n)
	}
	// A big change goes out at once.
	m.Observe(netip.MustParseAddr("198.51.100.3"), ms(200))
	if n, _ := m.Publish(ctx); n != 1 || put.last(netB) != "coral-hint/1 "+peerA+" 200" {
		t.Errorf("changed RTT: stored %d, last %q", n, put.last(netB))
	}
	// Once the hint has expired and no visitor came, the node claims nothing.
	clock.Advance(2 * time.Hour)
	if _, ok := m.RTT(netB); ok {
		t.Error("own RTT survives its TTL without visitors")
	}
}

func TestMeterRetriesAndPrioritises(t *testing.T) {
	clock := newClock()
	put := &recPutter{fail: true}
	m, err := NewMeter(MeterConfig{Self: peerA, MaxPuts: 1, Clock: clock.Now, Logger: testLogger()}, put)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Observe(netip.MustParseAddr("203.0.113.7"), ms(30))
	if n, err := m.Publish(ctx); n != 0 || !errors.Is(err, dsht.ErrNoStore) {
		t.Fatalf("failing DSHT: stored %d, err %v", n, err)
	}
	put.mu.Lock()
	put.fail = false
	put.mu.Unlock()
	if n, _ := m.Publish(ctx); n != 1 {
		t.Fatalf("retry stored %d", n)
	}
	// With room for one put, a network never published goes before a
	// renewal, however busy the renewed one is.
	clock.Advance(31 * time.Minute)
	for range 5 {
		m.Observe(netip.MustParseAddr("203.0.113.7"), ms(30))
	}
	m.Observe(netip.MustParseAddr("192.0.2.1"), ms(50))
	if n, _ := m.Publish(ctx); n != 1 || put.last(netip.MustParsePrefix("192.0.2.0/24")) == "" {
		t.Fatalf("new network not published first (stored %d)", n)
	}
	if n, _ := m.Publish(ctx); n != 1 || put.count() != 3 {
		t.Fatalf("renewal not published next (stored %d, total %d)", n, put.count())
	}
}

func TestMeterForgetsOldNetworks(t *testing.T) {
	m, err := NewMeter(MeterConfig{Self: peerA, MaxNetworks: 3, Logger: testLogger()}, &recPutter{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		m.Observe(netip.AddrFrom4([4]byte{198, 51, byte(i), 1}), ms(10))
	}
	if m.Networks() != 3 {
		t.Errorf("%d networks, want 3", m.Networks())
	}
	if _, ok := m.RTT(netip.MustParsePrefix("198.51.9.0/24")); !ok {
		t.Error("most recent network forgotten")
	}
	if _, ok := m.RTT(netip.MustParsePrefix("198.51.0.0/24")); ok {
		t.Error("oldest network kept")
	}
	if _, err := NewMeter(MeterConfig{Self: "bad id"}, &recPutter{}); err == nil {
		t.Error("meter with an invalid ID")
	}
}
