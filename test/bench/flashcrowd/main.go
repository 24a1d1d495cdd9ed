// Command flashcrowd re-creates CoralCDN's flash-crowd experiment on one
// machine: N real `coral serve` processes on loopback, an origin serving 12
// files (10 KiB to 1 MiB) through a home-DSL-like upload limit (1 Mbit/s
// shared by every response), and every node asked for every file at nearly
// the same moment. It prints how many requests reached the origin per file,
// where visitors were served from, and visitor latency against the same
// crowd sent straight to a second, identical origin (same limit) in the
// same run.
//
//	go run ./test/bench/flashcrowd                 (50 nodes, put_get on)
//	go run ./test/bench/flashcrowd -nodes 100 -putget=false
//	go run ./test/bench/flashcrowd -nodes 100 -kill 0.1   (10 % of the nodes SIGKILLed mid-crowd)
//
// With -kill, a share of the nodes is killed with SIGKILL once -kill-at of
// the visitors have their response; a visitor whose proxy died (its request
// failed, or it had not asked yet) turns to another live node of its
// region, as DNS would hand it one, and must still get the complete body.
//
// The direct crowd runs alongside the coral crowd (each origin has its own
// limiter, as two DSL lines would), because it is slow by nature: the
// origin must send every file to every visitor, about 22 minutes for 50
// nodes at 1 Mbit/s; by default it is cut at -direct-timeout.
//
// Every visitor's body is checked byte for byte (SHA-256 and length); a
// wrong body makes the command fail. Latency percentiles cover the visitors
// that got a correct body plus those still waiting at a deadline, counted
// at the deadline: a censored percentile is a lower bound, and the output
// says so. The last line is key=value pairs:
//
//	nodes=… files=12 origin_requests=… p50_ms=… p95_ms=… direct_p50_ms=… direct_p95_ms=… put_get=… regions=… own_region_peer_share=…
//
// By default the nodes sit in 5 planted regions (-regions): each region on
// its own 127.0.R.0/24 with round trips planted by [p2p] emulate_rtt (5 ms
// inside, 40 ms across, both and the nodes' level thresholds stretched by
// -dilate for a small machine); own_region_peer_share is the share of
// peer fetches served from the requester's own region.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/test/bench/flashcrowd/crowd"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/procstat"
	"github.com/libp2p/go-libp2p/core/peer"
)

type options struct {
	nodes, files, visitors, route int
	minSize, maxSize              int
	rateBits                      float64
	maxAge                        time.Duration
	putGet, direct, keep          bool
	bin, logPath, nodeLogLevel    string
	startTimeout, settle          time.Duration
	timeout, directTimeout        time.Duration
	regions                       crowd.Regions
	clusterTimeout                time.Duration
	clustersOnly, allTraces       bool
	visitLog                      string
	killShare, killAt             float64
	seed                          uint64
}

