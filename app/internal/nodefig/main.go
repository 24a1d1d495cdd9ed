// Command nodefig measures a whole Coral node's idle cost — libp2p, the
// DSHT's maintenance, the directory heartbeat, DNS, everything a running
// node does — with many connected peers. It runs the measured node in a
// child process (so its CPU time and RSS are its own) with the default
// configuration except loopback listeners, starts -peers full nodes
// in-process that bootstrap from it, lets them settle, and prints the
// measured node's RSS, its CPU use (share of one core) and stream writes
// and reads per second by protocol over an idle -window.
//
//	nice go run ./app/internal/nodefig -peers 96
//
// After -settle it waits, up to -settle-max, until the crowd's
// announcements are quiet (at most -quiet changes a minute among the peers
// and the measured node): a crowd that starts together takes minutes to
// agree on its clusters, and every change it makes costs the measured node
// an exchange — that is the crowd settling, not a node idling. It prints
// how many changes fell inside the window.
//
// NODEFIG_LOG=file keeps the measured node's log (debug level);
// NODEFIG_PEERS_LOG=file the peers' announcement changes.
//
// p2p/internal/memfig measures the libp2p layer alone.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/app/node"
	"github.com/coralcdn/coral/test/procstat"
)

func main() {
	central := flag.String("central", "", "run as the measured node with this secret file (internal)")
	peers := flag.Int("peers", 96, "number of peer nodes")
	settle := flag.Duration("settle", 45*time.Second, "time for the DSHT, clusters and heartbeats to settle after the peers joined")
	window := flag.Duration("window", 60*time.Second, "idle time over which CPU and traffic are measured")
	cpuProfile := flag.String("cpuprofile", "", "write the measured node's CPU profile over the window to this file, and its heap at the end to the file .heap (go tool pprof)")
	settleMax := flag.Duration("settle-max", 15*time.Minute, "longest wait, counted from the start of -settle, for the crowd's announcements to be quiet")
	quiet := flag.Int("quiet", 3, "announcement changes a minute (the peers' and the measured node's) under which the crowd counts as settled")
	traceFile := flag.String("trace", "", "after the window, write a 30 s Go execution trace of the measured node to this file (go tool trace): which goroutines wake, and why")
	flag.Parse()
	var err error
	if *central != "" {
		err = runCentral(*central)
	} else {
		err = runParent(*peers, settleRule{*settle, *settleMax, *quiet}, *window, *cpuProfile, *traceFile)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodefig:", err)
		os.Exit(1)
	}
}

// nodeConfig is the default configuration on loopback, without mDNS or
// port mapping (this machine's other engineers need neither).
func nodeConfig(dir, secret string, bootstrap []string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Control.Listen = "127.0.0.1:0"
	cfg.DNS.Listen = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.P2P.Bootstrap = bootstrap
	cfg.P2P.SecretFile = secret
	cfg.P2P.MDNS = false
	cfg.P2P.NATPortMap = false
	return cfg
}

