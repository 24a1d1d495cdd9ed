package crowd

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/coralcdn/coral/test/cluster"
)

// Regions plants latency clusters among nodes on loopback: node i is in
// region i mod N and listens for libp2p on 127.0.<region+1>.<i/N+1>; the
// nodes' [p2p] emulate_rtt makes a round trip inside a region take Inside
// and one across regions Across. N < 2 plants nothing.
//
// Dilate (>= 1) stretches time for a loaded machine: the planted RTTs and
// the nodes' level thresholds (20 ms, 60 ms) are all multiplied by it, so
// that tens of processes sharing two cores, whose scheduling delays add
// tens of milliseconds to every measured round trip, still see the
// planted regions and not the noise.
type Regions struct {
	N              int
	Inside, Across time.Duration
	Dilate         int
}

func (r Regions) dilate() time.Duration { return time.Duration(max(r.Dilate, 1)) }

// Planted reports whether there are regions at all.
func (r Regions) Planted() bool { return r.N > 1 }

// Of is node i's region.
func (r Regions) Of(i int) int {
	if !r.Planted() {
		return 0
	}
	return i % r.N
}

// IP is node i's libp2p address.
func (r Regions) IP(i int) string {
	if !r.Planted() {
		return "127.0.0.1"
	}
	return fmt.Sprintf("127.0.%d.%d", r.Of(i)+1, i/r.N+1)
}

// Config is the [p2p] emulate_rtt line for every node (empty when nothing
// is planted): one rule per region, then one for everything else.
func (r Regions) Config() string {
	if !r.Planted() {
		return ""
	}
	var rules []string
	for k := 0; k < r.N; k++ {
		p := fmt.Sprintf("127.0.%d.0/24", k+1)
		rules = append(rules, fmt.Sprintf("{ a = %q, b = %q, rtt = %q }", p, p, (r.Inside*r.dilate()).String()))
	}
	rules = append(rules, fmt.Sprintf("{ a = \"127.0.0.0/8\", b = \"127.0.0.0/8\", rtt = %q }", (r.Across*r.dilate()).String()))
	return "emulate_rtt = [" + strings.Join(rules, ", ") + "]\n"
}

// DSHTConfig is the [dsht] table with the level thresholds dilated (empty
// when nothing is planted or time is not dilated).
func (r Regions) DSHTConfig() string {
	if !r.Planted() || r.dilate() == 1 {
		return ""
	}
	return fmt.Sprintf("[dsht]\nlevel2_rtt = %q\nlevel1_rtt = %q\n", (20 * time.Millisecond * r.dilate()).String(), (60 * time.Millisecond * r.dilate()).String())
}

func (r Regions) String() string {
	if !r.Planted() {
		return "none (every node on 127.0.0.1, no planted latency)"
	}
	s := fmt.Sprintf("%d regions, RTT %s inside a region and %s across (planted in-process)", r.N, r.Inside, r.Across)
	if d := r.dilate(); d > 1 {
		s += fmt.Sprintf("; time dilated x%d for this machine: planted %s / %s, level thresholds %s / %s",
			d, r.Inside*d, r.Across*d, 20*time.Millisecond*d, 60*time.Millisecond*d)
	}
	return s
}

// WaitClusters waits until the nodes' level-2 clusters are the planted
// regions: the same cluster ID for every node of a region, a different one
// for every region. It returns how many nodes are in their region's
// majority cluster when ctx ends first. Every 30 s it writes progress to
// w: the nodes matched and the clusters at levels 2 and 1.
func (r Regions) WaitClusters(ctx context.Context, nodes []*cluster.Node, w io.Writer) (matched int, err error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start, shown := time.Now(), time.Now()
	for {
		// Each poll gets its own deadline: one cut short by ctx would
		// report every node as unclustered.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		sts, _ := Statuses(pctx, nodes)
		cancel()
		matched = 0
		majority := map[int]map[string]int{}
		ids := make([]string, len(nodes))
		for i, s := range sts {
			if s.DSHT == nil || len(s.DSHT.Levels) < 3 {
				continue
			}
			ids[i] = s.DSHT.Levels[2].ClusterID
			if majority[r.Of(i)] == nil {
				majority[r.Of(i)] = map[string]int{}
			}
			majority[r.Of(i)][ids[i]]++
		}
		owner := map[string]int{} // cluster ID -> the region it is the majority of
		best := map[int]string{}
		for reg, counts := range majority {
			for id, k := range counts {
				if id != "" && k > counts[best[reg]] {
					best[reg] = id
				}
			}
			owner[best[reg]]++
		}
		for i, id := range ids {
			if id != "" && id == best[r.Of(i)] && owner[id] == 1 {
				matched++
			}
		}
		if matched == len(nodes) {
			return matched, nil
		}
		if time.Since(shown) >= 30*time.Second {
			shown = time.Now()
			fmt.Fprintf(w, "  %3.0fs: %d of %d nodes in their region's level-2 cluster; %s\n",
				time.Since(start).Seconds(), matched, len(nodes), Levels(sts))
		}
		select {
		case <-ctx.Done():
			return matched, ctx.Err()
		case <-tick.C:
		}
	}
}

var peerSource = regexp.MustCompile(`from peer (\S+) L\d`)

// PeerSource is the (short) peer ID a PEER response came from, from its
// X-Coral-Trace, or "".
func PeerSource(trace string) string {
	m := peerSource.FindAllStringSubmatch(trace, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}