func main() {
	var o options
	flag.IntVar(&o.nodes, "nodes", 50, "coral processes to start")
	flag.IntVar(&o.files, "files", 12, "files on the origin")
	flag.IntVar(&o.minSize, "min-size", 10<<10, "smallest file in bytes")
	flag.IntVar(&o.maxSize, "max-size", 1<<20, "largest file in bytes")
	flag.Float64Var(&o.rateBits, "rate", 1e6, "origin upload limit in bits per second, shared by all its responses (0: none)")
	flag.DurationVar(&o.maxAge, "max-age", time.Hour, "Cache-Control max-age of the origin's files")
	flag.BoolVar(&o.putGet, "putget", true, "set [p2p] put_get in every node's config")
	flag.IntVar(&o.visitors, "visitors", 1, "visitors per node and file")
	flag.IntVar(&o.route, "route", 0, "global DSHT routing-table size every node must reach before the crowd (default min(nodes-1, 16))")
	flag.DurationVar(&o.settle, "settle", 0, "extra wait after the routing tables filled (lets level clusters form)")
	flag.IntVar(&o.regions.N, "regions", 5, "planted latency regions (level-2 clusters); 1: none, all nodes on 127.0.0.1")
	flag.DurationVar(&o.regions.Inside, "rtt-region", 5*time.Millisecond, "planted RTT inside a region")
	flag.DurationVar(&o.regions.Across, "rtt-across", 40*time.Millisecond, "planted RTT between regions")
	flag.IntVar(&o.regions.Dilate, "dilate", 4, "multiply planted RTTs and the nodes' level thresholds by this (CPU contention on a small machine adds tens of ms to every round trip)")
	flag.DurationVar(&o.clusterTimeout, "cluster-timeout", 5*time.Minute, "how long to wait for the level-2 clusters to match the regions")
	flag.BoolVar(&o.clustersOnly, "clusters-only", false, "stop after the clusters formed (or -cluster-timeout passed), before the crowd")
	flag.BoolVar(&o.allTraces, "traces", false, "print the trace of every origin fetch a visitor saw, not only the first three")
	flag.BoolVar(&o.direct, "direct", true, "also run the baseline: the same crowd straight to an identical origin")
	flag.DurationVar(&o.startTimeout, "start-timeout", 5*time.Minute, "deadline for starting the nodes and filling routing tables")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "deadline for the crowd through coral")
	flag.DurationVar(&o.directTimeout, "direct-timeout", 10*time.Minute, "deadline for the direct crowd")
	flag.StringVar(&o.bin, "bin", "", "coral binary (default: go build into a temp dir)")
	flag.StringVar(&o.visitLog, "visit-log", "", "write every visitor's outcome through coral (node, file, served by, cache, latency, error, X-Coral-Trace) to this file, one a line")
	flag.StringVar(&o.logPath, "log", "", "write the nodes' output to this file (default: a file in the temp dir, shown on failure)")
	flag.StringVar(&o.nodeLogLevel, "node-log-level", "warn", "[log] level of the nodes (debug shows coop's decisions in the node log)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, data, node log)")
	flag.Float64Var(&o.killShare, "kill", 0, "share of the nodes to kill with SIGKILL in the middle of the crowd (0.1: 10 %)")
	flag.Float64Var(&o.killAt, "kill-at", 0.5, "kill when this share of the visitors have their response")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the choice of nodes to kill")
	flag.Parse()
	if o.nodes < 1 || o.files < 1 || o.visitors < 1 || o.minSize < 1 || o.maxSize < o.minSize {
		fmt.Fprintln(os.Stderr, "flashcrowd: need -nodes, -files, -visitors >= 1 and 1 <= -min-size <= -max-size")
		os.Exit(2)
	}
	if o.route == 0 {
		o.route = min(o.nodes-1, 16)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flashcrowd:", err)
		os.Exit(1)
	}
}

// visit is one visitor's outcome; servedBy differs from node when its
// proxy was killed and it turned to another.
type visit struct {
	node, file, servedBy int
	crowd.Outcome
}

