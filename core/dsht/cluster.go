package dsht

import (
	"encoding/hex"
	"slices"
	"time"
)

// clusterView is what this node knows about one level-l cluster: its size
// (the median of its members' recent claims) and how many of the members it
// measured are within the level's RTT threshold.
type clusterView struct {
	ID      ID
	Size    int64
	Sampled int // members with a measured RTT
	Within  int // of those, RTT below the threshold
}

type clusterParams struct {
	Fraction   float64 // ClusterFraction
	MinSamples int     // ClusterMinSamples
}

// needed is how many measured members it takes to judge a cluster: the
// minimum, or every other member of a smaller cluster.
func (p clusterParams) needed(v clusterView, own bool) int {
	others := v.Size
	if own {
		others--
	}
	return int(max(1, min(int64(p.MinSamples), others)))
}

func (p clusterParams) acceptable(v clusterView) bool {
	return v.Sampled >= p.needed(v, false) && float64(v.Within) >= p.Fraction*float64(v.Sampled)
}

// promising: not yet enough samples, and none so far rules it out.
func (p clusterParams) promising(v clusterView) bool {
	return v.Sampled < p.needed(v, false) && float64(v.Within) >= p.Fraction*float64(v.Sampled)
}

// better: of two acceptable clusters the older (lower ID, see newClusterID)
// wins, whatever their sizes. The order is total and every node applies it
// to the same IDs, so between any two clusters exactly one side moves.
// Sizes used to decide when one was "clearly larger" (three times the
// other), but each side judges them from its own estimates, which differ
// (noise, and only members heard from within ClaimTTL count), so both sides
// of a pair could decide to stay: at 10,000 simulated nodes two regions
// stayed split in two clusters each. The older cluster is also the one
// claimed on RPCs longest, so the one most nodes have heard of.
func (p clusterParams) better(a, b clusterView) bool {
	return compareID(a.ID, b.ID) < 0
}

type clusterDecision struct {
	Join   ID   // cluster to join, when Change
	Change bool //
	Leave  bool // current cluster unacceptable and no other: start a new one
	Sample ID   // cluster worth sampling, when NeedSample
	// NeedSample: a cluster that would be preferred lacks measured members.
	NeedSample bool
}

// decideCluster is the membership rule of one level. cur is the node's
// cluster (alone: no other member known); cands the other clusters its peers
// claim. The node leaves a cluster that is no longer acceptable (enough
// measured members, too few within the threshold) and joins the oldest
// acceptable cluster when it is older than its own (see better).
func decideCluster(cur clusterView, alone bool, cands []clusterView, p clusterParams) clusterDecision {
	curOK := alone || cur.Sampled < p.needed(cur, true) ||
		float64(cur.Within) >= p.Fraction*float64(cur.Sampled)
	var best *clusterView
	for i := range cands {
		c := &cands[i]
		if c.ID == cur.ID || !p.acceptable(*c) {
			continue
		}
		if best == nil || p.better(*c, *best) {
			best = c
		}
	}
	var d clusterDecision
	switch {
	case !curOK && best != nil:
		d.Join, d.Change = best.ID, true
		return d
	case !curOK:
		d.Leave = true
		return d
	case best != nil && p.better(*best, cur):
		d.Join, d.Change = best.ID, true
		return d
	}
	var sample *clusterView
	for i := range cands {
		c := &cands[i]
		if c.ID == cur.ID || !p.promising(*c) || !p.better(*c, cur) {
			continue
		}
		if sample == nil || p.better(*c, *sample) {
			sample = c
		}
	}
	if sample != nil {
		d.Sample, d.NeedSample = sample.ID, true
	}
	return d
}

func median(xs []int64) int64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// clusterSampleBudget is how many sampling rounds a node runs per level per
// tick.
const clusterSampleBudget = 3

func (n *Node) clusterParams() clusterParams {
	return clusterParams{Fraction: n.cfg.ClusterFraction, MinSamples: n.cfg.ClusterMinSamples}
}

