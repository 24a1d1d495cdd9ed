package locality

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
)

// Hints measured and published by proxies on some nodes are found by the
// nameserver's side on another node, through a real DSHT.
func TestHintsThroughDSHT(t *testing.T) {
	nodes := newDSHT(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	visitor := netip.MustParseAddr("203.0.113.77")
	network := netip.MustParsePrefix("203.0.113.0/24")

	for i, rtt := range map[int]time.Duration{1: ms(42), 2: ms(7)} {
		m, err := NewMeter(MeterConfig{Self: "proxy-" + string(rune('0'+i)), Logger: testLogger()}, nodes[i])
		if err != nil {
			t.Fatal(err)
		}
		m.Observe(visitor, rtt)
		if n, err := m.Publish(ctx); n != 1 {
			t.Fatalf("proxy %d published %d: %v", i, n, err)
		}
	}
	// Junk under the key (any member can put anything) is ignored.
	if err := nodes[3].Put(ctx, HintKey(network), []byte("not a hint"), time.Hour); err != nil {
		t.Fatal(err)
	}
	// proxy-1's older, longer-lived value wins over nothing but loses to
	// its own renewal: the value with the latest expiry counts.
	old, _ := Hint{Proxy: "proxy-1", RTT: ms(300)}.Marshal()
	if err := nodes[3].Put(ctx, HintKey(network), old, time.Minute); err != nil {
		t.Fatal(err)
	}

	h, err := NewHints(HintsConfig{Logger: testLogger()}, nodes[5])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got := h.RTTs(ctx, network)
	if len(got) != 2 || got["proxy-2"] != ms(7) || got["proxy-1"] != ms(40) {
		t.Fatalf("hints for %v: %v, want proxy-2 7ms, proxy-1 40ms", network, got)
	}
	// A client subnet inside the network finds the same hints (cached).
	if got := h.RTTs(ctx, netip.MustParsePrefix("203.0.113.0/24")); len(got) != 2 {
		t.Errorf("second lookup: %v", got)
	}
	if got := h.RTTs(ctx, netip.MustParsePrefix("192.168.1.0/24")); got != nil {
		t.Errorf("LAN network got hints %v", got)
	}
}

// gateGetter blocks every Get until released and counts calls.
type gateGetter struct {
	calls   atomic.Int64
	release chan struct{}
	mu      sync.Mutex
	vals    []dsht.Value
}

func (g *gateGetter) Get(ctx context.Context, _ dsht.ID, _ ...dsht.Option) ([]dsht.Value, error) {
	g.calls.Add(1)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.vals, nil
}

func (g *gateGetter) set(rtts map[string]time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.vals = nil
	for id, rtt := range rtts {
		b, _ := Hint{Proxy: id, RTT: rtt}.Marshal()
		g.vals = append(g.vals, dsht.Value{Data: b, Expires: time.Now().Add(time.Hour)})
	}
}

// The nameserver's deadline is kept whatever the DSHT does; a slow lookup
// finishes in the background and serves the next query.
func TestHintsAnswerWithinDeadline(t *testing.T) {
	clock := newClock()
	g := &gateGetter{release: make(chan struct{})}
	g.set(map[string]time.Duration{"p1": ms(5)})
	h, err := NewHints(HintsConfig{Clock: clock.Now, Logger: testLogger()}, g)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	network := netip.MustParsePrefix("203.0.113.0/24")
	short := func() map[string]time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		return h.RTTs(ctx, network)
	}
	if got := short(); got != nil {
		t.Fatalf("answer before the lookup finished: %v", got)
	}
	if got := short(); got != nil || g.calls.Load() != 1 {
		t.Fatalf("second query: %v, %d lookups (want the first one shared)", got, g.calls.Load())
	}
	close(g.release)
	eventually(t, 5*time.Second, "background lookup fills the cache", func() bool { return short()["p1"] == ms(5) })

	// Past Fresh, a query starts a refresh and, by its deadline, serves
	// what it had.
	g.release = make(chan struct{})
	g.set(map[string]time.Duration{"p1": ms(5), "p2": ms(9)})
	clock.Advance(61 * time.Second)
	if got := short(); len(got) != 1 || got["p1"] != ms(5) {
		t.Fatalf("stale answer while refreshing: %v", got)
	}
	close(g.release)
	eventually(t, 5*time.Second, "refresh completes", func() bool { return len(short()) == 2 })
	// Far past Stale with the DSHT silent, nothing is claimed.
	g.release = make(chan struct{})
	clock.Advance(time.Hour)
	if got := short(); got != nil {
		t.Errorf("expired hints served: %v", got)
	}
}

