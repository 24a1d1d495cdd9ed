package dsht

import (
	"errors"
	"slices"
	"time"
)

type candState uint8

const (
	csFresh candState = iota
	csInflight
	csOK
	csFailed
)

// maxViaTries bounds the relays tried for one node in one lookup.
const maxViaTries = 2

// cand is one node a lookup knows of.
type cand struct {
	info        NodeInfo
	dist        kadID
	depth       int // hops from the lookup's origin: 0 for itself, 1 for its table
	state       candState
	self        bool
	directTried bool
	retried     bool  // a timed-out direct RPC was sent again
	claimAt     int64 // newest third-party claim of direct contact (unix ns)
	vias        []via // responders in this lookup that returned it
	viaTried    []ID
	via         *NodeInfo // the relay its answer came through
	resp        *Response
}

// lookup is Kademlia's iterative lookup at one level: up to Alpha RPCs
// outstanding, closest candidates first, until the finishSize closest live
// candidates have answered. Near the root, nodes this node cannot reach are
// tried through the nodes that returned them. Everything runs under the
// node's lock; RPC callbacks drive it forward.
type lookup struct {
	n          *Node
	level      int
	target     kadID
	req        Request
	finishSize int
	cands      []*cand // by distance to target
	index      map[ID]*cand
	inflight   int
	barrier    *kadID // a put's forward phase goes no closer than a full and loaded node
	done       bool
	started    int64
	rpcs       int
	contacted  []ID

	// onResponse sees every answer (the local one first); true ends the
	// lookup. onDone runs once when it ends, unless aborted.
	onResponse func(c *cand, resp *Response) bool
	onDone     func(l *lookup)
}

func (n *Node) newLookup(level int, op Op, target kadID, finishSize int) *lookup {
	l := &lookup{n: n, level: level, target: target, finishSize: max(finishSize, 1),
		index: map[ID]*cand{}, started: n.now()}
	l.req = Request{Op: op, Level: uint8(level), Target: ID(target)}
	if level > 0 {
		l.req.Cluster = n.levels[level].cluster
	}
	return l
}

// start queries this node itself (its answer seeds the lookup from its own
// routing table), adds the extra seeds and launches the first RPCs.
func (l *lookup) start(seeds []*cand) {
	n := l.n
	self := &cand{info: n.self, dist: xorKad(n.selfKad, l.target), self: true, state: csOK}
	l.insert(self)
	for _, s := range seeds {
		if s.self || l.index[s.info.ID] != nil {
			continue
		}
		l.insert(&cand{info: s.info, dist: s.dist, depth: 1, claimAt: s.claimAt})
	}
	req := l.req
	resp := n.serve(n.self.ID, &req, n.now())
	self.resp = resp
	l.merge(self, nil, resp.Contacts)
	if l.onResponse != nil && l.onResponse(self, resp) {
		l.finish()
		return
	}
	l.step()
}

func (l *lookup) maxCands() int { return 4*l.n.cfg.K + 8 }

// insert places c by distance; when the list is full the farthest candidate
// not in flight or answered makes room, or c is dropped.
func (l *lookup) insert(c *cand) bool {
	i, _ := slices.BinarySearchFunc(l.cands, c.dist, func(a *cand, d kadID) int {
		if lessKad(a.dist, d) {
			return -1
		}
		if a.dist == d {
			return 0
		}
		return 1
	})
	if len(l.cands) >= l.maxCands() {
		victim := -1
		for j := len(l.cands) - 1; j >= i; j-- {
			if s := l.cands[j].state; s == csFresh || s == csFailed {
				victim = j
				break
			}
		}
		if victim < 0 {
			return false
		}
		delete(l.index, l.cands[victim].info.ID)
		l.cands = slices.Delete(l.cands, victim, victim+1)
	}
	l.cands = slices.Insert(l.cands, i, c)
	l.index[c.info.ID] = c
	return true
}

func (l *lookup) beyondBarrier(c *cand) bool {
	return l.barrier != nil && lessKad(c.dist, *l.barrier)
}

// setBarrier records a full and loaded node. Answers arrive out of order, so
// the barrier is the farthest such node seen: a sequential forward phase
// would have stopped there first.
func (l *lookup) setBarrier(d kadID) {
	if l.barrier == nil || lessKad(*l.barrier, d) {
		l.barrier = &d
	}
}

func (l *lookup) step() {
	if l.done {
		return
	}
	seen, settled := 0, true
	for _, c := range l.cands {
		if seen == l.finishSize {
			break
		}
		if c.state == csFailed || l.beyondBarrier(c) {
			continue
		}
		if c.state != csOK {
			settled = false
			break
		}
		seen++
	}
	if settled {
		l.finish()
		return
	}
	for _, c := range l.cands {
		if l.inflight >= l.n.cfg.Alpha {
			break
		}
		if c.state == csFresh && !l.beyondBarrier(c) {
			l.query(c)
		}
	}
	if l.inflight == 0 {
		l.finish()
	}
}

// query contacts c directly unless this node saw it fail more recently than
// anyone claims to have heard from it; then only a relay may reach it.
func (l *lookup) query(c *cand) {
	n := l.n
	p := n.peers.get(c.info.ID)
	if p == nil || p.directAllowed(n.now(), n.cfg.UnreachableTTL, c.claimAt) {
		c.directTried = true
		l.send(c, nil)
		return
	}
	if l.tryVia(c) {
		return
	}
	c.state = csFailed
}

// rank is how many live candidates are closer than c.
func (l *lookup) rank(c *cand) int {
	r := 0
	for _, o := range l.cands {
		if o == c {
			break
		}
		if o.state != csFailed && !l.beyondBarrier(o) {
			r++
		}
	}
	return r
}

