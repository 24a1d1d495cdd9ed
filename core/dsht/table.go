package dsht

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
)

// kadID is a position in the routing space: a node's position is
// SHA-256(node ID), a key's is SHA-256(key ID). Hashing spreads IDs that are
// not uniform themselves (the simulator's, or IDs derived from structured
// transport identities) evenly over the space; the relabelling is fixed, so
// XOR distance, buckets and lookups behave exactly as in Kademlia.
type kadID [32]byte

func kadOf(id ID) kadID { return sha256.Sum256(id[:]) }

func xorKad(a, b kadID) kadID {
	var d kadID
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

func lessKad(a, b kadID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// byDistance orders IDs by their distance to target, nearest first (a
// comparison function for slices.SortFunc).
func byDistance(target kadID) func(a, b ID) int {
	return func(a, b ID) int {
		da, db := xorKad(kadOf(a), target), xorKad(kadOf(b), target)
		switch {
		case lessKad(da, db):
			return -1
		case lessKad(db, da):
			return 1
		}
		return 0
	}
}

// cpl is the common prefix length of two positions.
func cpl(a, b kadID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			n := 0
			for x&0x80 == 0 {
				x <<= 1
				n++
			}
			return i*8 + n
		}
	}
	return 256
}

// table is one level's Kademlia routing table: members grouped by the
// length of the prefix they share with self, at most k per group, with
// their positions precomputed (nearest-node queries run millions of times
// in the simulator). A full group refuses newcomers: Kademlia keeps its
// long-lived entries, which are the likeliest to stay up. This is the
// membership a splitting k-bucket table (go-libp2p-kbucket's) reaches: there
// a bucket below the last holds exactly the members of one prefix length,
// and the last one splits until the newcomer's group has room.
type table struct {
	k       int
	self    kadID
	idx     map[ID]slot
	buckets [][]member // by common prefix length with self, grown on demand
	n       int
}

type slot struct{ b, i int }

type member struct {
	id ID
	w  dist // position as words (see dist)
}

func newTable(self ID, k int) *table {
	return &table{k: k, self: kadOf(self), idx: map[ID]slot{}}
}

// add inserts a node (kad is its position) that answered or contacted this
// node, unless it is already there or its group is full.
func (t *table) add(id ID, kad kadID) bool {
	if _, ok := t.idx[id]; ok {
		return false
	}
	b := cpl(t.self, kad)
	if b == 256 { // self
		return false
	}
	for len(t.buckets) <= b {
		t.buckets = append(t.buckets, nil)
	}
	if len(t.buckets[b]) >= t.k {
		return false
	}
	t.idx[id] = slot{b, len(t.buckets[b])}
	t.buckets[b] = append(t.buckets[b], member{id: id, w: words(kad)})
	t.n++
	return true
}

func (t *table) remove(id ID) {
	s, ok := t.idx[id]
	if !ok {
		return
	}
	bk := t.buckets[s.b]
	last := len(bk) - 1
	bk[s.i] = bk[last]
	t.idx[bk[s.i].id] = s
	t.buckets[s.b] = bk[:last]
	delete(t.idx, id)
	t.n--
}

func (t *table) has(id ID) bool {
	_, ok := t.idx[id]
	return ok
}

func (t *table) size() int { return t.n }

// closest returns up to n members nearest to target, nearest first. With c
// the prefix target shares with self, members sharing exactly c bits with
// self are nearest, then all that share more, then c-1, c-2, ... bits; the
// scan stops once n candidates are in hand and the next group is farther.
func (t *table) closest(target kadID, n int) []ID {
	type hit struct {
		d  dist
		id ID
	}
	if n <= 0 {
		return nil
	}
	tw := words(target)
	best := make([]hit, 0, n+1)
	consider := func(ms []member) {
		for i := range ms {
			m := &ms[i]
			d := dist{m.w[0] ^ tw[0], m.w[1] ^ tw[1], m.w[2] ^ tw[2], m.w[3] ^ tw[3]}
			if len(best) == n && !d.less(best[n-1].d) {
				continue
			}
			j := len(best)
			for j > 0 && d.less(best[j-1].d) {
				j--
			}
			if len(best) < n {
				best = append(best, hit{})
			}
			copy(best[j+1:], best[j:len(best)-1])
			best[j] = hit{d: d, id: m.id}
		}
	}
	c := min(cpl(t.self, target), len(t.buckets))
	if c < len(t.buckets) {
		consider(t.buckets[c])
	}
	if len(best) < n {
		for b := c + 1; b < len(t.buckets); b++ {
			consider(t.buckets[b])
		}
	}
	for b := c - 1; b >= 0 && len(best) < n; b-- {
		consider(t.buckets[b])
	}
	out := make([]ID, len(best))
	for i, h := range best {
		out[i] = h.id
	}
	return out
}