// startNode starts a node; opts carries the peers' watermarks (the
// measured node gets none: the defaults).
func startNode(dir, secret string, bootstrap []string, opts node.Options) (*node.Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n, err := node.New(nodeConfig(dir, secret, bootstrap), opts)
	if err != nil {
		return nil, err
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// runCentral runs the measured node and answers the parent's commands on
// stdin: PEERS, MEM, CPU, TRAFFIC, PROFILE <file>, PROFILED, QUIT.
func runCentral(secret string) error {
	dir, err := os.MkdirTemp("", "nodefig-central")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var opts node.Options
	if file := os.Getenv("NODEFIG_LOG"); file != "" { // the measured node's log, to see what it does
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.Logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := startNode(dir, secret, nil, opts)
	if err != nil {
		return err
	}
	defer n.Close()
	addrs, _ := json.Marshal(n.Addrs().P2P)
	fmt.Println("ADDR", string(addrs))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "PEERS":
			fmt.Println("PEERS", p2pFigure(n, func(p *control.P2PStatus) int { return p.ConnectedPeers }))
		case "RELAYED":
			fmt.Println("RELAYED", p2pFigure(n, func(p *control.P2PStatus) int { return p.RelayedPeers }))
		case "MEM":
			fmt.Println("MEM", procstat.RSSBytes())
		case "CPU":
			fmt.Printf("CPU %d\n", procstat.CPUNanos())
		case "SWITCHES":
			fmt.Printf("SWITCHES %d\n", procstat.ContextSwitches())
		case "TRAFFIC":
			for _, t := range n.StreamCounts() {
				fmt.Printf("T %s %d %d\n", t.Protocol, t.Writes, t.Reads)
			}
			fmt.Println("END")
		case "GOMEM":
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Printf("GOMEM heap_inuse=%.1fMiB heap_idle_kept=%.1fMiB stacks=%.1fMiB other_sys=%.1fMiB goroutines=%d %s\n",
				mib(m.HeapInuse), mib(m.HeapIdle-m.HeapReleased), mib(m.StackSys), mib(m.MSpanSys+m.MCacheSys+m.BuckHashSys+m.GCSys+m.OtherSys),
				runtime.NumGoroutine(), rssKinds())
		case "PROFILED":
			pprof.StopCPUProfile()
			fmt.Println("PROFILED 0")
		case "QUIT":
			return nil
		default:
			if file, ok := strings.CutPrefix(in.Text(), "PROFILE "); ok {
				fmt.Println("PROFILE", startProfile(file))
			}
			if file, ok := strings.CutPrefix(in.Text(), "HEAP "); ok {
				fmt.Println("HEAP", writeHeap(file))
			}
			if file, ok := strings.CutPrefix(in.Text(), "TRACE "); ok {
				fmt.Println("TRACE", writeTrace(file, traceLength))
			}
		}
	}
	return in.Err()
}

// p2pFigure is one figure of n's libp2p status, -1 when there is none.
func p2pFigure(n *node.Node, figure func(*control.P2PStatus) int) int {
	st, err := n.Status(context.Background())
	if err != nil || st.P2P == nil {
		return -1
	}
	return figure(st.P2P)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rssKinds is the kernel's split of this process's RSS: anonymous memory
// (Go's heap and stacks, cgo) and file pages (Badger's memory-mapped
// tables and logs).
func rssKinds() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && (k == "RssAnon" || k == "RssFile" || k == "RssShmem") {
			out = append(out, k+"="+strings.Join(strings.Fields(v), ""))
		}
	}
	return strings.Join(out, " ")
}

// startProfile starts a CPU profile into file and says 0, or 1 when it
// could not.
func startProfile(file string) int {
	f, err := os.Create(file)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodefig: cpu profile:", err)
		return 1
	}
	return 0
}

// writeHeap writes a heap profile to file and says 0, or 1 when it could
// not.
func writeHeap(file string) int {
	f, err := os.Create(file)
	if err == nil {
		runtime.GC()
		err = pprof.WriteHeapProfile(f)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodefig: heap profile:", err)
		return 1
	}
	return 0
}

// traceLength is how long an execution trace runs.
const traceLength = 30 * time.Second

