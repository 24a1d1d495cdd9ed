package dsht

import (
	"slices"
	"time"
)

// peerState is what this node remembers about another node: the cache of
// recently live and recently unreachable nodes, RTT for adaptive timeouts,
// indirect routes, and the node's cluster claims. Times are unix nanoseconds.
type peerState struct {
	info NodeInfo
	kad  kadID

	rttEstimator // smoothed RTT for timeouts
	// Windowed minimum RTT, the node's distance for cluster decisions:
	// queueing on a busy path or host inflates srtt, never the minimum
	// (as in TCP BBR's min_rtt). minCur covers samples since minCurAt,
	// minPrev the window before, so a path that really got longer shows
	// within two windows.
	minCur, minPrev time.Duration
	minCurAt        int64

	// lastOK: last time this node heard from it directly (an answer or a
	// request); lastFail: last time a direct RPC to it failed.
	lastOK, lastFail int64
	fails            int
	// lastVia: last time it answered through a relay.
	lastVia int64

	claims []claim // by level; [0] unused
	vias   []via   // nodes that recently claimed direct contact with it
}

type claim struct {
	id   ID
	size int64
	at   int64
}

type via struct {
	id ID
	at int64 // when the relay last heard from the node, by its own claim
}

const maxVias = 4

// peerCache is bounded; see prune.
type peerCache struct {
	m      map[ID]*peerState
	levels int
	limit  int
}

func newPeerCache(levels, limit int) *peerCache {
	return &peerCache{m: map[ID]*peerState{}, levels: levels, limit: limit}
}

func (c *peerCache) get(id ID) *peerState { return c.m[id] }

// ensure returns the entry for ni, creating it. A known node's address is only
// replaced when authoritative (the transport named the sender), so a third
// party cannot redirect traffic meant for a node this one knows.
func (c *peerCache) ensure(ni NodeInfo, authoritative bool) *peerState {
	p := c.m[ni.ID]
	if p == nil {
		p = &peerState{info: ni, kad: kadOf(ni.ID), claims: make([]claim, c.levels)}
		c.m[ni.ID] = p
		return p
	}
	if authoritative && ni.Addr != "" && ni.Addr != p.info.Addr {
		p.info.Addr = ni.Addr
	}
	return p
}

// recentlyFailed: this node's own latest direct evidence about p is a
// failure, less than ttl ago.
func (p *peerState) recentlyFailed(now int64, ttl time.Duration) bool {
	return p.lastFail > p.lastOK && now-p.lastFail < int64(ttl)
}

// directAllowed applies MIT Chord's rule: a third party's claim that p is
// alive (claimAt, when the third party last heard from it) does not override
// a more recent failure this node saw itself.
func (p *peerState) directAllowed(now int64, ttl time.Duration, claimAt int64) bool {
	if !p.recentlyFailed(now, ttl) {
		return true
	}
	return claimAt > p.lastFail
}

// distanceWindow is the span of one window of the minimum RTT.
const distanceWindow = 5 * time.Minute

// observeRTT folds in one sample taken at now: Jacobson/Karels smoothing
// for timeouts, and the windowed minimum for distance.
func (p *peerState) observeRTT(rtt time.Duration, now int64) {
	if rtt <= 0 {
		rtt = time.Microsecond
	}
	switch {
	case p.samples == 0:
		p.minCur, p.minPrev, p.minCurAt = rtt, rtt, now
	case now-p.minCurAt >= int64(distanceWindow):
		p.minPrev, p.minCur, p.minCurAt = p.minCur, rtt, now
	default:
		p.minCur = min(p.minCur, rtt)
	}
	p.observe(rtt)
}

// distance is the node's RTT for cluster decisions: the minimum over the
// last one to two windows (valid when samples > 0).
func (p *peerState) distance() time.Duration { return min(p.minCur, p.minPrev) }