// Queries for many different networks cannot start more DSHT lookups than
// the rate limit allows.
func TestHintsLookupsAreRateLimited(t *testing.T) {
	g := &gateGetter{release: make(chan struct{})}
	close(g.release)
	h, err := NewHints(HintsConfig{Rate: 1, Burst: 3, Logger: testLogger()}, g)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		h.RTTs(ctx, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i), 0}), 24))
		cancel()
	}
	if n := g.calls.Load(); n < 3 || n > 5 {
		t.Errorf("%d lookups for 50 networks, want the burst of 3 (plus at most the refill)", n)
	}
}

func TestHintsAddOwnMeasurement(t *testing.T) {
	g := &gateGetter{release: make(chan struct{})}
	close(g.release)
	g.set(map[string]time.Duration{"p1": ms(30)})
	h, err := NewHints(HintsConfig{Self: "me", Logger: testLogger(), Local: func(n netip.Prefix) (time.Duration, bool) {
		return ms(3), n == netip.MustParsePrefix("203.0.113.0/24")
	}}, g)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	got := h.RTTs(context.Background(), netip.MustParsePrefix("203.0.113.0/24"))
	if len(got) != 2 || got["me"] != ms(3) || got["p1"] != ms(30) {
		t.Errorf("got %v", got)
	}
	// The cached map is not changed by the merge.
	if got := h.RTTs(context.Background(), netip.MustParsePrefix("203.0.113.0/24")); len(got) != 2 {
		t.Errorf("second call %v", got)
	}
}

// End to end at the nameserver: hints measured by proxies reach the answer
// for a visitor's client subnet, nearest proxy first; without hints for
// that network, the answering node comes first.
func TestNameserverPrefersHintedProxies(t *testing.T) {
	nodes := newDSHT(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	now := time.Now()
	d := NewDirectory(dnsserver.Proxy{ID: "self", Addrs: addrs("198.51.100.10"), Public: true, LastHeard: now,
		Cluster: [3]string{"r1", "c1", ""}})
	for i := 1; i <= 4; i++ {
		id := "proxy-" + string(rune('0'+i))
		d.Heard(id, Announcement{Addrs: []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})}, Public: true,
			Cluster: [3]string{"r2", "c1", ""}}, addrs("198.51.100.10"), now)
	}
	visitor := netip.MustParseAddr("203.0.113.50")
	// proxy-3 and proxy-1 are near the visitor, proxy-4 far.
	for i, rtt := range map[int]time.Duration{3: ms(4), 1: ms(25), 4: ms(250)} {
		m, err := NewMeter(MeterConfig{Self: "proxy-" + string(rune('0'+i)), Logger: testLogger()}, nodes[i])
		if err != nil {
			t.Fatal(err)
		}
		m.Observe(visitor, rtt)
		if n, err := m.Publish(ctx); n != 1 {
			t.Fatalf("publish: %v", err)
		}
	}
	h, err := NewHints(HintsConfig{Logger: testLogger()}, nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := startDNS(t, d, dnsserver.WithHints(h))
	// Warm the lookup so the nameserver's 200 ms budget is not what is
	// being tested here.
	h.RTTs(ctx, netip.MustParsePrefix("203.0.113.0/24"))

	ecs := netip.MustParsePrefix("203.0.113.0/24")
	for range 4 {
		got := query(t, srv, &ecs)
		want := []string{"198.51.100.13", "198.51.100.11", "198.51.100.14"}
		if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Fatalf("answer for %v: %v, want nearest first %v", ecs, got, want)
		}
	}
	other := netip.MustParsePrefix("192.0.2.0/24")
	if got := query(t, srv, &other); len(got) == 0 || got[0] != "198.51.100.10" {
		t.Errorf("answer for a network without hints: %v, want this node first", got)
	}
}
