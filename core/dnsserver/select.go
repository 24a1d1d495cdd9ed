package dnsserver

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/ipclass"
)

// visitor is who will use an answer: for proxies the client (its EDNS
// client subnet when given), for nameservers the resolver itself.
type visitor struct {
	addr    netip.Addr
	network netip.Prefix // hint key: /24, /48 or a shorter client subnet
	exact   bool         // network is a whole /24 (/48), so "same network" means something
	private bool         // a LAN or loopback address
	ecs     bool         // derived from an EDNS client subnet
}

func newVisitor(a netip.Addr, bits int) visitor {
	a = a.Unmap()
	full := 48
	if a.Is4() {
		full = 24
	}
	bits = min(bits, full)
	p, _ := a.Prefix(bits)
	c := ipclass.Of(a)
	return visitor{addr: a, network: p, exact: bits == full, private: c.LAN() || c == ipclass.Loopback}
}

// reachable says whether a visitor can connect to address a of proxy p, and
// whether a is local to it (same network or same LAN), which ranks first.
// An address of a special-purpose or reserved block is reachable only from
// its own network.
func reachable(a netip.Addr, public bool, v visitor) (ok, local bool) {
	a = a.Unmap()
	c := ipclass.Of(a)
	switch {
	case !c.Addressable():
		return false, false
	case c == ipclass.Loopback:
		return v.addr.IsLoopback(), v.addr.IsLoopback()
	case c.LAN():
		return v.private, v.private
	}
	same := v.exact && v.network.Contains(a)
	if c != ipclass.Global {
		return same, same
	}
	return public || same, same
}

type family uint8

const (
	fam4   family = 1
	fam6   family = 2
	famAny        = fam4 | fam6
)

// pick is one chosen proxy with the addresses to publish for it.
type pick struct {
	p      *Proxy
	a4, a6 netip.Addr
	tier   int   // 0 local, 1 hinted, 2 by cluster
	sub    int64 // order within the tier
	probe  bool  // not heard from recently: ping before use
}

// bestAddr returns p's first address of the family that v can reach,
// preferring a local one.
func bestAddr(p *Proxy, v visitor, want4 bool) (netip.Addr, bool) {
	var first netip.Addr
	for _, a := range p.Addrs {
		a = a.Unmap()
		if a.Is4() != want4 {
			continue
		}
		ok, local := reachable(a, p.Public, v)
		if !ok {
			continue
		}
		if local {
			return a, true
		}
		if !first.IsValid() {
			first = a
		}
	}
	return first, false
}

type liveness int

const (
	alive liveness = iota
	dead
	unknown
)

type probeResult struct {
	ok bool
	at time.Time
}

func (s *Server) liveness(p *Proxy, now time.Time, mayProbe bool) liveness {
	if !p.LastHeard.IsZero() && now.Sub(p.LastHeard) <= s.cfg.LiveWindow {
		return alive
	}
	if s.prober == nil || !mayProbe {
		return dead
	}
	if r, ok := s.probeCache.Get(p.ID); ok && now.Sub(r.at) <= s.cfg.LiveWindow && !r.at.Before(p.LastHeard) {
		if r.ok {
			return alive
		}
		return dead
	}
	return unknown
}

// clusterAffinity counts from the most local level: 3 when p shares this
// node's regional (L2) cluster, 2 for L1, 1 for L0, 0 otherwise.
func clusterAffinity(self, p *Proxy) int {
	if self == nil {
		return 0
	}
	for lvl := range 3 {
		if c := self.Cluster[lvl]; c != "" && c == p.Cluster[lvl] {
			return 3 - lvl
		}
	}
	return 0
}

const rttBucket = 10 * time.Millisecond

type chooseReq struct {
	v        visitor
	fam      family
	n        int
	nsOnly   bool // nameservers only, no probing
	hints    map[string]time.Duration
	self     *Proxy
	now      time.Time
	rotation uint64
	subset   bool // ps is a group's part of the directory (WithSites)
}