// writeTrace writes an execution trace of the next d to file and says 0,
// or 1 when it could not.
func writeTrace(file string, d time.Duration) int {
	f, err := os.Create(file)
	if err == nil {
		defer f.Close()
		err = trace.Start(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodefig: trace:", err)
		return 1
	}
	time.Sleep(d) // the traced stretch of idleness
	trace.Stop()
	return 0
}

// central is the parent's handle on the measured node's command channel.
type central struct {
	in  io.Writer
	out *bufio.Scanner
}

func (c central) ask(cmd string) (string, error) {
	fmt.Fprintln(c.in, cmd)
	if !c.out.Scan() {
		return "", fmt.Errorf("central node gone")
	}
	return c.out.Text(), nil
}

func (c central) number(cmd string) (int64, error) {
	line, err := c.ask(cmd)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != cmd {
		return 0, fmt.Errorf("%s: unexpected answer %q", cmd, line)
	}
	return strconv.ParseInt(f[1], 10, 64)
}

func (c central) traffic() (map[string][2]int64, error) {
	fmt.Fprintln(c.in, "TRAFFIC")
	m := map[string][2]int64{}
	for c.out.Scan() && c.out.Text() != "END" {
		var proto string
		var w, r int64
		if _, err := fmt.Sscanf(c.out.Text(), "T %s %d %d", &proto, &w, &r); err != nil {
			return nil, fmt.Errorf("traffic line %q: %w", c.out.Text(), err)
		}
		m[proto] = [2]int64{w, r}
	}
	return m, c.out.Err()
}

// settleRule is how long the crowd gets before the window: at least min,
// then until its announcements change fewer than quiet times a minute, at
// most max in all.
type settleRule struct {
	min, max time.Duration
	quiet    int
}

func runParent(n int, settle settleRule, window time.Duration, profile, traceFile string) error {
	work, err := os.MkdirTemp("", "nodefig")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	secret := filepath.Join(work, "network.key") // the first node writes it
	cmd := exec.Command(os.Args[0], "-central", secret)
	cmd.Stderr = os.Stderr
	child, addr, err := procstat.StartChild(cmd)
	if err != nil {
		return err
	}
	defer child.Stop()
	c := central{in: child.In, out: child.Out}
	var boot []string
	if err := json.Unmarshal([]byte(addr), &boot); err != nil {
		return err
	}
	var changes atomic.Int64
	started := time.Now()
	nodes, err := startPeers(work, secret, boot, n, &changes)
	defer closeAll(nodes)
	if err != nil {
		return err
	}
	time.Sleep(settle.min) // a figure, not a test: let the network settle
	if err := keepConnected(c, nodes, boot, n, settle.min); err != nil {
		return err
	}
	waitQuiet(&changes, settle, started)
	if err := idleCost(c, nodes, window, profile, &changes); err != nil || traceFile == "" {
		return err
	}
	abs, err := filepath.Abs(traceFile)
	if err != nil {
		return err
	}
	if line, err := c.ask("TRACE " + abs); err != nil || line != "TRACE 0" {
		return fmt.Errorf("trace not written: %q %v", line, err)
	}
	return nil
}

// changeMessage is what a node logs, at debug level, when its
// announcement to its peers changed.
const changeMessage = "announcement changed; telling connected peers"

// changeCounter counts the records with changeMessage and passes them on
// to keep, if any; other records go nowhere.
type changeCounter struct {
	n    *atomic.Int64
	keep slog.Handler
}

func (c changeCounter) Enabled(context.Context, slog.Level) bool { return true }

func (c changeCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != changeMessage {
		return nil
	}
	c.n.Add(1)
	if c.keep == nil {
		return nil
	}
	return c.keep.Handle(ctx, r)
}

func (c changeCounter) WithAttrs(as []slog.Attr) slog.Handler {
	if c.keep != nil {
		c.keep = c.keep.WithAttrs(as)
	}
	return c
}

func (c changeCounter) WithGroup(name string) slog.Handler {
	if c.keep != nil {
		c.keep = c.keep.WithGroup(name)
	}
	return c
}

// startPeers starts n full nodes bootstrapping from boot, 8 at a time.
// Their connection managers have room for every other node: with the
// default watermarks each of them, meeting the whole crowd through the
// DSHT, went over 96 connections and trimmed back to 32, often dropping
// the measured node, which then counted 57 peers instead of 96 and paid
// for the reconnections (issue 17). The measured node keeps the defaults.
// changes counts the peers' announcement changes.
func startPeers(work, secret string, boot []string, n int, changes *atomic.Int64) ([]*node.Node, error) {
	roomy := node.Options{ConnLow: 2 * (n + 1), ConnHigh: 4 * (n + 1)}
	var keep slog.Handler
	if file := os.Getenv("NODEFIG_PEERS_LOG"); file != "" { // why the peers tell the measured node they changed
		f, err := os.Create(file)
		if err != nil {
			return nil, err
		}
		keep = slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	roomy.Logger = slog.New(changeCounter{changes, keep})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		nodes []*node.Node
		first error
	)
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := startNode(filepath.Join(work, fmt.Sprintf("peer%03d", i)), secret, boot, roomy)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			if p != nil {
				nodes = append(nodes, p)
			}
		})
	}
	wg.Wait()
	return nodes, first
}

// keepConnected has every peer that lost its direct connection to the
// measured node (on a loaded machine a ping answered late closes one) dial
// it again, waits up to a minute for the node to count want peers, and
// then settle/3 for the reconnections to quieten, so the window measures
// the node with the crowd it is meant to have.
func keepConnected(c central, nodes []*node.Node, boot []string, want int, settle time.Duration) error {
	deadline := time.Now().Add(time.Minute)
	for {
		peers, err := c.number("PEERS")
		if err != nil {
			return err
		}
		if peers >= int64(want) || time.Now().After(deadline) {
			time.Sleep(settle / 3) // a figure, not a test
			return nil
		}
		var wg sync.WaitGroup
		for _, p := range nodes {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = p.ConnectDirect(ctx, boot[0]) // a peer that fails is counted below
			})
		}
		wg.Wait()
		time.Sleep(time.Second) // a figure, not a test: let the node count them
	}
}

