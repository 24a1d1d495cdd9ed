// Command memfig measures a Coral node's idle cost with many connected
// peers: it runs one "central" node in a child process (so its heap, RSS and
// CPU time are its own), connects -peers in-process nodes to it, and prints
// the central node's Go heap and resident set size before and after, then
// its CPU use (share of one core) and stream writes and reads per second by
// protocol over an idle -window.
//
//	go run ./p2p/internal/memfig -peers 96
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/coralcdn/coral/p2p"
	"github.com/coralcdn/coral/test/procstat"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func main() {
	central := flag.Bool("central", false, "run as the measured node (internal)")
	peers := flag.Int("peers", 50, "number of peers to connect")
	settle := flag.Duration("settle", 5*time.Second, "time to let identify, AutoNAT and relay reservations settle")
	window := flag.Duration("window", 30*time.Second, "idle time over which CPU and traffic are measured (0: skip)")
	flag.Parse()
	var err error
	if *central {
		err = runCentral()
	} else {
		err = runParent(*peers, *settle, *window)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "memfig:", err)
		os.Exit(1)
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func nodeConfig(dir string, psk []byte) p2p.Config {
	return p2p.Config{
		DataDir: dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"}, Secret: psk,
		DisableMDNS: true, DisableNATPortMap: true, Logger: quietLogger(),
	}
}

func runCentral() error {
	psk, err := hex.DecodeString(os.Getenv("MEMFIG_SECRET"))
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "memfig-central")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	h, err := p2p.New(context.Background(), nodeConfig(dir, psk))
	if err != nil {
		return err
	}
	defer h.Close()
	fmt.Println("ADDR", h.P2PAddrs()[0])
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "MEM":
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("MEM %d %d %d %d %d\n", ms.HeapInuse, ms.Sys, procstat.RSSBytes(), runtime.NumGoroutine(), len(h.ConnectedPeers()))
		case "CPU":
			fmt.Printf("CPU %d\n", procstat.CPUNanos())
		case "TRAFFIC":
			for _, t := range h.StreamCounts() {
				fmt.Printf("T %s %d %d\n", t.Protocol, t.Writes, t.Reads)
			}
			fmt.Println("END")
		case "QUIT":
			return nil
		}
	}
	return in.Err()
}

type mem struct{ heap, sys, rss, goroutines, peers int64 }

func runParent(n int, settle, window time.Duration) error {
	psk := make([]byte, 32)
	for i := range psk {
		psk[i] = byte(i*7 + 1)
	}
	cmd := exec.Command(os.Args[0], "-central")
	cmd.Env = append(os.Environ(), "MEMFIG_SECRET="+hex.EncodeToString(psk))
	cmd.Stderr = os.Stderr
	child, addr, err := procstat.StartChild(cmd)
	if err != nil {
		return err
	}
	defer child.Stop()
	stdin, out := child.In, child.Out
	ai, err := peer.AddrInfoFromP2pAddr(ma.StringCast(addr))
	if err != nil {
		return err
	}
	measure := func() (mem, error) {
		fmt.Fprintln(stdin, "MEM")
		if !out.Scan() {
			return mem{}, fmt.Errorf("central node gone")
		}
		var m mem
		_, err := fmt.Sscanf(out.Text(), "MEM %d %d %d %d %d", &m.heap, &m.sys, &m.rss, &m.goroutines, &m.peers)
		return m, err
	}
	time.Sleep(settle) // a figure, not a test: let the idle node settle
	base, err := measure()
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var hosts []*p2p.Host
	errs := make(chan error, n)
	// Dials in batches: the central node refuses more than 32 inbound
	// connections still being set up at once (its transient limit).
	dialing := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Go(func() {
			dialing <- struct{}{}
			defer func() { <-dialing }()
			dir, err := os.MkdirTemp("", "memfig-peer")
			if err != nil {
				errs <- err
				return
			}
			cfg := nodeConfig(dir, psk)
			// Peers behave like home nodes (reachability unknown on loopback), so
			// each also reserves a relay slot on the central node.
			cfg.DisableRelayService = true
			h, err := p2p.New(context.Background(), cfg)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			hosts = append(hosts, h)
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := h.Connect(ctx, *ai); err != nil {
				errs <- fmt.Errorf("%v (dialling %v)", err, ai)
			}
		})
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}()
	for err := range errs {
		return err
	}
	time.Sleep(settle)
	loaded, err := measure()
	if err != nil {
		return err
	}
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	fmt.Printf("central node, %s/%s, go %s\n", runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Printf("%-14s %8s %12s %12s %12s %10s\n", "", "peers", "heap inuse", "go sys", "rss", "goroutines")
	for _, r := range []struct {
		name string
		m    mem
	}{{"idle", base}, {"connected", loaded}} {
		fmt.Printf("%-14s %8d %12s %12s %12s %10d\n", r.name, r.m.peers, mib(r.m.heap), mib(r.m.sys), mib(r.m.rss), r.m.goroutines)
	}
	rsv := 0
	for _, h := range hosts {
		if slices.Contains(h.Status().RelayReservations, ai.ID.String()) {
			rsv++
		}
	}
	fmt.Printf("relay reservations held on the central node: %d\n", rsv)
	if loaded.peers > 0 {
		fmt.Printf("per peer: heap %.0f KiB, rss %.0f KiB\n",
			float64(loaded.heap-base.heap)/1024/float64(loaded.peers), float64(loaded.rss-base.rss)/1024/float64(loaded.peers))
	}
	if window <= 0 {
		return nil
	}
	return idleCost(stdin, out, loaded.peers, window)
}

// idleCost reads the central node's CPU time and per-protocol traffic
// before and after window and prints the rates.
func idleCost(stdin io.Writer, out *bufio.Scanner, peers int64, window time.Duration) error {
	cpu := func() (int64, error) {
		fmt.Fprintln(stdin, "CPU")
		var ns int64
		if !out.Scan() {
			return 0, fmt.Errorf("central node gone")
		}
		_, err := fmt.Sscanf(out.Text(), "CPU %d", &ns)
		return ns, err
	}
	traffic := func() (map[string][2]int64, error) {
		fmt.Fprintln(stdin, "TRAFFIC")
		m := map[string][2]int64{}
		for out.Scan() && out.Text() != "END" {
			var proto string
			var w, r int64
			if _, err := fmt.Sscanf(out.Text(), "T %s %d %d", &proto, &w, &r); err != nil {
				return nil, fmt.Errorf("traffic line %q: %w", out.Text(), err)
			}
			m[proto] = [2]int64{w, r}
		}
		return m, out.Err()
	}
	c0, err := cpu()
	if err != nil {
		return err
	}
	t0, err := traffic()
	if err != nil {
		return err
	}
	start := time.Now()
	time.Sleep(window) // a figure, not a test: the node idles for the window
	c1, err := cpu()
	if err != nil {
		return err
	}
	t1, err := traffic()
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("idle %.0fs with %d peers: CPU %.2f%% of a core\n", secs, peers, 100*float64(c1-c0)/1e9/secs)
	procstat.PrintRates(os.Stdout, t0, t1, secs, 28)
	return nil
}
