package dsht

import "testing"

func TestDecideCluster(t *testing.T) {
	p := clusterParams{Fraction: 0.8, MinSamples: 3, Hysteresis: 3}
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
			name:  "joins an acceptable larger cluster",
			cur:   view(mid, 1, 0, 0),
			alone: true,
			cands: []clusterView{view(high, 50, 5, 5)},
			want:  clusterDecision{Join: high, Change: true},
		},
		{
			name:  "80% within is acceptable",
			cur:   view(mid, 10, 4, 4),
			cands: []clusterView{view(high, 50, 10, 8)},
			want:  clusterDecision{Join: high, Change: true},
		},
		{
			name:  "below 80% within is not",
			cur:   view(mid, 10, 4, 4),
			cands: []clusterView{view(high, 50, 10, 7)},
		},
		{
			name:  "prefers the larger of two acceptable clusters",
			cur:   view(mid, 1, 0, 0),
			alone: true,
			cands: []clusterView{view(low, 20, 5, 5), view(high, 90, 5, 5)},
			want:  clusterDecision{Join: high, Change: true},
		},
		{
			name:  "comparable sizes: the lower ID wins",
			cur:   view(high, 100, 10, 10),
			cands: []clusterView{view(low, 80, 10, 10)},
			want:  clusterDecision{Join: low, Change: true},
		},
		{
			name:  "comparable sizes: the lower-ID side stays",
			cur:   view(low, 80, 10, 10),
			cands: []clusterView{view(high, 100, 10, 10)},
		},
		{
			name:  "a clearly smaller cluster does not attract, whatever its ID",
			cur:   view(high, 100, 10, 10),
			cands: []clusterView{view(low, 20, 10, 10)},
		},
		{
			name:  "leaves an unacceptable cluster for an acceptable one",
			cur:   view(mid, 100, 10, 2),
			cands: []clusterView{view(low, 5, 3, 3)},
			want:  clusterDecision{Join: low, Change: true},
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
			name:  "a promising larger cluster without samples is sampled",
			cur:   view(mid, 10, 5, 5),
			cands: []clusterView{view(high, 50, 1, 1), view(low, 60, 0, 0)},
			want:  clusterDecision{Sample: low, NeedSample: true},
		},
		{
			name:  "a far cluster is neither joined nor sampled",
			cur:   view(mid, 10, 5, 5),
			cands: []clusterView{view(high, 500, 2, 0)},
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

// Between any two clusters at most one side wants to move, or members would
// swap back and forth forever.
func TestClusterPreferenceIsAntisymmetric(t *testing.T) {
	p := clusterParams{Fraction: 0.8, MinSamples: 3, Hysteresis: 3}
	for a := int64(1); a < 200; a += 7 {
		for b := int64(1); b < 200; b += 5 {
			x, y := clusterView{ID: ID{1}, Size: a}, clusterView{ID: ID{2}, Size: b}
			if p.better(x, y) && p.better(y, x) {
				t.Fatalf("sizes %d and %d: each prefers the other", a, b)
			}
			if !p.better(x, y) && !p.better(y, x) {
				t.Fatalf("sizes %d and %d: neither is preferred", a, b)
			}
		}
	}
}