type clusterAgg struct {
	v         clusterView
	sizes     []int64      // claimed sizes
	fresh     []int64      // claimed sizes from the last two intervals
	near      []*peerState // measured, within the threshold, fastest first
	unsampled []*peerState
}

// size is the median of the members' recent size claims: sizes grow as a
// cluster forms, so older claims understate it.
func (a *clusterAgg) size() int64 {
	if len(a.fresh) > 0 {
		return median(a.fresh)
	}
	return median(a.sizes)
}

// judged: p's RTT is known well enough to count for or against a cluster
// at a level with threshold thr: one sample within it, or farSamples above
// it. A sample can take a dial, a busy host's scheduling delay or a
// collector's pause along, and a node measured once or twice may not be
// measured again for minutes, so bad samples kept near nodes "far" and
// their cluster unacceptable (at 100 nodes on one machine, 12 of 32
// members of the one continent-wide cluster after one sample each; with
// two, one node still saw 2 of its 8 region-mates far for minutes). Such
// a peer is sampled again first.
func (p *peerState) judged(thr time.Duration) bool {
	return p.samples >= farSamples || p.samples > 0 && p.distance() < thr
}

// farSamples is how many samples above a level's threshold make a peer
// count as far.
const farSamples = 3

// clusterAggs groups the peers' recent level-l claims by cluster.
func (n *Node) clusterAggs(l int, now int64) map[ID]*clusterAgg {
	thr := n.levels[l].threshold
	aggs := map[ID]*clusterAgg{}
	for _, p := range n.peers.m { // order-free: only counts, and sorted lists below
		if p.recentlyFailed(now, n.cfg.UnreachableTTL) {
			continue
		}
		c, ok := p.claimAt(l, now, n.cfg.ClaimTTL)
		if !ok {
			continue
		}
		a := aggs[c.id]
		if a == nil {
			a = &clusterAgg{v: clusterView{ID: c.id}}
			aggs[c.id] = a
		}
		a.sizes = append(a.sizes, c.size)
		if now-c.at < 2*int64(n.cfg.ClusterInterval) {
			a.fresh = append(a.fresh, c.size)
		}
		if !p.judged(thr) {
			a.unsampled = append(a.unsampled, p)
			continue
		}
		a.v.Sampled++
		if p.distance() < thr {
			a.v.Within++
			a.near = append(a.near, p)
		}
	}
	for _, a := range aggs {
		slices.SortFunc(a.near, func(x, y *peerState) int {
			if dx, dy := x.distance(), y.distance(); dx != dy {
				return int(dx - dy)
			}
			return compareID(x.info.ID, y.info.ID)
		})
		slices.SortFunc(a.unsampled, func(x, y *peerState) int { return compareID(x.info.ID, y.info.ID) })
		a.v.Size = a.size()
	}
	return aggs
}

// clusterViews is what this node knows of level l's clusters, and its own
// cluster's view with its own size estimate counted in.
func (n *Node) clusterViews(l int, now int64) (map[ID]*clusterAgg, *clusterAgg) {
	lv := n.levels[l]
	aggs := n.clusterAggs(l, now)
	cur := aggs[lv.cluster]
	if cur == nil {
		cur = &clusterAgg{v: clusterView{ID: lv.cluster}}
	}
	own := n.clusterSize(l)
	cur.sizes = append(cur.sizes, own)
	cur.fresh = append(cur.fresh, own)
	cur.v.Size = cur.size()
	return aggs, cur
}

