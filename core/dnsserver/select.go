package dnsserver

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
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
	return visitor{addr: a, network: p, exact: bits == full, private: isPrivate(a) || a.IsLoopback()}
}

func isPrivate(a netip.Addr) bool {
	return a.IsPrivate() || (a.Is4() && a.As4()[0] == 100 && a.As4()[1]&0xC0 == 64) // RFC 6598 CGNAT
}

// reachable says whether a visitor can connect to address a of proxy p, and
// whether a is local to it (same network or same LAN), which ranks first.
func reachable(a netip.Addr, public bool, v visitor) (ok, local bool) {
	a = a.Unmap()
	switch {
	case !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLinkLocalUnicast():
		return false, false
	case a.IsLoopback():
		return v.addr.IsLoopback(), v.addr.IsLoopback()
	case isPrivate(a):
		return v.private, v.private
	}
	same := v.exact && v.network.Contains(a)
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
	if r, ok := s.probeCache.get(p.ID); ok && now.Sub(r.at) <= s.cfg.LiveWindow && !r.at.Before(p.LastHeard) {
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
}

// choose returns up to r.n live proxies reachable by r.v, nearest first.
func (s *Server) choose(ps []Proxy, r chooseReq) []pick {
	cands := make([]pick, 0, len(ps))
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
			c.probe = true
		}
		if rtt, ok := r.hints[p.ID]; ok && !local4 && !local6 {
			c.tier, c.sub = 1, int64(rtt/rttBucket)
		} else if !local4 && !local6 {
			c.tier, c.sub = 2, int64(3-clusterAffinity(r.self, p))
		}
		cands = append(cands, c)
	}
	if !r.nsOnly {
		cands = withoutFull(cands)
	}
	// Walk groups of equally good candidates, best first, until n live ones
	// are found. Only the groups needed are ordered (a full sort dominated
	// the cost of a query); each is sorted by ID and rotated for load
	// balance. cands[:done] is the final order.
	less := func(a, b *pick) bool { return a.tier < b.tier || a.tier == b.tier && a.sub < b.sub }
	var chosen, pending []int // indices into cands, in rank order
	for done := 0; done < len(cands) && len(chosen) < r.n; {
		rest := cands[done:]
		best := 0
		for i := range rest {
			if less(&rest[i], &rest[best]) {
				best = i
			}
		}
		tier, sub := rest[best].tier, rest[best].sub
		j := 0
		for i := range rest {
			if rest[i].tier == tier && rest[i].sub == sub {
				rest[i], rest[j] = rest[j], rest[i]
				j++
			}
		}
		g := rest[:j]
		slices.SortFunc(g, func(a, b pick) int { return cmp.Compare(a.p.ID, b.p.ID) })
		if k := int(r.rotation % uint64(len(g))); k > 0 {
			slices.Reverse(g[:k])
			slices.Reverse(g[k:])
			slices.Reverse(g)
		}
		// Take live ones in order; unknown ones ranked above the n-th live
		// one are pinged (at most n of them) and slot in where they ranked.
		for i := done; i < done+j && len(chosen) < r.n; i++ {
			if !cands[i].probe {
				chosen = append(chosen, i)
			} else if len(pending) < r.n {
				pending = append(pending, i)
			}
		}
		done += j
	}
	if len(pending) > 0 {
		ids := make([]string, len(pending))
		for k, i := range pending {
			ids[k] = cands[i].p.ID
		}
		for k, ok := range s.probe(ids) {
			if ok {
				chosen = append(chosen, pending[k])
			}
		}
		slices.Sort(chosen)
		chosen = chosen[:min(len(chosen), r.n)]
	}
	out := make([]pick, len(chosen))
	for k, i := range chosen {
		out[k] = cands[i]
	}
	return out
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
			if ctx.Err() == nil || err == nil {
				s.probeCache.put(id, probeResult{ok: err == nil, at: s.now()})
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

// hintsFor returns cached RTT hints for a network, asking Hints on a miss
// but never waiting longer than HintTimeout.
func (s *Server) hintsFor(network netip.Prefix, now time.Time) map[string]time.Duration {
	if s.hints == nil || !network.IsValid() {
		return nil
	}
	if e, ok := s.hintCache.get(network); ok && now.Before(e.expires) {
		return e.rtts
	}
	ch := s.hintSF.DoChan(network.String(), func() (any, error) {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HintTimeout)
		defer cancel()
		m := s.hints.RTTs(ctx, network)
		s.hintCache.put(network, hintEntry{rtts: m, expires: s.now().Add(s.cfg.HintTTL)})
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

// withoutFull leaves out proxies without headroom when any other live (or
// possibly live) proxy is left: a paused or saturated volunteer is handed
// out only when nothing else is.
func withoutFull(cands []pick) []pick {
	if !slices.ContainsFunc(cands, func(c pick) bool { return !c.p.Full }) {
		return cands
	}
	return slices.DeleteFunc(cands, func(c pick) bool { return c.p.Full })
}
