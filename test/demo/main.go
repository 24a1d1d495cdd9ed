// Command demo shows what Coral is for in under a minute: it starts a small
// Coral network on this machine (5 `coral serve` processes on loopback), a
// slow origin web server (a home DSL line: 1 Mbit/s up) and a growing crowd
// of visitors asking the proxies for the origin's files. Every second it
// prints how many visitors were served and from where, next to how few
// requests reached the origin. It prints URLs to try with curl while it
// runs, stops by itself after -duration (or on Ctrl-C) and always cleans
// up its processes and files.
//
//	go run ./test/demo            (make demo)
//	go run ./test/demo -nodes 8 -duration 2m -peak 80
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/test/bench/flashcrowd/crowd"
	"github.com/coralcdn/coral/test/cluster"
)

func main() {
	nodes := flag.Int("nodes", 5, "coral processes to start")
	duration := flag.Duration("duration", 45*time.Second, "how long the crowd runs")
	peak := flag.Float64("peak", 40, "visitors per second the crowd grows to")
	nfiles := flag.Int("files", 8, "files on the origin")
	rateBits := flag.Float64("rate", 1e6, "origin upload limit in bits per second")
	bin := flag.String("bin", "", "coral binary (default: go build into a temp dir)")
	flag.Parse()
	if *nodes < 1 || *nfiles < 1 || *peak <= 0 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "demo: -nodes, -files, -peak and -duration must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *nodes, *nfiles, *duration, *peak, *rateBits, *bin)
	stop()
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// tally counts what the visitors got.
type tally struct {
	started, inFlight      atomic.Int64
	hit, peer, miss, other atomic.Int64
	failed, bytes          atomic.Int64
	mu                     sync.Mutex
	firstErr               error
	cut                    []waiter // visitors the end of the demo cut off
}

type waiter struct {
	node  int
	path  string
	since time.Time
}

func (t *tally) add(o crowd.Outcome, size int) {
	if o.Err != nil {
		t.failed.Add(1)
		t.mu.Lock()
		if t.firstErr == nil {
			t.firstErr = o.Err
		}
		t.mu.Unlock()
		return
	}
	t.bytes.Add(int64(size))
	switch o.Cache {
	case "HIT":
		t.hit.Add(1)
	case "PEER":
		t.peer.Add(1)
	case "MISS":
		t.miss.Add(1)
	default:
		t.other.Add(1)
	}
}

func (t *tally) served() int64 { return t.hit.Load() + t.peer.Load() + t.miss.Load() + t.other.Load() }

func run(ctx context.Context, nodes, nfiles int, duration time.Duration, peak, rateBits float64, bin string) error {
	dir, err := os.MkdirTemp("", "coral-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		fmt.Println("building coral ...")
		if bin, err = crowd.BuildCoral(ctx, dir); err != nil {
			return err
		}
	}
	files := crowd.MakeFiles(nfiles, 20<<10, 400<<10)
	origin, err := crowd.StartOrigin(files, rateBits, time.Hour)
	if err != nil {
		return err
	}
	defer origin.Close()

	fmt.Printf("starting %d Coral nodes on this machine ...\n", nodes)
	logFile, err := os.Create(filepath.Join(dir, "nodes.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	defer scancel()
	c, err := cluster.Start(sctx, cluster.Options{
		Nodes: nodes, Binary: bin, Dir: dir, Log: &syncWriter{w: logFile},
		Extra: func(int) string { return crowd.NodeConfig(true, "warn") },
	})
	if err != nil {
		return fmt.Errorf("%w (node output: %s)", err, filepath.Join(dir, "nodes.log"))
	}
	defer c.Stop()
	if _, err := crowd.WaitRouting(sctx, c.Nodes, nodes-1); err != nil {
		return err
	}
	u, err := coralurl.CoralizeURL(origin.URL, "localhost", "")
	if err != nil {
		return err
	}
	host := u.Host

	fmt.Printf(`
The origin %s is a home web server: %d files (20 KiB to 400 KiB) behind an
upload of %s. Visitors do not go there; they go to the Coral proxies,
which fetch each file once and share it among themselves.

Proxies (each has a status page at its control address):
`, origin.URL, nfiles, rateString(rateBits))
	for _, n := range c.Nodes {
		fmt.Printf("  node %d  proxy http://%s   status http://%s/\n", n.Index, n.HTTP, n.Control)
	}
	fmt.Printf(`
Try it while the demo runs (X-Coral-Cache says where the answer came from,
X-Coral-Trace how the proxy found it):
  curl -s -o /dev/null -D - -H 'Host: %s' -H 'X-Coral-Debug: 1' http://%s%s
  curl -s -o /dev/null -D - http://%s:%s%s     (the Coralized name itself; *.localhost is this machine)

The crowd grows to %.0f visitors a second for %s (Ctrl-C stops it early).

`, host, c.Nodes[len(c.Nodes)-1].HTTP, files[0].Path, host, port(c.Nodes[0].HTTP), files[0].Path, peak, duration)

	var t tally
	cctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, 256) // visitors waiting at once
	rng := rand.New(rand.NewPCG(7, 7))
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(nfiles-1))
	start := time.Now()
	arrivals := time.NewTicker(20 * time.Millisecond)
	defer arrivals.Stop()
	report := time.NewTicker(time.Second)
	defer report.Stop()
	var owed float64
	fmt.Println("Every second: visitors served so far, split by where their proxy got the answer (its own cache,")
	fmt.Println("another proxy, or an origin fetch it made for them, which several visitors may share), and what")
	fmt.Println("reached the origin.")
	fmt.Println()
	fmt.Println("  time   visitors served (cache / peer / origin)  waiting | ORIGIN requests     sent | visitors received")
	for {
		select {
		case <-cctx.Done():
			cancel()
			wg.Wait()
			line(&t, origin, time.Since(start))
			summary(ctx, &t, origin, c, rateBits)
			return nil
		case <-report.C:
			line(&t, origin, time.Since(start))
		case <-arrivals.C:
			// The crowd ramps up linearly over the first third, then holds.
			frac := min(1, time.Since(start).Seconds()/(duration.Seconds()/3))
			owed += (1 + (peak-1)*frac) * 0.02
			for ; owed >= 1; owed-- {
				select {
				case slots <- struct{}{}:
				default:
					continue // the crowd is bigger than this machine lets us wait on
				}
				n := c.Nodes[rng.IntN(len(c.Nodes))]
				f := files[zipf.Uint64()]
				t.started.Add(1)
				t.inFlight.Add(1)
				w := &waiter{node: n.Index, path: f.Path, since: time.Now()}
				wg.Go(func() {
					defer func() { <-slots; t.inFlight.Add(-1) }()
					o := crowd.Visit(cctx, client, n.HTTP, host, f)
					t.mu.Lock()
					cut := o.Err != nil && cctx.Err() != nil
					if cut {
						t.cut = append(t.cut, *w)
					}
					t.mu.Unlock()
					if cut {
						return // neither served nor failed
					}
					t.add(o, len(f.Body))
				})
			}
		}
	}
}

func line(t *tally, origin *crowd.Origin, since time.Duration) {
	fmt.Printf("  %3.0fs   %15d (%5d / %4d / %6d)  %7d | %15d %6.2f MiB | %11.2f MiB\n",
		since.Seconds(), t.served(), t.hit.Load(), t.peer.Load(), t.miss.Load(), t.inFlight.Load(),
		origin.TotalRequests(), float64(origin.BytesSent())/(1<<20), float64(t.bytes.Load())/(1<<20))
}

func summary(ctx context.Context, t *tally, origin *crowd.Origin, c *cluster.Cluster, rateBits float64) {
	served, got := t.served(), t.bytes.Load()
	fmt.Printf("\n%d visitors were served %.1f MiB; the origin answered %d requests and sent %.2f MiB.\n",
		served, float64(got)/(1<<20), origin.TotalRequests(), float64(origin.BytesSent())/(1<<20))
	if rateBits > 0 && got > 0 {
		fmt.Printf("Without Coral the origin would have had to send all %.1f MiB itself: %.0f minutes at %s.\n",
			float64(got)/(1<<20), float64(got)*8/rateBits/60, rateString(rateBits))
	}
	t.mu.Lock()
	if len(t.cut) > 0 {
		longest := t.cut[0]
		for _, w := range t.cut {
			if w.since.Before(longest.since) {
				longest = w
			}
		}
		fmt.Printf("%d visitors were still waiting when the demo ended (the longest for %.0fs, on node %d for %s).\n",
			len(t.cut), time.Since(longest.since).Seconds(), longest.node, longest.path)
	}
	t.mu.Unlock()
	if f := t.failed.Load(); f > 0 {
		t.mu.Lock()
		fmt.Printf("%d visitors failed (first error: %v)\n", f, t.firstErr)
		t.mu.Unlock()
	}
	// ctx may be cancelled (Ctrl-C); the nodes still answer until stopped.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	sts, _ := crowd.Statuses(sctx, c.Nodes)
	fmt.Println("Per proxy (from /api/status): requests, answered from its cache, from another proxy, from the origin")
	for i, st := range sts {
		p := st.Proxy
		fmt.Printf("  node %d: %5d requests, %5d cache, %4d peer, %3d origin\n", i, p.Requests, p.Hits, p.Peer, p.Misses)
	}
	fmt.Println("stopping the nodes ...")
}

func port(hostport string) string {
	_, p := coralurl.StripPort(hostport)
	return p
}

func rateString(bits float64) string {
	if bits <= 0 {
		return "no limit"
	}
	return fmt.Sprintf("%.1f Mbit/s", bits/1e6)
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