// evaluateCluster applies decideCluster at level l and acts on it.
func (n *Node) evaluateCluster(l int, allowSample bool) {
	if n.closed {
		return
	}
	now := n.now()
	lv := n.levels[l]
	aggs, cur := n.clusterViews(l, now)
	alone := lv.table.size() == 0 && cur.v.Sampled == 0
	var cands []clusterView
	for id, a := range aggs {
		if id != lv.cluster {
			cands = append(cands, a.v)
		}
	}
	slices.SortFunc(cands, func(a, b clusterView) int { return compareID(a.ID, b.ID) })
	d := decideCluster(cur.v, alone, cands, n.clusterParams())
	switch {
	case d.Change:
		n.joinCluster(l, d.Join)
	case d.Leave:
		n.joinCluster(l, n.newClusterID())
	case d.NeedSample && allowSample:
		n.sampleCluster(l, d.Sample, aggs[d.Sample])
	case allowSample && lv.sampleBudget == clusterSampleBudget:
		// Nothing to act on at the start of a tick: freshen what is known.
		n.refreshNear(l, now, cur.v.Size)
	}
}

// refreshNear pings a few nearby peers (RTT within the level's threshold)
// whose cluster claims are oldest. Claims only travel on RPCs, so without
// this a node that joined early would keep judging by the singleton clusters
// everyone started in. Claims count as stale after half ClaimTTL, or after
// one interval while this node knows more nearby peers than its cluster has
// members (a sign it is missing the cluster they are in).
func (n *Node) refreshNear(l int, now int64, size int64) {
	lv := n.levels[l]
	if lv.sampling {
		return
	}
	var near, stale []*peerState
	for _, p := range n.peers.m {
		if p.samples == 0 || p.distance() >= lv.threshold || p.recentlyFailed(now, n.cfg.UnreachableTTL) {
			continue
		}
		near = append(near, p)
	}
	staleAfter := int64(n.cfg.ClaimTTL) / 2
	if int64(len(near)) > size {
		staleAfter = int64(n.cfg.ClusterInterval)
	}
	for _, p := range near {
		if now-p.claims[l].at > staleAfter {
			stale = append(stale, p)
		}
	}
	if len(stale) == 0 {
		return
	}
	slices.SortFunc(stale, func(a, b *peerState) int {
		if a.claims[l].at != b.claims[l].at {
			if a.claims[l].at < b.claims[l].at {
				return -1
			}
			return 1
		}
		return compareID(a.info.ID, b.info.ID)
	})
	lv.sampleBudget--
	var ts []NodeInfo
	for _, p := range stale[:min(len(stale), max(1, n.cfg.ClusterSample/4))] {
		ts = append(ts, p.info)
	}
	n.pingAndEvaluate(l, ts)
}

// pingAndEvaluate pings targets (RTTs and cluster claims come back on the
// answers) and then re-evaluates level l.
func (n *Node) pingAndEvaluate(l int, targets []NodeInfo) {
	lv := n.levels[l]
	if len(targets) == 0 {
		lv.sampling = false
		return
	}
	lv.sampling = true
	pending := len(targets)
	for _, t := range targets {
		n.call(t, nil, &Request{Op: OpPing}, n.rto(t.ID), func(*Response, error) {
			pending--
			if pending == 0 {
				lv.sampling = false
				n.evaluateCluster(l, lv.sampleBudget > 0)
			}
		})
	}
}

// joinCluster switches this node's level-l cluster: its level-l table is
// rebuilt from the peers known to be in the new cluster, then a lookup of
// itself there meets the rest.
func (n *Node) joinCluster(l int, id ID) {
	now := n.now()
	lv := n.levels[l]
	n.log.Debug("cluster change", "level", l, "from", clusterName(lv.cluster), "to", clusterName(id))
	// Tell the nearest members of the old cluster (the ping carries the new
	// claim): if the new cluster suits this node it likely suits them, and
	// a merge spreads through a large cluster in a few rounds instead of
	// waiting for each member to stumble on it.
	var old []*peerState
	for _, mid := range lv.table.list() {
		if p := n.peers.get(mid); p != nil && p.samples > 0 && p.distance() < lv.threshold {
			old = append(old, p)
		}
	}
	slices.SortFunc(old, func(a, b *peerState) int {
		if da, db := a.distance(), b.distance(); da != db {
			return int(da - db)
		}
		return compareID(a.info.ID, b.info.ID)
	})
	lv.cluster = id
	lv.changes++
	lv.table.clear()
	for _, p := range n.peers.sorted() {
		if c, ok := p.claimAt(l, now, n.cfg.ClaimTTL); ok && c.id == id && p.lastOK > 0 &&
			!p.recentlyFailed(now, n.cfg.UnreachableTTL) {
			lv.table.add(p.info.ID, p.kad)
		}
	}
	lv.sizeAt = 0 // re-estimate from the new table
	for _, p := range old[:min(len(old), n.cfg.ClusterSample/2)] {
		n.call(p.info, nil, &Request{Op: OpPing}, n.rto(p.info.ID), func(*Response, error) {})
	}
	if lv.table.size() > 0 {
		n.findNode(l, n.selfKad, n.cfg.K, nil)
	}
}