// dist is an XOR distance as four big-endian words: nearest-node queries
// compare millions of them in the simulator, a word at a time.
type dist [4]uint64

func words(k kadID) dist {
	return dist{binary.BigEndian.Uint64(k[0:]), binary.BigEndian.Uint64(k[8:]),
		binary.BigEndian.Uint64(k[16:]), binary.BigEndian.Uint64(k[24:])}
}

func (a dist) less(b dist) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// list returns every member, ordered by ID.
func (t *table) list() []ID {
	out := make([]ID, 0, t.n)
	for _, bk := range t.buckets {
		for _, m := range bk {
			out = append(out, m.id)
		}
	}
	slices.SortFunc(out, compareID)
	return out
}

func (t *table) clear() {
	t.idx = map[ID]slot{}
	t.buckets = nil
	t.n = 0
}

// bucketFill returns how many members share exactly c prefix bits with self.
func (t *table) bucketFill(c int) int {
	if c < 0 || c >= len(t.buckets) {
		return 0
	}
	return len(t.buckets[c])
}

// estimateSize estimates how many nodes the table's cluster has, counting
// this node, from the members keep accepts (nil: all): exactly when fewer
// than k of them are known, otherwise from the density of the k nearest (the
// k-th nearest of n uniform nodes lies at about k/n of the space).
func (t *table) estimateSize(k int, keep func(ID) bool) int64 {
	if k < 1 {
		k = 1
	}
	kth, found := t.kthNearestSelf(k, keep)
	if found < k {
		return int64(found) + 1
	}
	frac := float64(kth) / math.Exp2(64)
	if frac <= 0 {
		return int64(k) + 1
	}
	return max(int64(k)+1, int64(math.Round(float64(k)/frac)))
}

// kthNearestSelf returns the top word of the XOR distance from self to the
// k-th nearest member keep accepts, or how many it accepts when fewer. A
// member of group b is nearer to self than any of a lower group, so the scan
// walks the groups down from the nearest and sorts only the group where the
// k-th lies (every RPC reply carries a size estimate: sorting the whole
// table each time was a sixth of a large simulation's CPU).
func (t *table) kthNearestSelf(k int, keep func(ID) bool) (uint64, int) {
	sw := words(t.self)
	found := 0
	var group []uint64
	for b := len(t.buckets) - 1; b >= 0; b-- {
		group = group[:0]
		for i := range t.buckets[b] {
			m := &t.buckets[b][i]
			if keep == nil || keep(m.id) {
				group = append(group, m.w[0]^sw[0])
			}
		}
		if found+len(group) >= k {
			slices.Sort(group)
			return group[k-found-1], k
		}
		found += len(group)
	}
	return 0, found
}

// randomKadWithCpl returns a random position sharing exactly c prefix bits
// with self, drawn from r so that the simulator stays deterministic.
func randomKadWithCpl(self kadID, c int, r func() uint64) kadID {
	var out kadID
	for i := 0; i < 32; i += 8 {
		binary.BigEndian.PutUint64(out[i:], r())
	}
	if c >= 256 {
		return self
	}
	for i := 0; i < c; i++ {
		setBit(&out, i, bit(self, i))
	}
	setBit(&out, c, 1-bit(self, c))
	return out
}

func bit(k kadID, i int) int { return int(k[i/8]>>(7-uint(i%8))) & 1 }

func setBit(k *kadID, i, v int) {
	mask := byte(1) << (7 - uint(i%8))
	if v == 1 {
		k[i/8] |= mask
	} else {
		k[i/8] &^= mask
	}
}
