// Command shaping measures the volunteer's budget on real coral processes:
// three `coral serve` nodes on loopback, node 0 capped at 1 MiB/s upload,
// origins for three sites (127.0.0.1, .2 and .3 as origin hosts, so the
// proxy sees three sites), and crowds of visitors reading cached 64 KiB
// objects. It prints:
//
//   - the achieved upload rate of node 0 over 20 s under many parallel
//     visitors and peers (nodes 1 and 2 fetching objects only node 0
//     holds), against the cap: cap_err_pct;
//   - Jain's fairness index of two equal-weight sites, one with a crowd of
//     32 visitors, one with 4: jain_equal (target ≥ 0.95);
//   - the share error with weights 2:1: weight_err_pct (target ≤ 10 %);
//   - the share a quiet site (one visitor asking 1/8 of the cap) keeps
//     while another site has a crowd, against what it asked for:
//     quiet_site_share (target ≥ 0.9);
//   - seconds from node 0 reaching its monthly quota until node 1's DNS no
//     longer hands it out: quota_stop_s.
//
// Bytes are counted at the visitors, as they arrive. The last line is
//
//	cap_err_pct=… jain_equal=… weight_err_pct=… quiet_site_share=… quota_stop_s=…
//
//	CORAL_BIN=bin/coral go run ./test/bench/shaping
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/test/cluster"
)

const (
	capBytes   = 1 << 20
	objectSize = 64 << 10
)

var sites = []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}

type bench struct {
	c       *cluster.Cluster
	origins map[string]string // site → host:port of its origin
	// peerOff makes the origins refuse /peer/ objects once they are
	// warmed, so every peer object delivered came from node 0.
	peerOff atomic.Bool
}

func main() {
	window := flag.Duration("window", 20*time.Second, "measurement window of the cap")
	share := flag.Duration("share", 10*time.Second, "measurement window of each fair-share run")
	flag.Parse()
	b, stop, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shaping:", err)
		os.Exit(1)
	}
	defer stop()
	capErr := b.capError(*window)
	jain := b.equalShare(*share)
	weightErr := b.weightedShare(*share)
	quiet := b.quietShare(*share)
	stopS := b.quotaStop()
	fmt.Printf("cap_err_pct=%.2f jain_equal=%.4f weight_err_pct=%.2f quiet_site_share=%.3f quota_stop_s=%.1f\n",
		capErr, jain, weightErr, quiet, stopS)
}

func setup() (*bench, func(), error) {
	b := &bench{origins: map[string]string{}}
	var servers []*http.Server
	for _, site := range sites {
		ln, err := net.Listen("tcp", site+":0")
		if err != nil {
			return nil, nil, fmt.Errorf("origin on %s: %w", site, err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(b.serveOrigin)}
		go srv.Serve(ln)
		servers = append(servers, srv)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		b.origins[site] = site + "." + port + ".localhost"
	}
	dir, _ := os.MkdirTemp("", "coral-shaping-bench")
	bin, err := cluster.BuildBinary(dir)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b.c, err = cluster.Start(ctx, cluster.Options{
		Nodes: 3, Binary: bin, Dir: dir, MinPeers: 2,
		HTTP:  func(i int) string { return fmt.Sprintf("listen = %q\n", "127.0.1."+strconv.Itoa(11+i)+":0") },
		Extra: func(int) string { return "[cache]\nallow_private_origins = true\n" },
	})
	stop := func() {
		if b.c != nil {
			b.c.Stop()
		}
		for _, s := range servers {
			s.Close()
		}
		os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return b, stop, nil
}

func (b *bench) serveOrigin(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/peer/") && b.peerOff.Load() {
		http.Error(w, "peer objects come from node 0 only", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Length", strconv.Itoa(objectSize))
	w.Write(make([]byte, objectSize))
}

// get reads one object through node, adding the bytes to *n as they
// arrive until ctx ends.
func (b *bench) get(ctx context.Context, node int, site, path string, n *atomic.Int64) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.c.Nodes[node].HTTP+path, nil)
	req.Host = b.origins[site]
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("%s %s: %s", site, path, resp.Status)
	}
	buf := make([]byte, 16<<10)
	for {
		k, err := resp.Body.Read(buf)
		n.Add(int64(k))
		if err != nil {
			return nil
		}
	}
}

// crowd runs visitors against node for site until ctx ends, each reading
// path over and over, and returns the bytes they got.
func (b *bench) crowd(ctx context.Context, wg *sync.WaitGroup, node, visitors int, site, path string) *atomic.Int64 {
	n := &atomic.Int64{}
	for range visitors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if b.get(ctx, node, site, path, n) != nil && ctx.Err() == nil {
					time.Sleep(50 * time.Millisecond) // a refused visitor retries, not spins
				}
			}
		}()
	}
	return n
}