// sampleCluster measures RTTs to members of a cluster this node might join:
// members it knows but never measured, or else members near it that a member
// within the threshold returns. It re-evaluates when the pings are done.
func (n *Node) sampleCluster(l int, id ID, a *clusterAgg) {
	lv := n.levels[l]
	if lv.sampling || a == nil {
		return
	}
	lv.sampling = true
	lv.sampleBudget--
	lv.sampled++
	ping := func(targets []NodeInfo) { n.pingAndEvaluate(l, targets) }
	if len(a.unsampled) > 0 {
		var ts []NodeInfo
		for _, p := range a.unsampled[:min(len(a.unsampled), n.cfg.ClusterSample)] {
			ts = append(ts, p.info)
		}
		ping(ts)
		return
	}
	if len(a.near) == 0 {
		lv.sampling = false
		return
	}
	m := a.near[0]
	req := &Request{Op: OpFindNode, Level: uint8(l), Cluster: id, Target: ID(n.selfKad)}
	n.call(m.info, nil, req, n.rto(m.info.ID), func(resp *Response, err error) {
		if err != nil || resp.Code != CodeOK {
			lv.sampling = false
			return
		}
		var ts []NodeInfo
		for _, ct := range resp.Contacts {
			if len(ts) == n.cfg.ClusterSample {
				break
			}
			if ct.Node.ID == n.self.ID {
				continue
			}
			if p := n.peers.get(ct.Node.ID); p != nil && p.samples > 0 {
				continue
			}
			ts = append(ts, ct.Node)
		}
		ping(ts)
	})
}

// clusterName is a short printable name for a cluster ID (its bytes after
// the founding time).
func clusterName(id ID) string { return hex.EncodeToString(id[8:14]) }

// nudge brings the next cluster evaluation forward when a peer within
// level l's threshold claims a cluster this node would prefer to its own
// (an older one): when one member of a cluster
// moves, the ones it tells follow within an interval, not after backoff.
func (n *Node) nudge(p *peerState, now int64) {
	if !n.maintain || n.closed || n.clusterBackoff <= 1 || p.samples == 0 {
		return
	}
	for l := 1; l < len(n.levels); l++ {
		lv := n.levels[l]
		c, ok := p.claimAt(l, now, n.cfg.ClaimTTL)
		if !ok || c.id == lv.cluster || p.distance() >= lv.threshold {
			continue
		}
		mine := clusterView{ID: lv.cluster, Size: max(lv.size, 1)}
		if n.clusterParams().better(clusterView{ID: c.id, Size: c.size}, mine) {
			n.clusterBackoff = 1
			if stop := n.timers[tickCluster]; stop != nil {
				stop()
			}
			n.arm(tickCluster, n.jitter(n.cfg.ClusterInterval/2), n.clusterTick)
			return
		}
	}
}

// ---- maintenance ----

// prunePeers bounds the peer cache, keeping every routing-table member.
func (n *Node) prunePeers() {
	n.peers.prune(func(id ID) bool {
		for _, lv := range n.levels {
			if lv.table.has(id) {
				return true
			}
		}
		return false
	})
}

func (n *Node) jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(n.rng.Int64N(int64(d)))
}