// writeVisitLog writes each visitor's outcome on a line, for finding why
// a visitor waited (its proxy's trace up to the response header).
// The origin's requests follow (with the asking node, from its Via token),
// then each node's peer ID.
func writeVisitLog(path string, res []visit, reqs []crowd.Request, start time.Time, sts []control.Status) error {
	var b strings.Builder
	byVia := map[string]int{}
	for i, st := range sts {
		if id, err := peer.Decode(st.NodeID); err == nil {
			nid := dsht.NodeID([]byte(id))
			byVia[fmt.Sprintf("1.1 coral-%x", nid[:4])] = i
		}
		fmt.Fprintf(&b, "node%02d peer %s\n", i, st.NodeID)
	}
	for _, r := range reqs {
		who := "node?"
		if i, ok := byVia[r.Via]; ok {
			who = fmt.Sprintf("node%02d", i)
		}
		fmt.Fprintf(&b, "origin t=%.1fs %s %s range=%q via %q\n", r.At.Sub(start).Seconds(), who, r.Path, r.Range, r.Via)
	}
	for _, r := range res {
		fmt.Fprintf(&b, "node%02d file%02d served-by node%02d %s %d ms err=%v trace: %s\n",
			r.node, r.file+1, r.servedBy, r.Cache, crowd.Millis(r.Latency), r.Err, r.Trace)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// crowdStats summarises one crowd.
type crowdStats struct {
	res        []visit
	took       time.Duration
	latencies  []time.Duration // correct bodies, and unfinished ones at the deadline
	failures   []visit
	unfinished int
	badBodies  int
	p50, p95   time.Duration
}

func summarise(res []visit, took time.Duration) crowdStats {
	s := crowdStats{res: res, took: took}
	for _, r := range res {
		switch {
		case r.Err == nil:
			s.latencies = append(s.latencies, r.Latency)
		case errors.Is(r.Err, context.DeadlineExceeded):
			s.unfinished++
			s.latencies = append(s.latencies, r.Latency)
			s.failures = append(s.failures, r)
		default:
			if errors.Is(r.Err, crowd.ErrBadBody) {
				s.badBodies++
			}
			s.failures = append(s.failures, r)
		}
	}
	s.p50, s.p95 = crowd.Percentile(s.latencies, 50), crowd.Percentile(s.latencies, 95)
	return s
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "coral-flashcrowd-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Printf("temp dir: %s (kept)\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.bin == "" {
		fmt.Println("building coral ...")
		if o.bin, err = crowd.BuildCoral(ctx, dir); err != nil {
			return err
		}
	}
	if o.logPath == "" {
		o.logPath = filepath.Join(dir, "nodes.log")
	}
	logFile, err := os.Create(o.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "--- last lines of the nodes' output (%s):\n%s", o.logPath, tail(o.logPath, 40))
		}
	}()

	files := crowd.MakeFiles(o.files, o.minSize, o.maxSize)
	origin, err := crowd.StartOrigin(files, o.rateBits, o.maxAge)
	if err != nil {
		return err
	}
	defer origin.Close()
	total := crowd.TotalBytes(files)
	n := o.nodes * len(files) * o.visitors
	fmt.Printf("flashcrowd: %d nodes, %d files (%d..%d bytes, %.2f MiB in all), origin limited to %s, max-age %s, put_get=%t, %d visitors\n",
		o.nodes, o.files, o.minSize, o.maxSize, float64(total)/(1<<20), rateString(o.rateBits), o.maxAge, o.putGet, n)
	if o.rateBits > 0 {
		fmt.Printf("  the origin needs %.0f s to send every file once, %.0f s to send each to all %d visitors\n",
			float64(total)*8/o.rateBits, float64(total)*8/o.rateBits*float64(o.nodes*o.visitors), n)
	}

	// Start the nodes and let their routing tables fill.
	sctx, scancel := context.WithTimeout(ctx, o.startTimeout)
	defer scancel()
	t0 := time.Now()
	c, err := cluster.Start(sctx, cluster.Options{
		Nodes: o.nodes, Binary: o.bin, Dir: dir, Log: &syncWriter{w: logFile},
		IP: o.regions.IP,
		Extra: func(int) string {
			return o.regions.Config() + crowd.NodeConfig(o.putGet, o.nodeLogLevel) + o.regions.DSHTConfig()
		},
	})
	if err != nil {
		return err
	}
	defer func() {
		if c != nil {
			c.Stop()
		}
	}()
	up := time.Since(t0)
	t1 := time.Now()
	least, err := crowd.WaitRouting(sctx, c.Nodes, o.route)
	if err != nil {
		return err
	}
	fmt.Printf("cluster: %d nodes up in %.1fs; every global routing table >= %d nodes (smallest %d) %.1fs later\n",
		o.nodes, up.Seconds(), o.route, least, time.Since(t1).Seconds())
	fmt.Printf("regions: %s\n", o.regions)
	if o.regions.Planted() {
		t2 := time.Now()
		cctx, ccancel := context.WithTimeout(ctx, o.clusterTimeout)
		matched, err := o.regions.WaitClusters(cctx, c.Nodes, os.Stdout)
		ccancel()
		if err != nil {
			fmt.Printf("  level-2 clusters did not all match the regions within %s: %d of %d nodes in their region's cluster; going on\n",
				o.clusterTimeout, matched, o.nodes)
			sts, _ := crowd.Statuses(ctx, c.Nodes)
			o.regions.ExplainClusters(os.Stdout, sts, 2)
			o.regions.ExplainClusters(os.Stdout, sts, 1)
		} else {
			fmt.Printf("  level-2 clusters match the %d regions after %.1fs\n", o.regions.N, time.Since(t2).Seconds())
		}
	}
	if o.settle > 0 {
		fmt.Printf("settling %s ...\n", o.settle)
		select {
		case <-time.After(o.settle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	sts, _ := crowd.Statuses(ctx, c.Nodes)
	fmt.Printf("dsht before the crowd: %s\n", crowd.Levels(sts))
	if o.clustersOnly {
		return nil
	}
	idle := crowd.SampleMemory(ctx, c.Nodes)
	fmt.Printf("memory (RSS) idle: %s\n", idle)
	fmt.Printf("load average before the crowd: %s\n", procstat.LoadAverage())

	u, err := coralurl.CoralizeURL(origin.URL, "localhost", "")
	if err != nil {
		return err
	}
	host := u.Host

	// The baseline: the same crowd straight to an identical origin, released
	// together with the coral crowd.
	var direct *crowd.Origin
	directDone := make(chan crowdStats, 1)
	if o.direct {
		if direct, err = crowd.StartOrigin(files, o.rateBits, o.maxAge); err != nil {
			return err
		}
		defer direct.Close()
		addr := strings.TrimPrefix(direct.URL, "http://")
		go func() {
			res, took := crowdRun(ctx, "direct", 30*time.Second, o.directTimeout, o.nodes, files, o.visitors,
				func(int) (string, string) { return addr, "" }, direct, nil, nil)
			directDone <- summarise(res, took)
		}()
	}

	// The crowd through coral, with the nodes' memory sampled meanwhile.
	var peak crowd.Memory
	memDone := make(chan struct{})
	memCtx, memStop := context.WithCancel(ctx)
	go func() {
		defer close(memDone)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-memCtx.Done():
				return
			case <-t.C:
			}
			if m := crowd.SampleMemory(memCtx, c.Nodes); m.Total > peak.Total {
				peak = m
			}
		}
	}()
	fmt.Printf("crowd: %d visitors (%d nodes x %d files x %d) released at once%s\n", n, o.nodes, o.files, o.visitors,
		map[bool]string{true: ", and as many straight to the second origin", false: ""}[o.direct])
	plan := crowd.NewKillPlan(o.nodes, o.killShare, int(o.killAt*float64(n)), o.seed, o.regions)
	if plan != nil {
		fmt.Printf("kill: nodes %v (SIGKILL) once %d of %d visitors have their response\n", plan.Victims, plan.AtDone, n)
	}
	crowdStart := time.Now()
	res, took := crowdRun(ctx, "coral", 5*time.Second, o.timeout, o.nodes, files, o.visitors,
		func(node int) (string, string) { return c.Nodes[node].HTTP, host }, origin,
		plan, func(node int) { c.Nodes[node].Kill() })
	memStop()
	<-memDone
	cs := summarise(res, took)
	if o.visitLog != "" {
		if err := writeVisitLog(o.visitLog, res, origin.RequestLog(), crowdStart, sts); err != nil {
			fmt.Fprintln(os.Stderr, "flashcrowd: visit log:", err)
		}
	}
	sts, _ = crowd.Statuses(ctx, c.Nodes)
	after := crowd.SampleMemory(ctx, c.Nodes)
	sum := crowd.SumProxy(sts)
	fmt.Printf("coral crowd done in %.1fs\n", took.Seconds())
	originReqs := origin.TotalRequests()
	reportFiles(files, res, origin)
	fmt.Printf("  total %d (the physical minimum is %d)\n", originReqs, len(files))
	ownRegion := reportSources(files, cs, o.regions, regionOfPeer(c.Nodes, o.regions), o.allTraces)
	fmt.Printf("node counters (sum of /api/status): requests %d, hits %d, peer %d, misses %d, origin_fetches %d, coalesced %d, errors %d\n",
		sum.Requests, sum.Hits, sum.Peer, sum.Misses, sum.OriginFetches, sum.CoalescedWaits, sum.Errors)
	fmt.Printf("dsht after the crowd: %s\n", crowd.Levels(sts))
	fmt.Printf("visitor latency through coral: p50 %d ms, p95 %d ms, max %d ms%s\n", crowd.Millis(cs.p50), crowd.Millis(cs.p95),
		crowd.Millis(crowd.Percentile(cs.latencies, 100)), censored(cs.unfinished, n, o.timeout))
	reportFailures("through coral", cs)
	fmt.Printf("memory (RSS) peak during the crowd: %s; after: %s\n", peak, after)
	fmt.Printf("load average after the crowd: %s\n", procstat.LoadAverage())

	// Free the machine while the baseline finishes.
	c.Stop()
	c = nil

	var ds crowdStats
	if o.direct {
		fmt.Println("waiting for the direct crowd ...")
		ds = <-directDone
		fmt.Printf("direct crowd done in %.1fs: origin requests %d; latency p50 %d ms, p95 %d ms%s\n", ds.took.Seconds(),
			direct.TotalRequests(), crowd.Millis(ds.p50), crowd.Millis(ds.p95), censored(ds.unfinished, n, o.directTimeout))
		reportFailures("direct", ds)
	}

	killed, rerouted := 0, reportKill(plan, res)
	if plan != nil {
		killed = len(plan.Victims)
	}
	fmt.Printf("visitors=%d failed=%d unfinished=%d direct_failed=%d direct_unfinished=%d cluster_start_s=%.1f rss_idle_mib=%d rss_peak_mib=%d rss_peak_max_node_mib=%d killed=%d rerouted=%d\n",
		n, len(cs.failures), cs.unfinished, len(ds.failures), ds.unfinished, up.Seconds(), idle.Total>>20, peak.Total>>20, peak.Max>>20, killed, rerouted)
	fmt.Printf("nodes=%d files=%d origin_requests=%d p50_ms=%d p95_ms=%d direct_p50_ms=%d direct_p95_ms=%d put_get=%t regions=%d own_region_peer_share=%s\n",
		o.nodes, len(files), originReqs, crowd.Millis(cs.p50), crowd.Millis(cs.p95), crowd.Millis(ds.p50), crowd.Millis(ds.p95), o.putGet,
		max(o.regions.N, 1), ownRegion)
	if bad := cs.badBodies + ds.badBodies; bad > 0 {
		return fmt.Errorf("%d visitor(s) received a wrong body", bad)
	}
	return nil
}

// crowdRun releases nodes*len(files)*per visitors at once (one goroutine
// each, held at a shared barrier) and waits for all of them or the
// deadline, printing progress every `every`. target maps a node index to
// the address to dial and the Host header. With a plan, kill kills its
// victims once enough visitors are done, and their visitors turn to
// other nodes.
func crowdRun(ctx context.Context, label string, every, deadline time.Duration, nodes int, files []crowd.File, per int,
	target func(node int) (addr, host string), origin *crowd.Origin, plan *crowd.KillPlan, kill func(node int)) ([]visit, time.Duration) {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 64, DisableCompression: true, IdleConnTimeout: 30 * time.Second,
	}}
	defer client.CloseIdleConnections()
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	res := make([]visit, nodes*len(files)*per)
	var done atomic.Int64
	var ready, wg sync.WaitGroup
	start := make(chan struct{})
	for i := range res {
		node, file := i/(len(files)*per), i/per%len(files)
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			<-start
			res[i] = visitOnce(cctx, client, node, files[file], target, plan)
			res[i].file = file
			if plan.Due(int(done.Add(1))) {
				go plan.Kill(kill)
			}
		})
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-finished:
			return res, time.Since(t0)
		case <-tick.C:
			fmt.Printf("  %-6s t=%4.0fs  visitors done %d/%d  origin: requests %d, responses running %d, %.2f MiB sent\n",
				label, time.Since(t0).Seconds(), done.Load(), len(res), origin.TotalRequests(), origin.Active(),
				float64(origin.BytesSent())/(1<<20))
		}
	}
}