// tryVia sends c's request through a node that vouched for it: one that
// returned it in this lookup, or a relay remembered from earlier lookups.
// Only near the root, where one unreachable node can hide a key's values.
func (l *lookup) tryVia(c *cand) bool {
	n := l.n
	if !n.cfg.IndirectRouting || len(c.viaTried) >= maxViaTries || l.rank(c) >= n.cfg.RootNeighbours {
		return false
	}
	now := n.now()
	vs := slices.Clone(c.vias)
	if p := n.peers.get(c.info.ID); p != nil {
		vs = append(vs, p.viasByRecency()...)
	}
	for _, v := range vs {
		if v.id == c.info.ID || v.id == n.self.ID || slices.Contains(c.viaTried, v.id) {
			continue
		}
		r := n.peers.get(v.id)
		if r == nil || r.lastOK == 0 || r.recentlyFailed(now, n.cfg.UnreachableTTL) {
			continue
		}
		c.viaTried = append(c.viaTried, v.id)
		relay := r.info
		l.send(c, &relay)
		return true
	}
	return false
}

// send queries c, through via when set.
func (l *lookup) send(c *cand, via *NodeInfo) {
	n := l.n
	if c.state != csInflight {
		c.state = csInflight
		l.inflight++
	}
	l.rpcs++
	l.contacted = append(l.contacted, c.info.ID)
	timeout := n.rto(c.info.ID)
	if via != nil {
		timeout += n.rto(via.ID)
	}
	req := l.req
	n.call(c.info, via, &req, timeout, func(resp *Response, err error) {
		if l.done {
			return
		}
		if err != nil {
			l.failed(c, via, err)
			return
		}
		l.answered(c, via, resp)
	})
}

// failed handles an RPC to c that got no answer. Near the root a lost
// message matters, so a timed-out direct RPC is sent once more (Coral
// retried failed RPCs) before relays are tried.
func (l *lookup) failed(c *cand, via *NodeInfo, err error) {
	n := l.n
	if via == nil && !c.retried && errors.Is(err, ErrTimeout) && l.rank(c) < n.cfg.RootNeighbours {
		c.retried = true
		l.send(c, nil)
		return
	}
	if via == nil && n.cfg.IndirectRouting && len(c.vias) > 0 {
		// Remember who vouched for it, for this and later lookups.
		p := n.peers.get(c.info.ID)
		if p != nil {
			for _, v := range c.vias {
				p.addVia(v.id, v.at)
			}
		}
	}
	if l.tryVia(c) {
		return
	}
	c.state = csFailed
	l.inflight--
	l.step()
}

func (l *lookup) answered(c *cand, via *NodeInfo, resp *Response) {
	switch resp.Code {
	case CodeOK:
	case CodeUnreachable, CodeBusy:
		if via != nil && l.tryVia(c) {
			return
		}
		fallthrough
	default:
		c.state = csFailed
		l.inflight--
		l.step()
		return
	}
	c.state = csOK
	c.resp = resp
	c.via = via
	l.inflight--
	l.merge(c, via, resp.Contacts)
	if l.onResponse != nil && l.onResponse(c, resp) {
		l.finish()
		return
	}
	l.step()
}

// merge adds the contacts from's answer named. A node's own answers come
// straight from the responder, so the responder is a candidate relay for
// each contact it claims to have heard from.
func (l *lookup) merge(from *cand, relay *NodeInfo, contacts []Contact) {
	n := l.n
	now := n.now()
	direct := relay == nil && !from.self
	for _, ct := range contacts {
		id := ct.Node.ID
		if id == n.self.ID || id == from.info.ID {
			continue
		}
		var claimAt int64
		if ct.AgeMs >= 0 {
			claimAt = now - ct.AgeMs*int64(time.Millisecond)
		}
		c := l.index[id]
		if c == nil {
			info := ct.Node
			if p := n.peers.get(id); p != nil {
				info = p.info // the address this node knows wins over a third party's
			}
			c = &cand{info: info, dist: xorKad(kadOf(id), l.target), depth: from.depth + 1}
			if !l.insert(c) {
				continue
			}
		}
		if from.self {
			continue // this node's own table: no third-party claim
		}
		c.claimAt = max(c.claimAt, claimAt)
		if direct && claimAt > 0 && !slices.ContainsFunc(c.vias, func(v via) bool { return v.id == from.info.ID }) {
			c.vias = append(c.vias, via{id: from.info.ID, at: claimAt})
		}
	}
}

func (l *lookup) finish() {
	if l.done {
		return
	}
	l.done = true
	if l.onDone != nil {
		l.onDone(l)
	}
}

// abort ends the lookup without onDone (its operation gave up).
func (l *lookup) abort() { l.done = true }

// closestAnswered returns up to k answered candidates, closest first.
func (l *lookup) closestAnswered(k int, withSelf bool) []*cand {
	var out []*cand
	for _, c := range l.cands {
		if len(out) == k {
			break
		}
		if c.state == csOK && (withSelf || !c.self) {
			out = append(out, c)
		}
	}
	return out
}

// stack is the put's stack: answered nodes that were not both full and
// loaded and that the forward phase reached before any full and loaded one,
// farthest first, so the top (last) is the closest.
func (l *lookup) stack() []*cand {
	var out []*cand
	for i := len(l.cands) - 1; i >= 0; i-- {
		c := l.cands[i]
		if c.state != csOK || l.beyondBarrier(c) || c.resp == nil || c.resp.Full && c.resp.Loaded {
			continue
		}
		out = append(out, c)
	}
	return out
}

func (l *lookup) elapsed() time.Duration { return time.Duration(l.n.now() - l.started) }
