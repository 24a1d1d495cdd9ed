package dshtsim_test

import (
	"bytes"
	"crypto/sha256"
	"reflect"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/dsht/dshtsim"
)

// simSize is the network the figures are asserted on; -short (the
// race-detector run) uses a smaller one.
func simSize() int {
	if testing.Short() {
		return 100
	}
	return 200
}

const beta = 12 // dsht's default LoadedRate

func build(t *testing.T, opts dshtsim.Options) *dshtsim.Sim {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = simSize()
	}
	if opts.Topology.Regions == 0 {
		opts.Topology = dshtsim.DefaultTopology()
	}
	s, err := dshtsim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Bootstrap(2*time.Minute, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	return s
}

func indirect(on bool) func(int, *dsht.Config) {
	return func(_ int, c *dsht.Config) { c.IndirectRouting = on }
}

// TestSimulatedNetwork runs the checks on one network with planted
// regions (level 2) and continents (level 1); crashing comes last.
func TestSimulatedNetwork(t *testing.T) {
	s := build(t, dshtsim.Options{Seed: 1})
	keys := simSize()

	t.Run("clusters found match those planted", func(t *testing.T) {
		for l := 2; l >= 1; l-- {
			c := s.Clusters(l)
			t.Logf("level %d: planted %d found %d sizes %v purity %.3f coverage %.3f", l, c.Planted, c.Found, c.Sizes, c.Purity, c.Coverage)
			if c.Purity != 1 || c.Coverage < 0.95 {
				t.Errorf("level %d: purity %.3f coverage %.3f", l, c.Purity, c.Coverage)
			}
		}
	})

	t.Run("every get after a put succeeds", func(t *testing.T) {
		st, err := s.PutThenGet(keys, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("get_ok %d/%d, hops p50 %.0f p99 %.0f, latency p50 %.0fms p99 %.0fms, found at levels %v",
			st.GetOK, st.Gets, st.Hops.P50, st.Hops.P99, st.Latency.P50, st.Latency.P99, st.FoundAt)
		if st.PutOK != st.Puts || st.GetOK != st.Gets {
			t.Fatalf("puts %d/%d, gets %d/%d", st.PutOK, st.Puts, st.GetOK, st.Gets)
		}
	})

	t.Run("a get finds a copy in its own level-2 cluster without leaving it", func(t *testing.T) {
		for k := range 10 {
			a := k * 7 % s.Len()
			b := (a + 5*(k+1)) % s.Len() // same region: regions are i % 5
			if s.Region(a) != s.Region(b) || a == b {
				t.Fatalf("bad pair %d %d", a, b)
			}
			level, stayed, err := s.LocalGet(a, b, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if level != 2 || !stayed {
				t.Errorf("node %d getting node %d's key: answered at level %d, stayed in region: %v", b, a, level, stayed)
			}
		}
	})

	t.Run("a hot key leaves the busiest node within the leakage bound", func(t *testing.T) {
		h, err := s.HotKey(s.Live(), time.Hour, beta)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d putters: busiest node stored %d (level %d), bound %d, %d level-0 holders", h.Putters, h.Busiest, h.BusiestLevel, h.Bound, h.Holders)
		if h.PutOK != h.Putters || h.Busiest > h.Bound {
			t.Fatalf("put ok %d/%d, busiest %d > bound %d", h.PutOK, h.Putters, h.Busiest, h.Bound)
		}
	})

	t.Run("put+get lets one node per cluster fetch a new key", func(t *testing.T) {
		r, err := s.Race(s.Live()[:30], 200*time.Millisecond, 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("30 nodes within 200ms: origin fetches get-then-put %d, put+get %d", r.OriginGetPut, r.OriginPutGet)
		regions := dshtsim.DefaultTopology().Regions
		if r.OriginPutGet < 1 || r.OriginPutGet > regions || r.OriginPutGet > r.OriginGetPut {
			t.Fatalf("put+get origin fetches %d (get-then-put %d, %d regions)", r.OriginPutGet, r.OriginGetPut, regions)
		}
	})

	t.Run("with 10% of nodes crashed at least 99% of gets succeed", func(t *testing.T) {
		crashed := s.CrashFraction(0.10)
		st, err := s.PutThenGet(keys, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%d crashed: get_ok %d/%d, rpcs/get %.1f, latency p99 %.0fms", len(crashed), st.GetOK, st.Gets, st.RPCsPerGet, st.Latency.P99)
		if st.OK() < 0.99 {
			t.Fatalf("get_ok %.4f", st.OK())
		}
	})
}

func TestNonTransitiveLinks(t *testing.T) {
	var ok [2]float64
	for k, on := range []bool{true, false} {
		s := build(t, dshtsim.Options{Seed: 2, NonTransitive: 0.03, Configure: indirect(on)})
		st, err := s.PutThenGet(simSize(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		ok[k] = st.OK()
		t.Logf("3%% of pairs blocked, indirect routing %v: get_ok %d/%d", on, st.GetOK, st.Gets)
	}
	if ok[0] < 0.995 {
		t.Fatalf("with indirect routing get_ok %.4f, want >= 0.995", ok[0])
	}
}

// Without sloppy storage (never loaded) the root takes every put: the
// measurement behind the leakage-bound check does see overload.
func TestHotKeyWithoutSloppyStorage(t *testing.T) {
	s := build(t, dshtsim.Options{Seed: 1, Configure: func(_ int, c *dsht.Config) { c.LoadedRate = 1 << 30 }})
	h, err := s.HotKey(s.Live(), time.Hour, beta)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("busiest node stored %d of %d, bound %d", h.Busiest, h.Putters, h.Bound)
	if h.Busiest <= h.Bound {
		t.Fatalf("busiest %d within the bound %d even without sloppy storage", h.Busiest, h.Bound)
	}
}

func TestSameSeedSameRun(t *testing.T) {
	run := func(seed uint64) (dshtsim.GetStats, uint64, time.Duration) {
		s, err := dshtsim.New(dshtsim.Options{Seed: seed, Nodes: 60, Topology: dshtsim.DefaultTopology(), Loss: 0.01, NonTransitive: 0.03})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Bootstrap(time.Minute, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
		st, err := s.PutThenGet(40, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return st, s.Messages, s.Elapsed()
	}
	a, am, ae := run(7)
	b, bm, be := run(7)
	if !reflect.DeepEqual(a, b) || am != bm || ae != be {
		t.Fatalf("same seed, different runs: %d vs %d messages, %v vs %v", am, bm, ae, be)
	}
	if _, cm, _ := run(8); cm == am {
		t.Fatalf("different seeds, same %d messages", cm)
	}
}

func TestSimNetworkModel(t *testing.T) {
	s, err := dshtsim.New(dshtsim.Options{Seed: 3, Nodes: 400, Topology: dshtsim.DefaultTopology(), NonTransitive: 0.03})
	if err != nil {
		t.Fatal(err)
	}
	blocked, pairs := 0, 0
	for i := 0; i < s.Len(); i++ {
		for j := i + 1; j < s.Len(); j++ {
			pairs++
			if s.Blocked(i, j) {
				blocked++
			}
			if s.Blocked(i, j) != s.Blocked(j, i) || s.RTT(i, j) != s.RTT(j, i) {
				t.Fatalf("link %d-%d not symmetric", i, j)
			}
			rtt := s.RTT(i, j)
			switch {
			case s.Region(i) == s.Region(j):
				if rtt >= 20*time.Millisecond {
					t.Fatalf("same region RTT %v", rtt)
				}
			case s.Continent(i) == s.Continent(j):
				if rtt < 20*time.Millisecond || rtt >= 60*time.Millisecond {
					t.Fatalf("same continent RTT %v", rtt)
				}
			default:
				if rtt < 60*time.Millisecond {
					t.Fatalf("intercontinental RTT %v", rtt)
				}
			}
		}
	}
	if f := float64(blocked) / float64(pairs); f < 0.025 || f > 0.035 {
		t.Fatalf("%.4f of pairs blocked, want 0.03", f)
	}
	if s.Blocked(5, 5) {
		t.Fatal("a node cannot talk to itself")
	}
}

// A node that saw a node fail does not query it again on the strength of
// older claims: after the key's root crashes and this node fails to reach
// it, the root's neighbours still list it, but the second get leaves it
// alone.
func TestOwnFailureBeatsOlderClaims(t *testing.T) {
	var from, to int
	var counting bool
	var sent int
	s := build(t, dshtsim.Options{Seed: 4, Nodes: 100, Configure: indirect(false),
		Trace: func(f, d int, _ *dsht.Request) {
			if counting && f == from && d == to {
				sent++
			}
		}})
	key := dshtsim.KeyID(4, 4)
	kk := sha256.Sum256(key[:])
	root := 0
	var best [32]byte
	for i := 0; i < s.Len(); i++ {
		id := s.Info(i).ID
		d := sha256.Sum256(id[:])
		for j := range d {
			d[j] ^= kk[j]
		}
		if i == 0 || bytes.Compare(d[:], best[:]) < 0 {
			root, best = i, d
		}
	}
	from, to = (root+1)%s.Len(), root
	s.Crash(root)
	listed := 0
	for i := 0; i < s.Len(); i++ {
		for _, e := range s.Node(i).Status().Levels[0].Table {
			if e.Node.ID == s.Info(root).ID && !s.Crashed(i) {
				listed++
			}
		}
	}
	if listed == 0 {
		t.Fatal("no node lists the crashed root; the test needs claims about it")
	}
	get := func() {
		b := s.Batch()
		b.Get(0, from, key, func([]dsht.Value, error) {}, dsht.Levels(0, 0))
		if err := b.Wait(time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	counting = true
	get()
	if sent == 0 {
		t.Fatalf("the first get never tried the root (listed by %d nodes)", listed)
	}
	sent = 0
	get()
	if sent != 0 {
		t.Fatalf("the second get sent %d requests to the root it saw fail", sent)
	}
}

// BenchmarkSimulatedGet measures the simulator's cost of one get on a
// 200-node network (wall time per operation, not virtual time).
func BenchmarkSimulatedGet(b *testing.B) {
	s, err := dshtsim.New(dshtsim.Options{Seed: 1, Nodes: 200, Topology: dshtsim.DefaultTopology()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Bootstrap(time.Minute, 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	key := dshtsim.KeyID(1, 1)
	bt := s.Batch()
	bt.Put(0, 0, key, []byte("v"), time.Hour, func(error) {})
	if err := bt.Wait(time.Hour); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt := s.Batch()
		bt.Get(0, (i*7+1)%s.Len(), dshtsim.KeyID(2, i), func([]dsht.Value, error) {})
		if err := bt.Wait(time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
