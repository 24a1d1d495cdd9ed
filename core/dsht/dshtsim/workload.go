package dshtsim

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/coralcdn/coral/core/dsht"
)

// Batch runs operations concurrently in virtual time.
type Batch struct {
	s       *Sim
	pending int
}

// Batch starts an empty batch.
func (s *Sim) Batch() *Batch { return &Batch{s: s} }

// At runs start after d of virtual time; start must call the done it is
// given exactly once.
func (b *Batch) At(d time.Duration, start func(done func())) {
	b.pending++
	b.s.schedule(d, func() { start(func() { b.pending-- }) })
}

// Get starts a get on node i.
func (b *Batch) Get(d time.Duration, i int, key dsht.ID, done func([]dsht.Value, error), opts ...dsht.Option) {
	b.At(d, func(fin func()) {
		b.s.nodes[i].node.GetAsync(key, func(v []dsht.Value, err error) { done(v, err); fin() }, opts...)
	})
}

// Put starts a put on node i.
func (b *Batch) Put(d time.Duration, i int, key dsht.ID, val []byte, ttl time.Duration, done func(error), opts ...dsht.Option) {
	b.At(d, func(fin func()) {
		b.s.nodes[i].node.PutAsync(key, val, ttl, func(err error) { done(err); fin() }, opts...)
	})
}

// PutGet starts a put+get on node i.
func (b *Batch) PutGet(d time.Duration, i int, key dsht.ID, val []byte, ttl time.Duration, done func([]dsht.Value, error), opts ...dsht.Option) {
	b.At(d, func(fin func()) {
		b.s.nodes[i].node.PutGetAsync(key, val, ttl, func(v []dsht.Value, err error) { done(v, err); fin() }, opts...)
	})
}

// Wait runs the simulation until every operation finished, or fails after
// limit of virtual time.
func (b *Batch) Wait(limit time.Duration) error {
	if !b.s.RunUntil(func() bool { return b.pending == 0 }, limit) {
		return fmt.Errorf("dshtsim: %d operations unfinished after %v", b.pending, limit)
	}
	return nil
}

// Bootstrap joins every node: node 0 first, then the others spread over
// spread, each through 3 random nodes that joined before it; then the
// network runs for settle (cluster formation, refreshes).
func (s *Sim) Bootstrap(spread, settle time.Duration) error {
	b := s.Batch()
	var failed int
	for i := range s.nodes {
		var seeds []dsht.NodeInfo
		for k := 0; k < 3 && i > 0; k++ {
			seeds = append(seeds, s.nodes[s.rng.IntN(i)].info)
		}
		at := time.Duration(0)
		if len(s.nodes) > 1 {
			at = spread * time.Duration(i) / time.Duration(len(s.nodes)-1)
		}
		n := s.nodes[i].node
		b.At(at, func(fin func()) {
			n.BootstrapAsync(seeds, func(err error) {
				if err != nil {
					failed++
				}
				fin()
			})
		})
	}
	if err := b.Wait(spread + 10*time.Minute); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("dshtsim: %d nodes failed to bootstrap", failed)
	}
	s.RunFor(settle)
	return nil
}

// CrashFraction crashes a random fraction of the live nodes, sparing keep.
func (s *Sim) CrashFraction(f float64, keep ...int) []int {
	live := s.Live()
	n := int(math.Round(f * float64(len(live))))
	var out []int
	for _, k := range s.rng.Perm(len(live)) {
		if len(out) == n {
			break
		}
		if slices.Contains(keep, live[k]) {
			continue
		}
		s.Crash(live[k])
		out = append(out, live[k])
	}
	slices.Sort(out)
	return out
}

// Dist summarises a sample.
type Dist struct {
	N             int
	P50, P99, Max float64
}