// visitOnce is one visitor: it asks its node, and while that node is dead
// (killed before or during the request) asks the next live one of its
// region; Latency covers every attempt.
func visitOnce(ctx context.Context, client *http.Client, node int, f crowd.File,
	target func(node int) (addr, host string), plan *crowd.KillPlan) visit {
	v := visit{node: node, servedBy: node}
	start := time.Now()
	for {
		if plan.Dead(v.servedBy) {
			v.servedBy = plan.Instead(v.servedBy)
		}
		addr, host := target(v.servedBy)
		v.Outcome = crowd.Visit(ctx, client, addr, host, f)
		if v.Err == nil || !plan.Dead(v.servedBy) || ctx.Err() != nil || errors.Is(v.Err, crowd.ErrBadBody) {
			break
		}
	}
	v.Latency = time.Since(start)
	if v.Err != nil && ctx.Err() != nil && !errors.Is(v.Err, context.DeadlineExceeded) {
		v.Err = fmt.Errorf("%w: %v", ctx.Err(), v.Err)
	}
	return v
}

// reportKill prints how the visitors of killed nodes fared and returns how
// many turned to another node.
func reportKill(plan *crowd.KillPlan, res []visit) (rerouted int) {
	if plan == nil {
		return 0
	}
	failed := 0
	for _, r := range res {
		if r.servedBy != r.node {
			rerouted++
			if r.Err != nil {
				failed++
			}
		}
	}
	fmt.Printf("killed %d nodes %v: %d visitors turned from a dead node to another of its region, %d of them failed\n",
		len(plan.Victims), plan.Victims, rerouted, failed)
	return rerouted
}

