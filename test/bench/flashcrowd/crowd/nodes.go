package crowd

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// BuildCoral compiles the coral command into dir and returns its path.
// It must run inside the module (as `go run ./test/...` does).
func BuildCoral(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "coral")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/coralcdn/coral/app/cmd/coral")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("crowd: build coral: %w", err)
	}
	return bin, nil
}

// NodeConfig is the TOML every node appends to its generated config
// (cluster.Options.Extra). The generated file ends inside [p2p], so the
// first line still belongs to that table.
func NodeConfig(putGet bool, logLevel string) string {
	return fmt.Sprintf("put_get = %t\n[cache]\nallow_private_origins = true\n[log]\nlevel = %q\n", putGet, logLevel)
}

// Statuses fetches every node's /api/status at once; a node that does not
// answer leaves a zero Status and is counted in failed.
func Statuses(ctx context.Context, nodes []*cluster.Node) (sts []control.Status, failed int) {
	sts = make([]control.Status, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() { sts[i], errs[i] = n.Status(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	return sts, failed
}

// SumProxy adds up the proxies' counters.
func SumProxy(sts []control.Status) control.ProxyStatus {
	var t control.ProxyStatus
	for _, s := range sts {
		p := s.Proxy
		t.Requests += p.Requests
		t.Hits += p.Hits
		t.Misses += p.Misses
		t.Stale += p.Stale
		t.Revalidated += p.Revalidated
		t.Peer += p.Peer
		t.OriginFetches += p.OriginFetches
		t.Errors += p.Errors
		t.BytesServed += p.BytesServed
		t.InFlight += p.InFlight
		t.CoalescedWaits += p.CoalescedWaits
	}
	return t
}

// RoutingSizes returns each node's level-0 (global) routing table size.
func RoutingSizes(sts []control.Status) []int {
	out := make([]int, len(sts))
	for i, s := range sts {
		if s.DSHT != nil && len(s.DSHT.Levels) > 0 {
			out[i] = s.DSHT.Levels[0].RoutingSize
		}
	}
	return out
}

// WaitRouting polls until every node's global routing table holds at least
// want nodes, or ctx ends; it returns the smallest size seen last.
func WaitRouting(ctx context.Context, nodes []*cluster.Node, want int) (int, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		sts, _ := Statuses(ctx, nodes)
		sizes := RoutingSizes(sts)
		least := slices.Min(sizes)
		if least >= want {
			return least, nil
		}
		select {
		case <-ctx.Done():
			return least, fmt.Errorf("crowd: routing tables did not fill (smallest %d, want %d): %w", least, want, ctx.Err())
		case <-tick.C:
		}
	}
}

// Levels describes the DSHT clusters: for each level, how many distinct
// clusters the nodes are in and the largest cluster size a node reports.
func Levels(sts []control.Status) string {
	var parts []string
	for l := 0; ; l++ {
		ids := map[string]bool{}
		largest, seen, alone := 0, false, 0
		var routing []int
		for _, s := range sts {
			if s.DSHT == nil || len(s.DSHT.Levels) <= l {
				continue
			}
			seen = true
			ls := s.DSHT.Levels[l]
			ids[ls.ClusterID] = true
			largest = max(largest, ls.ClusterSize)
			routing = append(routing, ls.RoutingSize)
			if ls.RoutingSize == 0 {
				alone++
			}
		}
		if !seen {
			break
		}
		slices.Sort(routing)
		parts = append(parts, fmt.Sprintf("level %d: %d cluster(s), largest size %d, routing min/median %d/%d, %d node(s) alone",
			l, len(ids), largest, routing[0], routing[len(routing)/2], alone))
	}
	return strings.Join(parts, "; ")
}

// RSS reads a node's resident memory from its Prometheus metrics.
func RSS(ctx context.Context, n *cluster.Node) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.Control+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f), err
		}
	}
	return 0, fmt.Errorf("crowd: node %d: no process_resident_memory_bytes in /metrics", n.Index)
}

// Memory is the nodes' resident memory at one moment.
type Memory struct {
	Total, Max int64
	Nodes      int
}

func (m Memory) String() string {
	if m.Nodes == 0 {
		return "unknown"
	}
	return fmt.Sprintf("total %d MiB, mean %d MiB, max %d MiB over %d nodes",
		m.Total>>20, m.Total/int64(m.Nodes)>>20, m.Max>>20, m.Nodes)
}

// SampleMemory reads every node's RSS at once.
func SampleMemory(ctx context.Context, nodes []*cluster.Node) Memory {
	var mu sync.Mutex
	var m Memory
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			v, err := RSS(ctx, n)
			if err != nil {
				return
			}
			mu.Lock()
			m.Total += v
			m.Max = max(m.Max, v)
			m.Nodes++
			mu.Unlock()
		})
	}
	wg.Wait()
	return m
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds, which
// it sorts; 0 for no samples.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(float64(len(ds))*p/100)) - 1
	return ds[max(0, min(rank, len(ds)-1))]
}

// Millis formats a duration as whole milliseconds.
func Millis(d time.Duration) int64 { return d.Milliseconds() }