func dist(xs []float64) Dist {
	if len(xs) == 0 {
		return Dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Dist{N: len(s), P50: q(0.5), P99: q(0.99), Max: s[len(s)-1]}
}

// GetStats is the outcome of a put-then-get workload.
type GetStats struct {
	Puts, PutOK, Gets, GetOK int
	// FoundAt counts successful gets by the level that answered.
	FoundAt []int
	// Per level: hops and latency of every lookup run at that level.
	LevelHops    []Dist
	LevelLatency []Dist // milliseconds
	// Whole gets: total hops over the levels visited, and latency (ms).
	Hops, Latency Dist
	RPCsPerGet    float64
}

// OK is the fraction of gets that found the value.
func (g GetStats) OK() float64 {
	if g.Gets == 0 {
		return 0
	}
	return float64(g.GetOK) / float64(g.Gets)
}

// PutThenGet puts keys values, each from a random live node, then gets each
// key from another random live node; a get succeeds when it returns the
// value put.
func (s *Sim) PutThenGet(keys int, ttl time.Duration) (GetStats, error) {
	return s.putThenGet(keys, ttl, nil)
}

// PutCrashGet is PutThenGet with a fraction of the live nodes crashed
// between the puts and the gets (never a getter): copies held by crashed
// nodes are lost, and nobody renews them before the gets, so it measures
// what one put's placement survives.
func (s *Sim) PutCrashGet(keys int, ttl time.Duration, crash float64) (GetStats, error) {
	return s.putThenGet(keys, ttl, func(getters []int) { s.CrashFraction(crash, getters...) })
}

func (s *Sim) putThenGet(keys int, ttl time.Duration, between func(getters []int)) (GetStats, error) {
	live := s.Live()
	if len(live) < 2 {
		return GetStats{}, fmt.Errorf("dshtsim: %d live nodes", len(live))
	}
	levels := s.nodes[live[0]].node.NumLevels()
	st := GetStats{FoundAt: make([]int, levels)}
	type item struct {
		key        dsht.ID
		val        []byte
		putter     int
		getter     int
		putOK, got bool
		trace      dsht.Trace
	}
	items := make([]*item, keys)
	seed := s.rng.Uint64()
	for k := range items {
		it := &item{key: KeyID(seed, k), val: []byte(fmt.Sprintf("value-%d-%d", seed, k))}
		it.putter = live[s.rng.IntN(len(live))]
		for it.getter = it.putter; it.getter == it.putter; {
			it.getter = live[s.rng.IntN(len(live))]
		}
		items[k] = it
	}
	b := s.Batch()
	for k, it := range items {
		b.Put(time.Duration(k)*time.Millisecond, it.putter, it.key, it.val, ttl, func(err error) { it.putOK = err == nil })
	}
	if err := b.Wait(time.Hour); err != nil {
		return st, err
	}
	if between != nil {
		getters := make([]int, 0, len(items))
		for _, it := range items {
			getters = append(getters, it.getter)
		}
		between(getters)
	}
	b = s.Batch()
	for k, it := range items {
		b.Get(time.Duration(k)*time.Millisecond, it.getter, it.key, func(vs []dsht.Value, err error) {
			for _, v := range vs {
				if bytes.Equal(v.Data, it.val) {
					it.got = true
				}
			}
		}, dsht.WithTrace(&it.trace))
	}
	if err := b.Wait(time.Hour); err != nil {
		return st, err
	}
	lh := make([][]float64, levels)
	ll := make([][]float64, levels)
	var hops, lat []float64
	rpcs := 0
	for _, it := range items {
		st.Puts++
		st.Gets++
		if it.putOK {
			st.PutOK++
		}
		total := 0
		for _, lt := range it.trace.Levels {
			lh[lt.Level] = append(lh[lt.Level], float64(lt.Hops))
			ll[lt.Level] = append(ll[lt.Level], ms(lt.Elapsed))
			total += lt.Hops
			if lt.Found && it.got {
				st.FoundAt[lt.Level]++
			}
		}
		rpcs += it.trace.RPCs
		if it.got {
			st.GetOK++
		}
		hops = append(hops, float64(total))
		lat = append(lat, ms(it.trace.Elapsed))
	}
	for l := range levels {
		st.LevelHops = append(st.LevelHops, dist(lh[l]))
		st.LevelLatency = append(st.LevelLatency, dist(ll[l]))
	}
	st.Hops, st.Latency = dist(hops), dist(lat)
	st.RPCsPerGet = float64(rpcs) / float64(max(1, len(items)))
	return st, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// HotKeyStats is the load a hot key puts on the busiest node.
type HotKeyStats struct {
	Putters int
	// Busiest is the most stores any node accepted for the key at one level,
	// within the minute the puts took; BusiestLevel is that level.
	Busiest, BusiestLevel int
	// Holders is how many nodes hold a copy at level 0.
	Holders int
	// Bound is the leakage bound β·⌈log2 n⌉ for n nodes.
	Bound int
	PutOK int
}

// HotKey has every given node put the same key at the same instant (each
// its own value) and reports the busiest node's store count.
func (s *Sim) HotKey(putters []int, ttl time.Duration, beta int) (HotKeyStats, error) {
	key := KeyID(s.rng.Uint64(), -1)
	st := HotKeyStats{Putters: len(putters),
		Bound: beta * int(math.Ceil(math.Log2(float64(len(s.Live())))))}
	b := s.Batch()
	for _, i := range putters {
		b.Put(0, i, key, []byte(fmt.Sprintf("proxy-%d", i)), ttl, func(err error) {
			if err == nil {
				st.PutOK++
			}
		})
	}
	if err := b.Wait(time.Minute); err != nil {
		return st, err
	}
	for _, i := range s.Live() {
		n := s.nodes[i].node
		for l := range n.NumLevels() {
			c := int(n.Stores(key, l))
			if c > st.Busiest {
				st.Busiest, st.BusiestLevel = c, l
			}
			if l == 0 && c > 0 {
				st.Holders++
			}
		}
	}
	return st, nil
}

// RaceStats counts origin fetches when many nodes want a new key at once.
type RaceStats struct {
	Nodes int
	// OriginGetPut: nodes whose get found nothing (get, then put "I am
	// downloading"). OriginPutGet: nodes whose put+get met no other value.
	OriginGetPut, OriginPutGet int
}

// Race has nodes ask for a fresh key within spread, first with get-then-put
// and then, for another fresh key, with put+get.
func (s *Sim) Race(nodes []int, spread, ttl time.Duration) (RaceStats, error) {
	st := RaceStats{Nodes: len(nodes)}
	key := KeyID(s.rng.Uint64(), -2)
	b := s.Batch()
	for _, i := range nodes {
		at := time.Duration(s.rng.Int64N(int64(spread) + 1))
		node := s.nodes[i].node
		b.At(at, func(fin func()) {
			node.GetAsync(key, func(vs []dsht.Value, err error) {
				if len(vs) > 0 {
					fin()
					return
				}
				st.OriginGetPut++
				node.PutAsync(key, []byte(fmt.Sprintf("proxy-%d", i)), ttl, func(error) { fin() })
			})
		})
	}
	if err := b.Wait(time.Hour); err != nil {
		return st, err
	}
	key = KeyID(s.rng.Uint64(), -3)
	b = s.Batch()
	for _, i := range nodes {
		at := time.Duration(s.rng.Int64N(int64(spread) + 1))
		b.PutGet(at, i, key, []byte(fmt.Sprintf("proxy-%d", i)), ttl, func(vs []dsht.Value, err error) {
			if len(vs) == 0 {
				st.OriginPutGet++
			}
		})
	}
	return st, b.Wait(time.Hour)
}

// ClusterStats compares the clusters found at a level with those planted.
type ClusterStats struct {
	Level, Planted, Found int
	// Sizes of the found clusters, largest first.
	Sizes []int
	// Purity: fraction of nodes whose cluster's majority planted group is
	// their own. Coverage: fraction of nodes in the largest found cluster of
	// their planted group.
	Purity, Coverage float64
}

// Clusters reports level l (planted: regions at the most local level,
// continents at the next, everything at level 0).
func (s *Sim) Clusters(l int) ClusterStats {
	live := s.Live()
	levels := s.nodes[live[0]].node.NumLevels()
	group := func(i int) int {
		switch levels - 1 - l {
		case 0:
			return s.nodes[i].region
		case 1:
			return s.nodes[i].continent
		}
		return 0
	}
	st := ClusterStats{Level: l}
	planted := map[int]bool{}
	members := map[dsht.ID][]int{}
	var ids []dsht.ID
	for _, i := range live {
		planted[group(i)] = true
		id := s.nodes[i].node.Cluster(l)
		if members[id] == nil {
			ids = append(ids, id)
		}
		members[id] = append(members[id], i)
	}
	st.Planted, st.Found = len(planted), len(members)
	pure := 0
	largestOf := map[int]int{} // planted group -> largest found cluster's count of its nodes
	for _, id := range ids {
		ms := members[id]
		st.Sizes = append(st.Sizes, len(ms))
		count := map[int]int{}
		for _, i := range ms {
			count[group(i)]++
		}
		best := 0
		for g, c := range count {
			best = max(best, c)
			largestOf[g] = max(largestOf[g], c)
		}
		pure += best
	}
	covered := 0
	for _, c := range largestOf {
		covered += c
	}
	slices.SortFunc(st.Sizes, func(a, b int) int { return b - a })
	st.Purity = float64(pure) / float64(len(live))
	st.Coverage = float64(covered) / float64(len(live))
	return st
}

// LocalGet has a node put a key and another node of the same planted region
// get it, and reports the level that answered and whether every node the get
// contacted was in the getter's region.
func (s *Sim) LocalGet(putter, getter int, ttl time.Duration) (level int, stayed bool, err error) {
	key := KeyID(s.rng.Uint64(), putter*1000003+getter)
	val := []byte(fmt.Sprintf("proxy-%d", putter))
	b := s.Batch()
	var perr error
	b.Put(0, putter, key, val, ttl, func(err error) { perr = err })
	if err := b.Wait(time.Hour); err != nil {
		return 0, false, err
	}
	if perr != nil {
		return 0, false, perr
	}
	var tr dsht.Trace
	var got []dsht.Value
	b = s.Batch()
	b.Get(0, getter, key, func(vs []dsht.Value, err error) { got, perr = vs, err }, dsht.WithTrace(&tr))
	if err := b.Wait(time.Hour); err != nil {
		return 0, false, err
	}
	if perr != nil {
		return 0, false, perr
	}
	if len(got) == 0 {
		return -1, false, nil
	}
	level = got[0].Level
	stayed = true
	index := map[dsht.ID]int{}
	for i, n := range s.nodes {
		index[n.info.ID] = i
	}
	for _, lt := range tr.Levels {
		for _, id := range lt.Contacted {
			if s.nodes[index[id]].region != s.nodes[getter].region {
				stayed = false
			}
		}
	}
	return level, stayed, nil
}