func reportFiles(files []crowd.File, res []visit, origin *crowd.Origin) {
	fmt.Println("origin requests per file:")
	for i, f := range files {
		var hit, peer, miss, bad int
		var lat []time.Duration
		for _, r := range res {
			if r.file != i {
				continue
			}
			if r.Err != nil {
				bad++
				continue
			}
			lat = append(lat, r.Latency)
			switch r.Cache {
			case "HIT":
				hit++
			case "PEER":
				peer++
			case "MISS":
				miss++
			}
		}
		fmt.Printf("  %-20s origin %3d   visitors: HIT %3d PEER %3d MISS %3d failed %3d   p50 %6d ms\n",
			strings.TrimPrefix(f.Path, "/"), origin.Requests(i), hit, peer, miss, bad, crowd.Millis(crowd.Percentile(lat, 50)))
	}
}

// regionOfPeer maps the short peer IDs of traces to planted regions.
func regionOfPeer(nodes []*cluster.Node, r crowd.Regions) func(short string) (int, bool) {
	m := map[string]int{}
	for i, n := range nodes {
		m[proxy.ShortPeer(n.PeerID)] = r.Of(i)
	}
	return func(short string) (int, bool) { reg, ok := m[short]; return reg, ok }
}

// reportSources prints where the correct responses came from, the DSHT
// level of the referrals behind PEER responses (from the X-Coral-Trace the
// visitors asked for), how many of those came from the visitor's proxy's
// own planted region, and a few traces of origin fetches. It returns that
// own-region share of peer fetches.
func reportSources(files []crowd.File, s crowdStats, regions crowd.Regions, regionOf func(short string) (int, bool), allTraces bool) string {
	n := len(s.res)
	counts := map[string]int{}
	byLevel := map[int]int{}
	causes := map[string]int{}
	var missTraces []string
	own, known := 0, 0
	for _, r := range s.res {
		if r.Err != nil {
			continue
		}
		counts[r.Cache]++
		switch {
		case r.Cache == "PEER":
			byLevel[crowd.PeerLevel(r.Trace)]++
			if reg, ok := regionOf(crowd.PeerSource(r.Trace)); ok {
				known++
				if reg == regions.Of(r.servedBy) {
					own++
				}
			}
		case r.Cache == "MISS":
			causes[crowd.OriginCause(r.Trace)]++
			if r.Trace != "" {
				missTraces = append(missTraces, fmt.Sprintf("node%02d %s: %s", r.node, files[r.file].Path, r.Trace))
			}
		}
	}
	ok := n - len(s.failures)
	fmt.Printf("served (X-Coral-Cache of the %d correct responses, share of all %d visitors): local cache (HIT) %s, peers (PEER) %s, origin (MISS) %s, other %s\n",
		ok, n, share(counts["HIT"], n), share(counts["PEER"], n), share(counts["MISS"], n),
		share(ok-counts["HIT"]-counts["PEER"]-counts["MISS"], n))
	if counts["PEER"] > 0 {
		fmt.Printf("  peers by DSHT level of the referral (X-Coral-Trace): level 2 %s, level 1 %s, level 0 %s, not stated %s\n",
			share(byLevel[2], n), share(byLevel[1], n), share(byLevel[0], n), share(byLevel[-1], n))
	}
	ownShare := "na"
	if known > 0 {
		ownShare = fmt.Sprintf("%.3f", float64(own)/float64(known))
		fmt.Printf("  peer fetches from the requester's own planted region: %s of %d\n", share(own, known), known)
	}
	if len(causes) > 0 {
		var parts []string
		for c, k := range causes {
			parts = append(parts, fmt.Sprintf("%s %d", c, k))
		}
		slices.Sort(parts)
		fmt.Printf("  why visitors' proxies went to the origin (X-Coral-Trace): %s\n", strings.Join(parts, ", "))
	}
	for i, t := range missTraces {
		if i == 3 && !allTraces {
			fmt.Printf("  ... and %d more origin fetches\n", len(missTraces)-i)
			break
		}
		fmt.Printf("  origin fetch trace: %s\n", t)
	}
	return ownShare
}