// waitQuiet waits until the crowd's announcements changed fewer than
// rule.quiet times in the last minute, or rule.max has passed since
// started, and says which.
func waitQuiet(changes *atomic.Int64, rule settleRule, started time.Time) {
	const poll, span = 5 * time.Second, time.Minute
	var seen []int64 // changes at each poll, the last span's worth
	for {
		seen = append(seen, changes.Load())
		if len(seen) > int(span/poll)+1 {
			seen = seen[1:]
		}
		full := len(seen) == int(span/poll)+1
		if full && seen[len(seen)-1]-seen[0] < int64(rule.quiet) {
			fmt.Printf("crowd settled after %.0fs: %d announcement changes in the last minute, %d in all\n",
				time.Since(started).Seconds(), seen[len(seen)-1]-seen[0], seen[len(seen)-1])
			return
		}
		if time.Since(started) >= rule.max {
			fmt.Printf("crowd NOT settled after %.0fs (-settle-max): %d announcement changes in the last minute, %d in all\n",
				time.Since(started).Seconds(), seen[len(seen)-1]-seen[0], seen[len(seen)-1])
			return
		}
		time.Sleep(poll) // a figure, not a test: polling the crowd's count
	}
}

// closeAll closes the peer nodes in parallel: each waits briefly for
// in-flight requests, which one by one adds up to minutes.
func closeAll(nodes []*node.Node) {
	var wg sync.WaitGroup
	for _, p := range nodes {
		wg.Go(func() { p.Close() })
	}
	wg.Wait()
}

// idleCost prints the central node's peers, RSS, CPU share and traffic by
// protocol over window.
func idleCost(c central, nodes []*node.Node, window time.Duration, profile string, changes *atomic.Int64) error {
	peers, err := c.number("PEERS")
	if err != nil {
		return err
	}
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return err
		}
		if line, err := c.ask("PROFILE " + abs); err != nil || line != "PROFILE 0" {
			return fmt.Errorf("cpu profile not started: %q %v", line, err)
		}
	}
	c0, err := c.number("CPU")
	if err != nil {
		return err
	}
	s0, err := c.number("SWITCHES")
	if err != nil {
		return err
	}
	crowd0 := procstat.CPUNanos()
	t0, err := c.traffic()
	if err != nil {
		return err
	}
	changed0 := changes.Load()
	load0 := procstat.LoadAverage()
	start := time.Now()
	time.Sleep(window) // a figure, not a test: the node idles for the window
	c1, err := c.number("CPU")
	if err != nil {
		return err
	}
	s1, err := c.number("SWITCHES")
	if err != nil {
		return err
	}
	crowd := procstat.CPUNanos() - crowd0
	changed := changes.Load() - changed0
	t1, err := c.traffic()
	if err != nil {
		return err
	}
	if profile != "" {
		if _, err := c.number("PROFILED"); err != nil {
			return err
		}
		abs, _ := filepath.Abs(profile + ".heap") // the heap at the end, beside the CPU profile
		if line, err := c.ask("HEAP " + abs); err != nil || line != "HEAP 0" {
			return fmt.Errorf("heap profile not written: %q %v", line, err)
		}
	}
	rss, err := c.number("MEM")
	if err != nil {
		return err
	}
	gomem, err := c.ask("GOMEM")
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("whole node, default config on loopback, %d connected peers (full nodes)\n", peers)
	fmt.Printf("idle %.0fs: CPU %.2f%% of a core, RSS %.1f MiB, %.1f context switches/s\n", secs, 100*float64(c1-c0)/1e9/secs, float64(rss)/(1<<20), float64(s1-s0)/secs)
	fmt.Println("go runtime:", strings.TrimPrefix(gomem, "GOMEM "))
	fmt.Printf("load average: %s before the window, %s after (others' work on the machine raises the figures)\n", load0, procstat.LoadAverage())
	// A crowd short of CPU answers pings late, and the measured node's
	// figures then include reconnections a real network would not see.
	fmt.Printf("the crowd of %d peers (this process): %.1f%% of a core; %d announcement changes in the window (each one an exchange with the measured node)\n",
		len(nodes), 100*float64(crowd)/1e9/secs, changed)
	procstat.PrintRates(os.Stdout, t0, t1, secs, 32)
	return printRelayed(c, nodes)
}

// printRelayed says how many of the peers' links go only through a relay:
// every such link between two crowd peers may run through the measured
// node, whose upload then carries their traffic.
func printRelayed(c central, nodes []*node.Node) error {
	own, err := c.number("RELAYED")
	if err != nil {
		return err
	}
	links, crowd := 0, 0
	for _, p := range nodes {
		links += max(0, p2pFigure(p, func(s *control.P2PStatus) int { return s.ConnectedPeers }))
		crowd += max(0, p2pFigure(p, func(s *control.P2PStatus) int { return s.RelayedPeers }))
	}
	fmt.Printf("links reached only through a relay: the measured node %d; the crowd %d of %d (both ends count)\n", own, crowd, links)
	return nil
}