// rttEstimator is Jacobson/Karels smoothing of RTT samples (RFC 6298), the
// basis of adaptive timeouts: per peer, and over all samples for peers
// never measured.
type rttEstimator struct {
	srtt, rttvar time.Duration
	samples      int
}

func (e *rttEstimator) observe(rtt time.Duration) {
	if e.samples == 0 {
		e.srtt, e.rttvar = rtt, rtt/2
	} else {
		d := e.srtt - rtt
		if d < 0 {
			d = -d
		}
		e.rttvar = (3*e.rttvar + d) / 4
		e.srtt = (7*e.srtt + rtt) / 8
	}
	e.samples++
}

// rtoFor returns an adaptive timeout: srtt plus four deviations, with slack
// for jitter the samples have not shown yet.
func rtoFor(srtt, rttvar, minRTO, maxRTO time.Duration) time.Duration {
	slack := max(4*rttvar, srtt/2, 10*time.Millisecond)
	return min(max(srtt+slack, minRTO), maxRTO)
}

func (p *peerState) setClaims(cs []ClusterInfo, now int64) {
	for _, ci := range cs {
		l := int(ci.Level)
		if l <= 0 || l >= len(p.claims) {
			continue
		}
		p.claims[l] = claim{id: ci.ID, size: ci.Size, at: now}
	}
}

// claimAt returns p's level-l cluster claim if it is recent.
func (p *peerState) claimAt(l int, now int64, ttl time.Duration) (claim, bool) {
	if l <= 0 || l >= len(p.claims) {
		return claim{}, l == 0
	}
	c := p.claims[l]
	if c.at == 0 || now-c.at > int64(ttl) {
		return claim{}, false
	}
	return c, true
}

// addVia remembers that r claimed direct contact with p at time at.
func (p *peerState) addVia(r ID, at int64) {
	for i := range p.vias {
		if p.vias[i].id == r {
			p.vias[i].at = max(p.vias[i].at, at)
			return
		}
	}
	if len(p.vias) < maxVias {
		p.vias = append(p.vias, via{id: r, at: at})
		return
	}
	oldest := 0
	for i := range p.vias {
		if p.vias[i].at < p.vias[oldest].at {
			oldest = i
		}
	}
	if p.vias[oldest].at < at {
		p.vias[oldest] = via{id: r, at: at}
	}
}

// viasByRecency returns p's relays, most recent claim first.
func (p *peerState) viasByRecency() []via {
	vs := slices.Clone(p.vias)
	slices.SortFunc(vs, func(a, b via) int {
		if a.at != b.at {
			if a.at > b.at {
				return -1
			}
			return 1
		}
		return compareID(a.id, b.id)
	})
	return vs
}

func (p *peerState) lastActive() int64 { return max(p.lastOK, p.lastFail, p.lastVia) }

// prune evicts the least recently active entries that no routing table
// holds, once the cache is 1/8 over its limit (so pruning is amortised).
func (c *peerCache) prune(inTable func(ID) bool) {
	if len(c.m) <= c.limit+c.limit/8 {
		return
	}
	var cands []*peerState
	for _, p := range c.m {
		if !inTable(p.info.ID) {
			cands = append(cands, p)
		}
	}
	slices.SortFunc(cands, func(a, b *peerState) int {
		if a.lastActive() != b.lastActive() {
			if a.lastActive() < b.lastActive() {
				return -1
			}
			return 1
		}
		return compareID(a.info.ID, b.info.ID)
	})
	for _, p := range cands {
		if len(c.m) <= c.limit {
			break
		}
		delete(c.m, p.info.ID)
	}
}

// sorted returns all entries ordered by ID, for deterministic iteration.
func (c *peerCache) sorted() []*peerState {
	out := make([]*peerState, 0, len(c.m))
	for _, p := range c.m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *peerState) int { return compareID(a.info.ID, b.info.ID) })
	return out
}

func compareID(a, b ID) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}