// choose returns up to r.n live proxies reachable by r.v, nearest first.
// Candidates come ranked (see ranking) in groups of equally good ones; each
// group is rotated by r.rotation for load balance. Unknown ones (not heard
// from recently) ranked above the n-th live one are pinged (at most n of
// them) and slot in where they ranked.
func (s *Server) choose(ps []Proxy, r chooseReq) []pick {
	rk := s.ranking(ps, r)
	type ranked struct {
		pos int
		c   pick
	}
	var chosen, pending, spares []ranked
	pos, start := 0, 0
	for _, end := range rk.groups {
		if len(chosen) >= r.n {
			break
		}
		g := rk.cands[start:end]
		k := int(r.rotation % uint64(len(g)))
		for j := 0; j < len(g) && len(chosen) < r.n; j++ {
			c := g[(k+j)%len(g)]
			switch {
			case rk.fullSpares && c.p.Full:
				spares = append(spares, ranked{pos, c})
			case !c.probe:
				chosen = append(chosen, ranked{pos, c})
			case len(pending) < r.n:
				pending = append(pending, ranked{pos, c})
			}
			pos++
		}
		start = end
	}
	if len(pending) > 0 {
		ids := make([]string, len(pending))
		for k, p := range pending {
			ids[k] = p.c.p.ID
		}
		for k, ok := range s.probe(ids) {
			if ok {
				chosen = append(chosen, pending[k])
			}
		}
		if len(chosen) == 0 {
			chosen = spares // every ping failed: the Full ones are all there is
		}
		slices.SortFunc(chosen, func(a, b ranked) int { return cmp.Compare(a.pos, b.pos) })
		chosen = chosen[:min(len(chosen), r.n)]
	}
	out := make([]pick, len(chosen))
	for k, c := range chosen {
		out[k] = c.c
	}
	return out
}

// ranking is every candidate proxy for one kind of request, best first:
// cands[groups[i-1]:groups[i]] is the i-th group of equally good ones,
// ordered by ID.
type ranking struct {
	cands   []pick
	groups  []int
	probing bool // some candidates are to be pinged first
	// fullSpares: cands holds Full proxies only for when every candidate
	// to be pinged fails (see withoutFull).
	fullSpares bool
	snap       *Proxy // the directory snapshot it was made from (identity)
	size       int
	from       time.Time
}

// rankKey is what a ranking depends on besides the directory snapshot and
// the clock: who asks (as far as reachability and hints go) and for what.
type rankKey struct {
	network                  netip.Prefix
	exact, private, loopback bool
	fam                      family
	nsOnly                   bool
	subset                   bool
}

// rankTTL is how long a ranking is reused while the directory snapshot is
// the same: a proxy whose LiveWindow runs out, or a new RTT hint, takes
// effect this much later at most. Ranking every proxy was most of the cost
// of a query.
const rankTTL = time.Second

// ranking returns the cached ranking for r, or makes one. A ranking with
// candidates to ping is never cached: the pings' outcome changes it.
func (s *Server) ranking(ps []Proxy, r chooseReq) *ranking {
	key := rankKey{network: r.v.network, exact: r.v.exact, private: r.v.private, loopback: r.v.addr.IsLoopback(), fam: r.fam, nsOnly: r.nsOnly, subset: r.subset}
	var snap *Proxy
	if len(ps) > 0 {
		snap = &ps[0]
	}
	if rk, ok := s.ranks.Get(key); ok && rk.snap == snap && rk.size == len(ps) &&
		!r.now.Before(rk.from) && r.now.Sub(rk.from) < rankTTL {
		return rk
	}
	rk, cacheable := s.rank(ps, r)
	rk.snap, rk.size, rk.from = snap, len(ps), r.now
	if cacheable {
		s.ranks.Add(key, rk)
	}
	if s.handout != nil {
		s.handout(rk.handedOut(r.n))
	}
	return rk
}

// handedOut lists the candidates answers of n proxies name from this
// ranking: the groups up to the one that fills n (rotation goes through
// a whole group).
func (rk *ranking) handedOut(n int) []string {
	end := 0
	for _, g := range rk.groups {
		end = g
		if g >= n {
			break
		}
	}
	ids := make([]string, end)
	for i, c := range rk.cands[:end] {
		ids[i] = c.p.ID
	}
	return ids
}

// rank orders the candidates: those on the visitor's own network first,
// then by RTT hint (10 ms buckets), then by cluster levels shared with this
// node; ties by ID.
func (s *Server) rank(ps []Proxy, r chooseReq) (*ranking, bool) {
	cands := make([]pick, 0, len(ps))
	cacheable := true
	for i := range ps {
		p := &ps[i]
		if r.nsOnly && !p.Nameserver {
			continue
		}
		c := pick{p: p}
		local4, local6 := false, false
		if r.fam&fam4 != 0 {
			c.a4, local4 = bestAddr(p, r.v, true)
		}
		if r.fam&fam6 != 0 {
			c.a6, local6 = bestAddr(p, r.v, false)
		}
		if !c.a4.IsValid() && !c.a6.IsValid() {
			continue
		}
		switch s.liveness(p, r.now, !r.nsOnly) {
		case dead:
			continue
		case unknown:
			c.probe, cacheable = true, false
		}
		if rtt, ok := r.hints[p.ID]; ok && !local4 && !local6 {
			c.tier, c.sub = 1, int64(rtt/rttBucket)
		} else if !local4 && !local6 {
			c.tier, c.sub = 2, int64(3-clusterAffinity(r.self, p))
		}
		cands = append(cands, c)
	}
	spares := false
	if !r.nsOnly {
		cands, spares = withoutFull(cands)
	}
	slices.SortFunc(cands, func(a, b pick) int {
		return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(a.sub, b.sub), cmp.Compare(a.p.ID, b.p.ID))
	})
	rk := &ranking{cands: cands, probing: !cacheable, fullSpares: spares}
	for i := range cands {
		if i == len(cands)-1 || cands[i+1].tier != cands[i].tier || cands[i+1].sub != cands[i].sub {
			rk.groups = append(rk.groups, i+1)
		}
	}
	return rk, cacheable
}