// startMaintenance arms the periodic cluster evaluation and refresh.
func (n *Node) startMaintenance() {
	if n.maintain || n.closed {
		return
	}
	n.maintain = true
	n.clusterBackoff = 1
	n.arm(tickCluster, n.jitter(n.cfg.ClusterInterval/2), n.clusterTick)
	n.arm(tickRefresh, n.jitter(n.cfg.RefreshInterval), n.refreshTick)
}

// Maintenance timer slots.
const (
	tickCluster = iota
	tickRefresh
	numTicks
)

// arm runs f after d unless the node closes first; f re-arms itself.
func (n *Node) arm(slot int, d time.Duration, f func()) {
	n.timers[slot] = n.after(d, func() {
		if !n.closed {
			f()
		}
	})
}

// clusterTick re-evaluates every level. While nothing changes and nothing
// needs sampling, the interval doubles (up to 4x), so a settled node does
// little; any change, or news of an older nearby cluster (nudge),
// resets it.
func (n *Node) clusterTick() {
	busy := false
	for l := 1; l < len(n.levels); l++ {
		lv := n.levels[l]
		before, sampled := lv.changes, lv.sampled
		lv.sampleBudget = clusterSampleBudget
		n.evaluateCluster(l, true)
		if lv.changes != before || lv.sampled != sampled {
			busy = true
		}
	}
	if busy {
		n.clusterBackoff = 1
	} else if n.clusterBackoff < 4 {
		n.clusterBackoff *= 2
	}
	n.arm(tickCluster, n.jitter(n.cfg.ClusterInterval*time.Duration(n.clusterBackoff)), n.clusterTick)
}

func (n *Node) refreshTick() {
	now := n.now()
	n.store.sweep(now)
	n.prunePeers()
	for l := range n.levels {
		if l == 0 || n.levels[l].table.size() > 0 {
			n.findNode(l, n.selfKad, n.cfg.K, nil)
		}
	}
	// One random bucket of the global table, so far buckets stay fresh.
	if near := n.levels[0].table.closest(n.selfKad, 1); len(near) > 0 {
		if c := cpl(n.selfKad, kadOf(near[0])); c > 0 {
			n.findNode(0, randomKadWithCpl(n.selfKad, n.rng.IntN(c), n.rng.Uint64), n.cfg.K, nil)
		}
	}
	n.arm(tickRefresh, n.jitter(n.cfg.RefreshInterval), n.refreshTick)
}

// ClusterEstimate is one cluster as a node sees it: its size estimate and
// how many of its members the node measured, and how many of those are
// within the level's threshold.
type ClusterEstimate struct {
	ID                    ID
	Size                  int64
	Sampled, Within       int
	Acceptable, Preferred bool // preferred: better than the node's own cluster
}

// ClusterOutlook is what a node's membership rule sees at one level right
// now: its own cluster and the others its peers claim. It explains a
// clustering (why members stay apart) in diagnostics and the simulator.
type ClusterOutlook struct {
	Own    ClusterEstimate
	Others []ClusterEstimate
}

// Outlook reports level l's cluster view without acting on it.
func (n *Node) Outlook(l int) ClusterOutlook {
	var o ClusterOutlook
	n.locked(func() {
		if l < 1 || l >= len(n.levels) {
			return
		}
		now := n.now()
		lv := n.levels[l]
		aggs, cur := n.clusterViews(l, now)
		p := n.clusterParams()
		o.Own = ClusterEstimate{ID: cur.v.ID, Size: cur.v.Size, Sampled: cur.v.Sampled, Within: cur.v.Within, Acceptable: true}
		for id, a := range aggs {
			if id == lv.cluster {
				continue
			}
			o.Others = append(o.Others, ClusterEstimate{ID: id, Size: a.v.Size, Sampled: a.v.Sampled, Within: a.v.Within,
				Acceptable: p.acceptable(a.v), Preferred: p.better(a.v, cur.v)})
		}
		slices.SortFunc(o.Others, func(a, b ClusterEstimate) int { return compareID(a.ID, b.ID) })
	})
	return o
}
