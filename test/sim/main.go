// Command sim runs Coral's hierarchical sloppy DHT on a simulated network of
// N nodes in virtual time, with planted latency clusters, and prints how it
// does: hops and lookup latency per level, success under non-transitive
// links and crashes (indirect routing on and off), the busiest node's load
// for a hot key, put vs put+get origin fetches, and clusters found against
// clusters planted. The last line is a key=value summary.
//
//	go run ./test/sim -nodes 1000
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/dsht/dshtsim"
)

type params struct {
	nodes, keys, hot, race int
	seed                   uint64
	topo                   dshtsim.Topology
	loss, nontransitive    float64
	crash                  float64
	spread, settle, ttl    time.Duration
	raceSpread             time.Duration
	baseline, off          bool
	peerCache              int
	copies                 int
	cpuProfile, memProfile string
	idle                   time.Duration
	gcPercent              int
	memLimit               int64
	outlooks               bool
	parallel               int
}

func main() {
	var p params
	p.topo = dshtsim.DefaultTopology()
	fs := flag.NewFlagSet("sim", flag.ExitOnError)
	fs.IntVar(&p.nodes, "nodes", 1000, "number of nodes")
	fs.IntVar(&p.keys, "keys", 0, "keys put and got per scenario (default: nodes, at most 2000)")
	fs.IntVar(&p.hot, "hot", 0, "nodes putting one hot key at once (default: all, at most 1000)")
	fs.IntVar(&p.race, "race", 50, "nodes asking for a new key at about the same time (put vs put+get)")
	fs.Uint64Var(&p.seed, "seed", 1, "random seed (same seed, same run)")
	fs.IntVar(&p.topo.Regions, "regions", p.topo.Regions, "planted regions (level-2 clusters)")
	fs.IntVar(&p.topo.Continents, "continents", p.topo.Continents, "planted continents (level-1 clusters)")
	fs.DurationVar(&p.topo.IntraRegion, "rtt-region", p.topo.IntraRegion, "RTT inside a region")
	fs.DurationVar(&p.topo.IntraContinent, "rtt-continent", p.topo.IntraContinent, "RTT between regions of a continent")
	fs.DurationVar(&p.topo.InterContinent, "rtt-inter", p.topo.InterContinent, "RTT across continents")
	fs.Float64Var(&p.topo.Jitter, "jitter", p.topo.Jitter, "per-link RTT jitter (fraction)")
	fs.Float64Var(&p.loss, "loss", 0, "message loss in every scenario")
	fs.Float64Var(&p.nontransitive, "nontransitive", 0.03, "fraction of node pairs that cannot talk directly")
	fs.Float64Var(&p.crash, "crash", 0.10, "fraction of nodes crashed")
	fs.DurationVar(&p.spread, "join", 2*time.Minute, "virtual time over which nodes join")
	fs.DurationVar(&p.settle, "settle", 10*time.Minute, "virtual time after joining before measuring")
	fs.DurationVar(&p.ttl, "ttl", time.Hour, "value TTL")
	fs.DurationVar(&p.raceSpread, "race-within", 200*time.Millisecond, "the race's nodes ask within this time")
	fs.BoolVar(&p.baseline, "baseline", true, "also run the hot key without sloppy storage (default: up to 2,000 nodes)")
	fs.BoolVar(&p.off, "off", true, "also run the faults with indirect routing off (default: up to 2,000 nodes)")
	fs.IntVar(&p.peerCache, "peer-cache", 0, "nodes' PeerCacheSize (0: dsht's default up to 2,000 nodes, 384 above); smaller saves memory in large runs")
	fs.IntVar(&p.copies, "copies", 0, "nodes' Copies, values stored per level per put (0: dsht's default)")
	fs.DurationVar(&p.idle, "idle", 2*time.Minute, "virtual time the built network idles while its maintenance traffic is counted (0: skip)")
	fs.StringVar(&p.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) to this file")
	fs.StringVar(&p.memProfile, "memprofile", "", "write a heap profile (pprof) to this file after the first network is built")
	fs.IntVar(&p.gcPercent, "gc-percent", 200, "GOGC for the run: a large run spends a quarter of its CPU in the collector at Go's 100")
	fs.Int64Var(&p.memLimit, "mem-limit-mib", 7<<10, "soft memory limit (MiB): the collector works harder near it, so -gc-percent cannot take a run past it")
	fs.IntVar(&p.parallel, "parallel", 2, "scenarios (each its own network) simulated at once, one core each (default: 1 above 2,000 nodes)")
	fs.BoolVar(&p.outlooks, "outlooks", false, "print what each found cluster's members see of the others (why clusters stay apart)")
	_ = fs.Parse(os.Args[1:])
	largeDefaults(fs, &p)
	debug.SetGCPercent(p.gcPercent)
	debug.SetMemoryLimit(p.memLimit << 20)
	if p.keys == 0 {
		p.keys = min(p.nodes, 2000)
	}
	if p.hot == 0 {
		p.hot = min(p.nodes, 1000)
	}
	if p.cpuProfile != "" {
		f, err := os.Create(p.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "sim:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(os.Stdout, p); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "sim:", err)
		os.Exit(1)
	}
}

// largeNetwork is the size above which the defaults change so that a run
// fits one machine (the 10,000-node run: 20 minutes, 8 GiB): the
// comparison scenarios (no sloppy storage, indirect routing off) are left
// out, the peer cache shrinks from dsht's 1,024 to 384 entries (it is most
// of a simulated node's memory), and the scenarios run one at a time (two
// 10,000-node networks at once passed 7 GiB while still joining).
const largeNetwork = 2000

// largeDefaults applies largeNetwork's defaults to flags not given.
func largeDefaults(fs *flag.FlagSet, p *params) {
	if p.nodes <= largeNetwork {
		return
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["baseline"] {
		p.baseline = false
	}
	if !set["off"] {
		p.off = false
	}
	if !set["peer-cache"] {
		p.peerCache = 384
	}
	if !set["parallel"] {
		p.parallel = 1
	}
}

func build(w io.Writer, p params, name string, nontransitive float64, configure func(int, *dsht.Config)) (*dshtsim.Sim, error) {
	start := time.Now()
	s, err := dshtsim.New(dshtsim.Options{Seed: p.seed, Nodes: p.nodes, Topology: p.topo, Loss: p.loss,
		NonTransitive: nontransitive, Configure: withCache(p, configure)})
	if err != nil {
		return nil, err
	}
	if err := s.Bootstrap(p.spread, p.settle); err != nil {
		return nil, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if p.memProfile != "" && name == "no faults" {
		if f, err := os.Create(p.memProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	fmt.Fprintf(w, "[%s] built %d nodes: %.1fs wall, %v virtual, %d messages, process heap %d MiB\n",
		name, p.nodes, time.Since(start).Seconds(), s.Elapsed().Round(time.Second), s.Messages, ms.HeapAlloc>>20)
	fmt.Fprintf(w, "  requests per node by operation:")
	for op, c := range s.RequestsByOp {
		if c > 0 {
			fmt.Fprintf(w, " %v=%.0f", dsht.Op(op), float64(c)/float64(p.nodes))
		}
	}
	fmt.Fprintln(w)
	return s, nil
}

func indirect(on bool) func(int, *dsht.Config) {
	return func(_ int, c *dsht.Config) { c.IndirectRouting = on }
}

// withCache applies -peer-cache and -copies on top of a scenario's
// configuration.
func withCache(p params, f func(int, *dsht.Config)) func(int, *dsht.Config) {
	return func(i int, c *dsht.Config) {
		f(i, c)
		if p.peerCache > 0 {
			c.PeerCacheSize = p.peerCache
		}
		if p.copies > 0 {
			c.Copies = p.copies
		}
	}
}

func printGets(w io.Writer, label string, st dshtsim.GetStats) {
	fmt.Fprintf(w, "%s: get_ok=%.4f (%d/%d) put_ok=%d/%d rpcs/get=%.1f hops p50=%.0f p99=%.0f latency p50=%.0fms p99=%.0fms\n",
		label, st.OK(), st.GetOK, st.Gets, st.PutOK, st.Puts, st.RPCsPerGet, st.Hops.P50, st.Hops.P99, st.Latency.P50, st.Latency.P99)
}

type summary struct {
	base, crashOn, crashOff dshtsim.GetStats
	crashAfterPut           dshtsim.GetStats
	ntOK                    [2]float64
	hot                     dshtsim.HotKeyStats
	race                    dshtsim.RaceStats
	clusters                []dshtsim.ClusterStats // most local level first
}

func run(w io.Writer, p params) error {
	t0 := time.Now()
	fmt.Fprintf(w, "topology: %d nodes, %d regions in %d continents, RTT %v in a region, %v between regions of a continent, %v across; jitter %.0f%%, loss %.1f%%\n",
		p.nodes, p.topo.Regions, p.topo.Continents, p.topo.IntraRegion, p.topo.IntraContinent, p.topo.InterContinent, 100*p.topo.Jitter, 100*p.loss)
	fmt.Fprintf(w, "scenarios: no-sloppy baseline %v, indirect routing off %v; peer cache %s\n", p.baseline, p.off, peerCacheName(p.peerCache))
	var sum summary
	// Each scenario builds its own network and drops it when done; up to
	// p.parallel of them run at once (one goroutine each: a simulation is
	// single-threaded), so a large run needs that many networks' memory.
	scenarios := []func(io.Writer) error{func(w io.Writer) error { return noFaults(w, p, &sum) }}
	if p.baseline {
		scenarios = append(scenarios, func(w io.Writer) error { return noSloppy(w, p) })
	}
	for k, on := range []bool{true, false} {
		if !on && !p.off {
			continue
		}
		scenarios = append(scenarios, func(w io.Writer) error {
			ok, err := nonTransitive(w, p, on)
			sum.ntOK[k] = ok
			return err
		})
	}
	if p.off {
		scenarios = append(scenarios, func(w io.Writer) error {
			st, err := crashOff(w, p)
			sum.crashOff = st
			return err
		})
	}
	if err := runAll(w, scenarios, p.parallel); err != nil {
		return err
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	fmt.Fprintf(w, "wall time %.1fs, CPU time %.1fs, max RSS %d MiB, %d scenarios %d at a time\n",
		time.Since(t0).Seconds(), cpu.Seconds(), ru.Maxrss>>10, len(scenarios), max(1, p.parallel))
	// Scenarios left out print "-", not a zero that reads as failure.
	offNT, offCrash := "-", "-"
	if p.off {
		offNT, offCrash = fmt.Sprintf("%.4f", sum.ntOK[1]), fmt.Sprintf("%.4f", sum.crashOff.OK())
	}
	fmt.Fprintf(w, "nodes=%d get_ok=%.4f nontransitive_ok=%.4f crash_ok=%.4f hops_p50=%.0f hops_p99=%.0f latency_p50_ms=%.0f latency_p99_ms=%.0f nontransitive_off_ok=%s crash_off_ok=%s hot_busiest=%d hot_bound=%d race_getput=%d race_putget=%d crash_after_put_ok=%.4f%s\n",
		p.nodes, sum.base.OK(), sum.ntOK[0], sum.crashOn.OK(), sum.base.Hops.P50, sum.base.Hops.P99,
		sum.base.Latency.P50, sum.base.Latency.P99, offNT, offCrash, sum.hot.Busiest, sum.hot.Bound,
		sum.race.OriginGetPut, sum.race.OriginPutGet, sum.crashAfterPut.OK(), clusterFields(sum.clusters))
	return nil
}

// clusterFields is the summary's clusters_l<level>=found/planted fields.
func clusterFields(cs []dshtsim.ClusterStats) string {
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, " clusters_l%d=%d/%d", c.Level, c.Found, c.Planted)
	}
	return b.String()
}

func peerCacheName(n int) string {
	if n == 0 {
		return fmt.Sprintf("%d (dsht's default)", dsht.DefaultConfig(dsht.NodeInfo{}).PeerCacheSize)
	}
	return fmt.Sprint(n)
}

// runAll runs the scenarios, up to parallel at once, and prints their
// output in order: the first scenario's as it goes (a large build takes a
// long time), the others' each once it and those before it are done. The
// first error in order is returned.
func runAll(w io.Writer, scenarios []func(io.Writer) error, parallel int) error {
	type result struct {
		out bytes.Buffer
		err error
	}
	results := make([]result, len(scenarios))
	done := make([]chan struct{}, len(scenarios))
	slots := make(chan struct{}, max(1, parallel))
	for i := range scenarios {
		done[i] = make(chan struct{})
	}
	go func() { // starts the scenarios in order as slots free up
		for i, sc := range scenarios {
			var out io.Writer = &results[i].out
			if i == 0 {
				out = w
			}
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; close(done[i]) }()
				results[i].err = sc(out)
			}()
		}
	}()
	for i := range scenarios {
		<-done[i]
		_, _ = w.Write(results[i].out.Bytes())
		if results[i].err != nil {
			return results[i].err
		}
	}
	return nil
}

func hotPutters(p params) []int {
	hot := make([]int, p.hot)
	for i := range hot {
		hot[i] = i * p.nodes / p.hot
	}
	return hot
}

var beta = dsht.DefaultConfig(dsht.NodeInfo{}).LoadedRate

func noFaults(w io.Writer, p params, sum *summary) error {
	s, err := build(w, p, "no faults", 0, indirect(true))
	if err != nil {
		return err
	}
	if p.idle > 0 {
		idleTraffic(w, s, p)
	}
	levels := s.Node(0).NumLevels()
	for l := levels - 1; l >= 1; l-- {
		c := s.Clusters(l)
		sum.clusters = append(sum.clusters, c)
		fmt.Fprintf(w, "clusters level %d: planted=%d found=%d purity=%.3f coverage=%.3f largest=%v\n",
			l, c.Planted, c.Found, c.Purity, c.Coverage, c.Sizes[:min(len(c.Sizes), 8)])
		if p.outlooks || c.Found != c.Planted {
			s.ReportOutlooks(w, l)
		}
	}
	base, err := s.PutThenGet(p.keys, p.ttl)
	if err != nil {
		return err
	}
	sum.base = base
	printGets(w, "no faults", base)
	for l := levels - 1; l >= 0; l-- {
		fmt.Fprintf(w, "  level %d: lookups=%d hops p50=%.0f p99=%.0f latency p50=%.1fms p99=%.1fms answered here=%d\n",
			l, base.LevelHops[l].N, base.LevelHops[l].P50, base.LevelHops[l].P99,
			base.LevelLatency[l].P50, base.LevelLatency[l].P99, base.FoundAt[l])
	}
	// Locality: gets between nodes of one region.
	localOK, stayed, tries := 0, 0, min(100, p.nodes/p.topo.Regions)
	for range tries {
		a := s.Rand().IntN(p.nodes)
		b := a
		for b == a || s.Region(b) != s.Region(a) {
			b = s.Rand().IntN(p.nodes)
		}
		lvl, st, err := s.LocalGet(a, b, p.ttl)
		if err != nil {
			return err
		}
		if lvl == levels-1 {
			localOK++
		}
		if st {
			stayed++
		}
	}
	fmt.Fprintf(w, "locality: %d/%d same-region gets answered at level %d, %d/%d contacted only their own region\n",
		localOK, tries, levels-1, stayed, tries)

	h, err := s.HotKey(hotPutters(p), p.ttl, beta)
	if err != nil {
		return err
	}
	sum.hot = h
	fmt.Fprintf(w, "hot key: %d nodes put at once: put_ok=%d busiest node stored %d (level %d), %d level-0 holders; leakage bound β·⌈log2 n⌉=%d\n",
		h.Putters, h.PutOK, h.Busiest, h.BusiestLevel, h.Holders, h.Bound)

	r, err := s.Race(s.Live()[:min(p.race, p.nodes)], p.raceSpread, 20*time.Second)
	if err != nil {
		return err
	}
	sum.race = r
	fmt.Fprintf(w, "race: %d nodes want a new key within %v: origin fetches with get-then-put=%d, with put+get=%d\n",
		r.Nodes, p.raceSpread, r.OriginGetPut, r.OriginPutGet)

	crashed := s.CrashFraction(p.crash)
	crashOn, err := s.PutThenGet(p.keys, p.ttl)
	if err != nil {
		return err
	}
	sum.crashOn = crashOn
	printGets(w, fmt.Sprintf("crash %.0f%% (%d nodes), indirect on", 100*p.crash, len(crashed)), crashOn)

	// Holders lost: another share of the live nodes crashes between the
	// puts and the gets, before any owner could renew its value.
	afterPut, err := s.PutCrashGet(p.keys, p.ttl, p.crash)
	if err != nil {
		return err
	}
	sum.crashAfterPut = afterPut
	printGets(w, fmt.Sprintf("crash %.0f%% more after the puts (copies lost, not yet renewed)", 100*p.crash), afterPut)
	return nil
}

// idleTraffic runs the built network with no workload for p.idle and prints
// the requests a node sends per minute for its upkeep (cluster sampling,
// table refresh), by operation.
func idleTraffic(w io.Writer, s *dshtsim.Sim, p params) {
	before := s.RequestsByOp
	s.RunFor(p.idle)
	minutes := p.idle.Minutes() * float64(p.nodes)
	var total uint64
	fmt.Fprintf(w, "idle %v: requests per node per minute:", p.idle)
	for op, c := range s.RequestsByOp {
		if d := c - before[op]; d > 0 {
			total += d
			fmt.Fprintf(w, " %v=%.2f", dsht.Op(op), float64(d)/minutes)
		}
	}
	fmt.Fprintf(w, " all=%.2f\n", float64(total)/minutes)
}

func noSloppy(w io.Writer, p params) error {
	bs, err := build(w, p, "no sloppy storage", 0, func(_ int, c *dsht.Config) {
		c.IndirectRouting = true
		c.LoadedRate = 1 << 30
	})
	if err != nil {
		return err
	}
	bh, err := bs.HotKey(hotPutters(p), p.ttl, beta)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "hot key without sloppy storage (never loaded): busiest node stored %d (level %d)\n", bh.Busiest, bh.BusiestLevel)
	return nil
}

func nonTransitive(w io.Writer, p params, on bool) (float64, error) {
	label := fmt.Sprintf("nontransitive %.1f%% of pairs, indirect %v", 100*p.nontransitive, on)
	ns, err := build(w, p, label, p.nontransitive, indirect(on))
	if err != nil {
		return 0, err
	}
	st, err := ns.PutThenGet(p.keys, p.ttl)
	if err != nil {
		return 0, err
	}
	printGets(w, label, st)
	return st.OK(), nil
}

func crashOff(w io.Writer, p params) (dshtsim.GetStats, error) {
	cs, err := build(w, p, "crash, indirect off", 0, indirect(false))
	if err != nil {
		return dshtsim.GetStats{}, err
	}
	cs.CrashFraction(p.crash)
	st, err := cs.PutThenGet(p.keys, p.ttl)
	if err != nil {
		return st, err
	}
	printGets(w, fmt.Sprintf("crash %.0f%%, indirect off", 100*p.crash), st)
	return st, nil
}