// probe pings ids concurrently and reports which answered within
// ProbeTimeout. Concurrent queries share one ping per proxy, and results
// are cached for LiveWindow so a dead proxy costs one ping per window.
func (s *Server) probe(ids []string) []bool {
	res := make([]bool, len(ids))
	wait, cancel := context.WithTimeout(s.ctx, s.cfg.ProbeTimeout)
	defer cancel()
	var wg sync.WaitGroup // each goroutine writes only its own res[k]
	for k, id := range ids {
		ch := s.probeSF.DoChan(id, func() (any, error) {
			s.st.probes.Add(1)
			ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ProbeTimeout)
			defer cancel()
			err := s.prober.Ping(ctx, id)
			if err != nil {
				s.st.probeFailures.Add(1)
				s.log.Debug("proxy did not answer ping", "proxy", id, "err", err)
			}
			// A ping that timed out is a failure like any other and is
			// remembered, or every query would wait ProbeTimeout on the
			// same hung proxy; only a ping cut short by Close is not.
			if s.ctx.Err() == nil || err == nil {
				s.probeCache.Add(id, probeResult{ok: err == nil, at: s.now()})
			}
			return err == nil, nil
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case r := <-ch:
				res[k] = r.Val.(bool)
			case <-wait.Done():
			}
		}()
	}
	wg.Wait()
	return res
}

type hintEntry struct {
	rtts    map[string]time.Duration
	expires time.Time
}

// cachedHints returns the RTT hints for a network without asking Hints:
// ok is false when they are not cached (hintsFor asks).
func (s *Server) cachedHints(network netip.Prefix, now time.Time) (map[string]time.Duration, bool) {
	if s.hints == nil || !network.IsValid() {
		return nil, true
	}
	if e, ok := s.hintCache.Get(network); ok && now.Before(e.expires) {
		return e.rtts, true
	}
	return nil, false
}

// hintsFor returns cached RTT hints for a network, asking Hints on a miss
// but never waiting longer than HintTimeout.
func (s *Server) hintsFor(network netip.Prefix, now time.Time) map[string]time.Duration {
	if s.hints == nil || !network.IsValid() {
		return nil
	}
	if e, ok := s.hintCache.Get(network); ok && now.Before(e.expires) {
		return e.rtts
	}
	ch := s.hintSF.DoChan(network.String(), func() (any, error) {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HintTimeout)
		defer cancel()
		m := s.hints.RTTs(ctx, network)
		s.hintCache.Add(network, hintEntry{rtts: m, expires: s.now().Add(s.cfg.HintTTL)})
		return m, nil
	})
	timer := time.NewTimer(s.cfg.HintTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		m, _ := r.Val.(map[string]time.Duration)
		return m
	case <-timer.C:
		return nil
	}
}

// withoutFull leaves out proxies without headroom when any other live
// proxy is left: a saturated volunteer is handed out only when nothing
// else is, a paused one only when every one is paused. When the only others are still to be pinged, the busy
// ones stay as spares (spares is true): choose uses them only if every
// ping fails, since an answer without records would be cached as "no
// address" by resolvers. Paused ones are no spares: they serve nobody
// (every visitor would get 503), and the volunteer asked to be left out.
func withoutFull(cands []pick) (_ []pick, spares bool) {
	other := func(c pick) bool { return !c.p.Full }
	paused := func(c pick) bool { return c.p.Paused }
	switch {
	case !slices.ContainsFunc(cands, other) && slices.ContainsFunc(cands, func(c pick) bool { return !c.p.Paused }):
		// Every one busy: the saturated ones serve, the paused ones
		// would only answer 503.
		return slices.DeleteFunc(cands, paused), false
	case !slices.ContainsFunc(cands, other):
		// Every one paused: their 503 page links the origin, where no
		// records would be cached as "no address".
		return cands, false
	case slices.ContainsFunc(cands, func(c pick) bool { return !c.p.Full && !c.probe }):
		return slices.DeleteFunc(cands, func(c pick) bool { return c.p.Full }), false
	}
	cands = slices.DeleteFunc(cands, paused)
	return cands, slices.ContainsFunc(cands, func(c pick) bool { return c.p.Full })
}