func (b *bench) settings(node int, patch string) {
	tok, err := os.ReadFile(filepath.Join(filepath.Dir(b.c.Nodes[node].Config), "data", "control.token"))
	if err != nil {
		fail(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+b.c.Nodes[node].Control+"/api/settings", strings.NewReader(patch))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		fail(fmt.Errorf("PUT /api/settings %s: %s %s", patch, resp.Status, body))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "shaping:", err)
	os.Exit(1)
}

// warm fetches paths of site through node 0 with the cap lifted.
func (b *bench) warm(site string, paths ...string) {
	b.settings(0, `{"bandwidth": {"upload": "0"}}`)
	var n atomic.Int64
	for _, p := range paths {
		if err := b.get(context.Background(), 0, site, p, &n); err != nil {
			fail(err)
		}
	}
	b.settings(0, fmt.Sprintf(`{"bandwidth": {"upload": "%d"}}`, capBytes))
}

// capError: visitors of site 0 at node 0 and peers (nodes 1 and 2 asked
// for objects only node 0 holds, site 1) for window; the error of the
// achieved rate against the cap, in percent.
func (b *bench) capError(window time.Duration) float64 {
	const peerObjects = 400
	var paths []string
	for i := range peerObjects {
		paths = append(paths, fmt.Sprintf("/peer/%d", i))
	}
	b.warm(sites[0], "/crowd")
	b.warm(sites[1], paths...)
	b.peerOff.Store(true)
	defer b.peerOff.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), window)
	var wg sync.WaitGroup
	visitors := b.crowd(ctx, &wg, 0, 24, sites[0], "/crowd")
	peers := &atomic.Int64{}
	var next atomic.Int64
	for k := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= peerObjects {
					return
				}
				b.get(ctx, 1+k%2, sites[1], paths[i], peers)
			}
		}()
	}
	start := time.Now()
	<-ctx.Done()
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	rate := float64(visitors.Load()+peers.Load()) / elapsed.Seconds()
	fmt.Printf("cap: %.0f B/s achieved against %d B/s over %s (visitors %d B, peers %d B)\n",
		rate, capBytes, elapsed.Round(time.Millisecond), visitors.Load(), peers.Load())
	return math.Abs(rate-capBytes) / capBytes * 100
}

// run runs crowds (site → visitors) at node 0 for d and returns each
// site's bytes.
func (b *bench) run(d time.Duration, crowds map[string]int) map[string]float64 {
	for site := range crowds {
		b.warm(site, "/crowd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	got := map[string]*atomic.Int64{}
	for site, v := range crowds {
		got[site] = b.crowd(ctx, &wg, 0, v, site, "/crowd")
	}
	<-ctx.Done()
	wg.Wait()
	out := map[string]float64{}
	for site, n := range got {
		out[site] = float64(n.Load())
	}
	return out
}

func (b *bench) equalShare(d time.Duration) float64 {
	got := b.run(d, map[string]int{sites[0]: 32, sites[1]: 4})
	x, y := got[sites[0]], got[sites[1]]
	jain := (x + y) * (x + y) / (2 * (x*x + y*y))
	fmt.Printf("equal weights: crowd site %.0f B, small site %.0f B, Jain %.4f\n", x, y, jain)
	return jain
}

func (b *bench) weightedShare(d time.Duration) float64 {
	b.settings(0, fmt.Sprintf(`{"sites": [{"host": %q, "weight": 2}]}`, sites[1]))
	defer b.settings(0, `{"sites": null}`)
	got := b.run(d, map[string]int{sites[0]: 16, sites[1]: 16})
	ratio := got[sites[1]] / got[sites[0]]
	fmt.Printf("weights 2:1: %.0f B : %.0f B = %.3f : 1\n", got[sites[1]], got[sites[0]], ratio)
	return math.Abs(ratio-2) / 2 * 100
}

// quietShare: one visitor of site 2 asks for an eighth of the cap (one
// object every 1/2 s) while site 0 has a crowd.
func (b *bench) quietShare(d time.Duration) float64 {
	b.warm(sites[0], "/crowd")
	b.warm(sites[2], "/quiet")
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	b.crowd(ctx, &wg, 0, 32, sites[0], "/crowd")
	quiet := &atomic.Int64{}
	asked := 0
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	// The quiet visitor stops asking a second before the end, so every
	// object it asked for had time to arrive at its share.
	last := time.After(d - time.Second)
	for loop := true; loop; {
		select {
		case <-last:
			loop = false
		case <-tick.C:
			asked += objectSize
			wg.Add(1)
			go func() { defer wg.Done(); b.get(ctx, 0, sites[2], "/quiet", quiet) }()
		}
	}
	tick.Stop()
	<-ctx.Done()
	wg.Wait()
	share := float64(quiet.Load()) / float64(asked)
	fmt.Printf("quiet site: got %d of %d B asked in %s beside a crowd\n", quiet.Load(), asked, time.Since(start).Round(time.Millisecond))
	return share
}
