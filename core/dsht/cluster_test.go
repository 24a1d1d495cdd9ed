package dsht

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

func TestDecideCluster(t *testing.T) {
	p := clusterParams{Fraction: 0.8, MinSamples: 3}
	low, mid, high := ID{1}, ID{5}, ID{9}
	view := func(id ID, size int64, sampled, within int) clusterView {
		return clusterView{ID: id, Size: size, Sampled: sampled, Within: within}
	}
	tests := []struct {
		name  string
		cur   clusterView
		alone bool
		cands []clusterView
		want  clusterDecision
	}{
		{
			name:  "alone with no candidates stays",
			cur:   view(mid, 1, 0, 0),
			alone: true,
		},
		{
			name:  "alone: joins an acceptable older cluster",
			cur:   view(mid, 1, 0, 0),
			alone: true,
			cands: []clusterView{view(low, 50, 5, 5)},
			want:  clusterDecision{Join: low, Change: true},
		},
		{
			name:  "alone: a newer cluster does not attract",
			cur:   view(mid, 1, 0, 0),
			alone: true,
			cands: []clusterView{view(high, 50, 5, 5)},
		},
		{
			name:  "80% within is acceptable",
			cur:   view(mid, 10, 4, 4),
			cands: []clusterView{view(low, 50, 10, 8)},
			want:  clusterDecision{Join: low, Change: true},
		},
		{
			name:  "below 80% within is not",
			cur:   view(mid, 10, 4, 4),
			cands: []clusterView{view(low, 50, 10, 7)},
		},
		{
			name:  "prefers the older of two acceptable clusters, whatever their sizes",
			cur:   view(high, 1, 0, 0),
			alone: true,
			cands: []clusterView{view(low, 20, 5, 5), view(mid, 90, 5, 5)},
			want:  clusterDecision{Join: low, Change: true},
		},
		{
			name:  "a larger newer cluster joins a smaller older one",
			cur:   view(high, 1432, 10, 10),
			cands: []clusterView{view(low, 568, 10, 10)},
			want:  clusterDecision{Join: low, Change: true},
		},
		{
			name:  "a smaller older cluster stays, whatever the other's size",
			cur:   view(low, 568, 10, 10),
			cands: []clusterView{view(high, 100000, 10, 10)},
		},
		{
			name:  "leaves an unacceptable cluster for an acceptable one, even a newer one",
			cur:   view(mid, 100, 10, 2),
			cands: []clusterView{view(high, 5, 3, 3)},
			want:  clusterDecision{Join: high, Change: true},
		},
		{
			name: "leaves an unacceptable cluster for a new one when nothing fits",
			cur:  view(mid, 100, 10, 2),
			want: clusterDecision{Leave: true},
		},
		{
			name: "too few samples of its own cluster to leave it",
			cur:  view(mid, 100, 2, 0),
		},
		{
			name:  "a promising older cluster without samples is sampled",
			cur:   view(high, 10, 5, 5),
			cands: []clusterView{view(mid, 50, 1, 1), view(low, 60, 0, 0)},
			want:  clusterDecision{Sample: low, NeedSample: true},
		},
		{
			name:  "a far cluster is neither joined nor sampled",
			cur:   view(mid, 10, 5, 5),
			cands: []clusterView{view(low, 500, 2, 0)},
		},
		{
			name:  "a small cluster needs only its members as samples",
			cur:   view(mid, 1, 0, 0),
			alone: true,
			cands: []clusterView{view(low, 1, 1, 1)},
			want:  clusterDecision{Join: low, Change: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideCluster(tt.cur, tt.alone, tt.cands, p); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Between any two clusters exactly one side wants to move, even when the
// two sides' size estimates disagree (each side judges from its own): with
// none, two halves of a region stay apart for good; with both, members swap
// back and forth.
func TestClusterPreferenceIsAntisymmetric(t *testing.T) {
	p := clusterParams{Fraction: 0.8, MinSamples: 3}
	sizes := []int64{1, 2, 20, 568, 775, 1225, 1432, 2000}
	for _, xa := range sizes { // x's members' estimates
		for _, xb := range sizes {
			for _, ya := range sizes { // y's members' estimates
				for _, yb := range sizes {
					xMoves := p.better(clusterView{ID: ID{2}, Size: xb}, clusterView{ID: ID{1}, Size: xa})
					yMoves := p.better(clusterView{ID: ID{1}, Size: ya}, clusterView{ID: ID{2}, Size: yb})
					if xMoves == yMoves {
						t.Fatalf("x sees %d vs %d, y sees %d vs %d: moves x %v, y %v", xa, xb, ya, yb, xMoves, yMoves)
					}
				}
			}
		}
	}
}

// directNet hands each request straight to the addressed node (an internal
// test cannot use dshttest, which imports this package).
type directNet struct {
	nodes map[string]*Node
	self  NodeInfo
}

func (d directNet) Call(ctx context.Context, to NodeInfo, req *Request) (*Response, error) {
	n := d.nodes[to.Addr]
	if n == nil {
		return nil, errors.New("directNet: unknown node")
	}
	return n.HandleRPC(ctx, d.self, req)
}

// A peer measured once above a level's threshold is measured again before
// it counts against its cluster. One sample can carry a dial, a busy
// host's scheduling delay or a collector's pause, and nothing measures a
// node again soon: at 100 nodes on one machine such samples left a third
// of a cluster's members "far" and the cluster unacceptable for minutes.
func TestOneSlowSampleIsMeasuredAgain(t *testing.T) {
	const threshold = 160 * time.Millisecond
	nodes := map[string]*Node{}
	newNode := func(name string) *Node {
		self := NodeInfo{ID: NodeID([]byte(name)), Addr: name}
		cfg := DefaultConfig(self)
		cfg.Levels = []time.Duration{0, 3 * threshold, threshold}
		n, err := New(cfg, directNet{nodes: nodes, self: self})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[name] = n
		return n
	}
	b, c, a := newNode("b"), newNode("c"), newNode("a") // b's clusters are the oldest
	x := b.Cluster(2)
	c.locked(func() { c.levels[2].cluster = x })
	// a hears b and c claim cluster x (their requests carry the claims)
	// and has measured each once: b near, c far by an unlucky sample.
	ctx := context.Background()
	for _, p := range []*Node{b, c} {
		claims := []ClusterInfo{{Level: 1, ID: p.Cluster(1), Size: 2}, {Level: 2, ID: x, Size: 2}}
		if _, err := a.HandleRPC(ctx, p.Self(), &Request{Op: OpPing, Clusters: claims}); err != nil {
			t.Fatal(err)
		}
	}
	a.Observe(b.Self(), 5*time.Millisecond)
	a.Observe(c.Self(), 2*threshold)
	a.locked(func() { a.evaluateCluster(2, true) })
	testkit.Eventually(t, 5*time.Second, "a to join b and c's cluster", func() bool { return a.Cluster(2) == x })
}