func reportFailures(what string, s crowdStats) {
	if len(s.failures) == 0 {
		fmt.Printf("failures %s: 0 of %d\n", what, len(s.res))
		return
	}
	byErr := map[string]int{}
	for _, f := range s.failures {
		msg := f.Err.Error()
		if errors.Is(f.Err, context.DeadlineExceeded) {
			msg = "unfinished at the deadline"
		}
		msg = quotedURL.ReplaceAllString(msg, "<url>")
		if len(msg) > 160 {
			msg = msg[:160] + "…"
		}
		byErr[msg]++
	}
	fmt.Printf("failures %s: %d of %d (%d unfinished at the deadline, %d wrong bodies)\n", what, len(s.failures), len(s.res), s.unfinished, s.badBodies)
	shown := 0
	for e, k := range byErr {
		if shown == 8 {
			break
		}
		fmt.Printf("  %4d x %s\n", k, e)
		shown++
	}
}

var quotedURL = regexp.MustCompile(`"http://[^"]*"`)

func share(k, n int) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%.1f%%)", k, 100*float64(k)/float64(n))
}

func censored(unfinished, n int, deadline time.Duration) string {
	if unfinished == 0 {
		return ""
	}
	return fmt.Sprintf(" (LOWER BOUNDS: %d of %d visitors were still waiting at the %s deadline and count as %s)", unfinished, n, deadline, deadline)
}

func rateString(bits float64) string {
	if bits <= 0 {
		return "no limit"
	}
	return fmt.Sprintf("%.2f Mbit/s", bits/1e6)
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n") + "\n"
}
