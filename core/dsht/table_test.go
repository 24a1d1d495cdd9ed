package dsht

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
)

func nodeIDs(n int, seed uint64) []ID {
	out := make([]ID, n)
	for i := range out {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], seed)
		binary.BigEndian.PutUint64(b[8:], uint64(i))
		out[i] = sha256.Sum256(b[:])
	}
	return out
}

func bruteClosest(ids []ID, target kadID, n int) []ID {
	s := slices.Clone(ids)
	slices.SortFunc(s, byDistance(target))
	return s[:min(n, len(s))]
}

func TestTableClosestMatchesBruteForce(t *testing.T) {
	self := ID{0xaa}
	tb := newTable(self, 20)
	var in []ID
	for _, id := range nodeIDs(2000, 7) {
		if tb.add(id, kadOf(id)) {
			in = append(in, id)
		}
	}
	if tb.size() != len(in) || tb.size() != len(tb.list()) {
		t.Fatalf("size %d, added %d, listed %d", tb.size(), len(in), len(tb.list()))
	}
	// A full bucket refuses newcomers: far fewer than 2000 fit.
	if tb.size() > 20*12 {
		t.Fatalf("table holds %d nodes; buckets of 20 should cap it", tb.size())
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		var target kadID
		for i := 0; i < 32; i += 8 {
			binary.BigEndian.PutUint64(target[i:], r.Uint64())
		}
		for _, n := range []int{1, 3, 20, 28} {
			got, want := tb.closest(target, n), bruteClosest(in, target, n)
			if !slices.Equal(got, want) {
				t.Fatalf("closest(%x, %d) differs from brute force", target[:4], n)
			}
		}
	}
	// Removal frees the member's place.
	for _, id := range in[:len(in)/2] {
		tb.remove(id)
	}
	rest := in[len(in)/2:]
	if tb.size() != len(rest) || tb.has(in[0]) || !tb.has(rest[0]) {
		t.Fatalf("after removal: size %d want %d", tb.size(), len(rest))
	}
	if got, want := tb.closest(kadOf(self), 5), bruteClosest(rest, kadOf(self), 5); !slices.Equal(got, want) {
		t.Fatal("closest after removal differs from brute force")
	}
	tb.clear()
	if tb.size() != 0 || len(tb.list()) != 0 || tb.has(rest[0]) {
		t.Fatalf("clear left %d", tb.size())
	}
}

func TestTableEstimateSize(t *testing.T) {
	for _, n := range []int{5, 200, 1000, 10000} {
		ids := nodeIDs(n, uint64(n))
		tb := newTable(ids[0], 20)
		for _, id := range ids[1:] {
			tb.add(id, kadOf(id))
		}
		est := tb.estimateSize(20, nil)
		if est < int64(n)/2 || est > int64(n)*2 {
			t.Errorf("%d nodes: estimated %d", n, est)
		}
		// Only members the filter keeps count.
		half := tb.estimateSize(20, func(id ID) bool { return id[0]&1 == 0 })
		if n >= 1000 && (half < int64(n)/4 || half > int64(n)) {
			t.Errorf("%d nodes, half kept: estimated %d", n, half)
		}
	}
}

func TestRandomKadWithCpl(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	self := kadOf(ID{9})
	for c := 0; c < 40; c++ {
		k := randomKadWithCpl(self, c, r.Uint64)
		if got := cpl(self, k); got != c {
			t.Fatalf("cpl %d: got %d", c, got)
		}
	}
}

// A group of k members sharing a prefix length with self refuses the next
// node of that length (Kademlia keeps its long-lived entries) and admits it
// once a member leaves; other lengths are unaffected.
func TestTableFullGroupRefusesNewcomers(t *testing.T) {
	const k = 4
	self := ID{0x42}
	tb := newTable(self, k)
	byCpl := map[int][]ID{}
	for _, id := range nodeIDs(400, 11) {
		c := cpl(kadOf(self), kadOf(id))
		byCpl[c] = append(byCpl[c], id)
	}
	group := byCpl[1] // about a quarter of all nodes share exactly one bit
	if len(group) < k+1 {
		t.Fatalf("test data: only %d ids with cpl 1", len(group))
	}
	for i, id := range group[:k] {
		if !tb.add(id, kadOf(id)) {
			t.Fatalf("member %d of a group with room was refused", i)
		}
	}
	newcomer := group[k]
	if tb.add(newcomer, kadOf(newcomer)) {
		t.Fatal("a full group admitted a newcomer")
	}
	if got := tb.bucketFill(1); got != k {
		t.Fatalf("bucketFill(1) = %d, want %d", got, k)
	}
	if other := byCpl[0][0]; !tb.add(other, kadOf(other)) {
		t.Fatal("a node of another prefix length was refused")
	}
	if tb.add(group[0], kadOf(group[0])) {
		t.Fatal("a member was added twice")
	}
	tb.remove(group[0])
	if !tb.add(newcomer, kadOf(newcomer)) {
		t.Fatal("the newcomer was refused after a member left")
	}
	if tb.add(self, kadOf(self)) {
		t.Fatal("the table admitted its own node")
	}
}

// BenchmarkClosest is the nearest-node query every find_node answer runs:
// a full table of 10,000 known nodes, K+8 nearest to a random target.
func BenchmarkClosest(b *testing.B) {
	ids := nodeIDs(10000, 7)
	t := newTable(ids[0], 20)
	for _, id := range ids[1:] {
		t.add(id, kadOf(id))
	}
	targets := make([]kadID, 256)
	for i := range targets {
		targets[i] = kadOf(nodeIDs(1, uint64(1000+i))[0])
	}
	b.ResetTimer()
	for i := range b.N {
		t.closest(targets[i%len(targets)], 28)
	}
}
