package dsht

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"
)

// nextSeeds returns the closest nodes a level's lookup reached that are in
// this node's cluster at the next (less local) level: the search continues
// from them, so the ID space already covered is not walked again.
func (n *Node) nextSeeds(l *lookup, next int) []*cand {
	now := n.now()
	var out []*cand
	for _, c := range l.closestAnswered(n.cfg.RootNeighbours, false) {
		if c.via != nil {
			continue
		}
		if next > 0 {
			p := n.peers.get(c.info.ID)
			if p == nil {
				continue
			}
			cl, ok := p.claimAt(next, now, n.cfg.ClaimTTL)
			if !ok || cl.id != n.levels[next].cluster {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

func toValues(ws []WireValue, level int, now time.Time, exclude []byte) []Value {
	var out []Value
	for _, w := range ws {
		if exclude != nil && bytes.Equal(w.Data, exclude) {
			continue
		}
		out = append(out, Value{Data: bytes.Clone(w.Data), Expires: now.Add(time.Duration(w.TTLMs) * time.Millisecond), Level: level})
	}
	return out
}

func hopsOf(l *lookup, at *cand) int {
	if at != nil {
		return at.depth
	}
	if cs := l.closestAnswered(1, true); len(cs) > 0 {
		return cs[0].depth
	}
	return 0
}

// ---- get ----

type getOp struct {
	n         *Node
	key       ID
	target    kadID
	o         opOptions
	level     int
	cur       *lookup
	seeds     []*cand
	done      func([]Value, error)
	finished  bool
	stopTimer func() bool
	started   int64
}

func (n *Node) startGet(key ID, o opOptions, done func([]Value, error)) (cancel func()) {
	if n.closed {
		done(nil, ErrClosed)
		return nil
	}
	g := &getOp{n: n, key: key, target: kadOf(key), o: o, level: o.start, done: done, started: n.now()}
	if o.trace != nil {
		*o.trace = Trace{}
	}
	g.stopTimer = n.after(n.cfg.OpTimeout, func() { g.complete(nil, fmt.Errorf("dsht: get: %w", ErrTimeout)) })
	g.runLevel()
	return func() { g.complete(nil, fmt.Errorf("dsht: get: %w", context.Canceled)) }
}

func (g *getOp) runLevel() {
	n := g.n
	l := n.newLookup(g.level, OpFindValue, g.target, n.cfg.RootNeighbours)
	var found []Value
	var foundAt *cand
	l.onResponse = func(c *cand, resp *Response) bool {
		if len(resp.Values) == 0 {
			return false
		}
		found, foundAt = toValues(resp.Values, g.level, n.cfg.Clock(), nil), c
		return len(found) > 0
	}
	l.onDone = func(l *lookup) {
		if t := g.o.trace; t != nil {
			t.Levels = append(t.Levels, LevelTrace{Level: g.level, Hops: hopsOf(l, foundAt), RPCs: l.rpcs,
				Elapsed: l.elapsed(), Found: found != nil, Contacted: l.contacted})
			t.RPCs += l.rpcs
		}
		if found != nil {
			g.complete(found, nil)
			return
		}
		if g.level > g.o.stop {
			g.seeds = n.nextSeeds(l, g.level-1)
			g.level--
			g.runLevel()
			return
		}
		g.complete(nil, nil)
	}
	g.cur = l
	l.start(g.seeds)
}

func (g *getOp) complete(vals []Value, err error) {
	if g.finished {
		return
	}
	g.finished = true
	g.stopTimer()
	if g.cur != nil {
		g.cur.abort()
	}
	if t := g.o.trace; t != nil {
		t.Elapsed = time.Duration(g.n.now() - g.started)
	}
	g.done(vals, err)
}

// ---- put and put+get ----

type putOp struct {
	n          *Node
	key        ID
	target     kadID
	value      []byte
	ttl        time.Duration
	wantValues bool
	o          opOptions
	level      int
	cur        *lookup
	seeds      []*cand
	stack      []*cand
	storeRPCs  int
	found      []Value
	storedAny  bool
	copying    int  // extra-copy stores in flight (see storeCopies)
	awaiting   bool // stored: a plain put waits for its copies to answer
	endErr     error
	done       func([]Value, error)
	finished   bool
	stopTimer  func() bool
	started    int64
}

func (n *Node) startPut(key ID, value []byte, ttl time.Duration, wantValues bool, o opOptions, done func([]Value, error)) (cancel func()) {
	if n.closed {
		done(nil, ErrClosed)
		return nil
	}
	switch {
	case len(value) == 0 || len(value) > n.cfg.MaxValueBytes:
		done(nil, fmt.Errorf("dsht: put: value of %d bytes (limit %d)", len(value), n.cfg.MaxValueBytes))
		return nil
	case ttl < time.Millisecond || ttl > n.cfg.MaxTTL:
		done(nil, fmt.Errorf("dsht: put: ttl %v outside [1ms, %v]", ttl, n.cfg.MaxTTL))
		return nil
	}
	p := &putOp{n: n, key: key, target: kadOf(key), value: bytes.Clone(value), ttl: ttl, wantValues: wantValues,
		o: o, level: o.start, done: done, started: n.now()}
	if o.trace != nil {
		*o.trace = Trace{}
	}
	p.stopTimer = n.after(n.cfg.OpTimeout, func() {
		if p.awaiting { // stored; a copy holder is slow
			p.complete(p.endErr)
			return
		}
		p.complete(fmt.Errorf("dsht: put: %w", ErrTimeout))
	})
	p.runLevel()
	return func() { p.complete(fmt.Errorf("dsht: put: %w", context.Canceled)) }
}

func (p *putOp) storeReq() Request {
	r := Request{Op: OpStore, Level: uint8(p.level), Target: ID(p.target), Value: p.value,
		TTLMs: p.ttl.Milliseconds(), WantValues: p.wantValues}
	if p.level > 0 {
		r.Cluster = p.n.levels[p.level].cluster
	}
	return r
}

// runLevel is the forward phase: walk toward the key, noting which nodes are
// full and loaded.
func (p *putOp) runLevel() {
	n := p.n
	l := n.newLookup(p.level, OpProbe, p.target, n.cfg.RootNeighbours)
	l.req.TTLMs = p.ttl.Milliseconds()
	l.req.WantValues = p.wantValues
	p.storeRPCs = 0
	l.onResponse = func(c *cand, resp *Response) bool {
		p.noteValues(resp.Values)
		if resp.Full && resp.Loaded {
			l.setBarrier(c.dist)
		}
		return false
	}
	l.onDone = func(l *lookup) {
		p.stack = l.stack()
		p.reverse(l)
	}
	p.cur = l
	l.start(p.seeds)
}

// noteValues keeps the first values met, in either phase, at the
// operation's start level. That level's root is the one place every
// concurrent put+get of the cluster passes, so exactly one of them (the first
// to store there) meets nothing. Values met at less local levels are not
// returned: two nodes of different clusters could each meet the other's
// value there and wait on each other with nobody fetching (the deadlock
// CoralCDN's put+get was designed to avoid, NSDI 2010);
// callers that want copies from farther away call Get first.
func (p *putOp) noteValues(ws []WireValue) {
	if p.wantValues && p.found == nil && p.level == p.o.start {
		if vs := toValues(ws, p.level, p.n.cfg.Clock(), p.value); len(vs) > 0 {
			p.found = vs
		}
	}
}

// reverse is the reverse phase: store at the top of the stack, popping on
// failure.
func (p *putOp) reverse(l *lookup) {
	if p.finished {
		return
	}
	n := p.n
	if len(p.stack) == 0 {
		p.levelDone(l, nil)
		return
	}
	top := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	req := p.storeReq()
	if top.self {
		resp := n.serve(n.self.ID, &req, n.now())
		p.noteValues(resp.Values)
		if resp.Code == CodeOK {
			p.storeCopies(req, slices.Clone(p.stack))
			p.levelDone(l, top)
		} else {
			p.reverse(l)
		}
		return
	}
	timeout := n.rto(top.info.ID)
	if top.via != nil {
		timeout += n.rto(top.via.ID)
	}
	p.storeRPCs++
	n.call(top.info, top.via, &req, timeout, func(resp *Response, err error) {
		if p.finished {
			return
		}
		if err == nil {
			p.noteValues(resp.Values)
			if resp.Code == CodeOK {
				p.storeCopies(req, slices.Clone(p.stack))
				p.levelDone(l, top)
				return
			}
		}
		p.reverse(l)
	})
}

// copyTries bounds the nodes tried for one extra copy.
const copyTries = 2

// storeCopies stores Copies-1 more copies of the value at the next nodes
// down the stack: the next closest to the key after the node that took it,
// this node included when it is one of them. Every put for a key thus lands
// on the same few nodes, so a get that meets any of them finds the same
// values as at the first, and still finds them when that node dies before
// the owners renew. The stores run while the put goes on to the next level
// and may finish after the put has answered its caller.
func (p *putOp) storeCopies(req Request, rest []*cand) {
	queue := make([]*cand, 0, len(rest))
	for i := len(rest) - 1; i >= 0; i-- { // closest first
		queue = append(queue, rest[i])
	}
	req.WantValues = false
	copies := &copySet{queue: queue, failsLeft: (copyTries - 1) * (p.n.cfg.Copies - 1)}
	for range p.n.cfg.Copies - 1 {
		p.storeCopy(req, copies)
	}
}

// copySet is one level's extra copies: the nodes not yet asked, closest
// first, and how many more refusals may be passed over.
type copySet struct {
	queue     []*cand
	failsLeft int
}

func (cs *copySet) next() *cand {
	if len(cs.queue) == 0 {
		return nil
	}
	c := cs.queue[0]
	cs.queue = cs.queue[1:]
	return c
}

// storeCopy stores req at the next node of cs that accepts it.
func (p *putOp) storeCopy(req Request, cs *copySet) {
	n := p.n
	c := cs.next()
	if c == nil {
		return
	}
	if c.self {
		if n.serve(n.self.ID, &req, n.now()).Code != CodeOK && cs.failsLeft > 0 {
			cs.failsLeft--
			p.storeCopy(req, cs)
		}
		return
	}
	timeout := n.rto(c.info.ID)
	if c.via != nil {
		timeout += n.rto(c.via.ID)
	}
	p.storeRPCs++
	p.copying++
	n.call(c.info, c.via, &req, timeout, func(resp *Response, err error) {
		// Copies outlive the operation: a refused one moves on to the
		// next node even after the caller has its answer.
		p.copying--
		if (err != nil || resp.Code != CodeOK) && cs.failsLeft > 0 {
			cs.failsLeft--
			p.storeCopy(req, cs)
		}
		if p.awaiting && p.copying == 0 {
			p.complete(p.endErr)
		}
	})
}

func (p *putOp) levelDone(l *lookup, at *cand) {
	n := p.n
	// Storing only at itself, with no other node of the cluster answering,
	// places the value where nobody else looks.
	if at != nil && (!at.self || len(l.closestAnswered(1, false)) > 0) {
		p.storedAny = true
	}
	if t := p.o.trace; t != nil {
		lt := LevelTrace{Level: p.level, Hops: hopsOf(l, at), RPCs: l.rpcs + p.storeRPCs, Elapsed: l.elapsed(),
			Stored: at != nil, Contacted: l.contacted}
		if p.wantValues {
			lt.Found = p.found != nil
		}
		t.Levels = append(t.Levels, lt)
		t.RPCs += lt.RPCs
	}
	if p.level > p.o.stop {
		p.seeds = n.nextSeeds(l, p.level-1)
		p.level--
		p.runLevel()
		return
	}
	if !p.storedAny {
		p.endErr = ErrNoStore
	}
	// A put+get does not wait for the extra copies: its answer (who
	// downloads) must not wait on a slow or dead copy holder's timeout,
	// which under load pushed test-and-sets past their deadline and sent
	// nodes to the origin. A plain put answers once its copies have (within
	// the operation's timeout), so a get right after it finds the value at
	// whichever copy holder it meets first.
	if !p.wantValues && p.copying > 0 {
		p.awaiting = true
		return
	}
	p.complete(p.endErr)
}

func (p *putOp) complete(err error) {
	if p.finished {
		return
	}
	p.finished = true
	p.stopTimer()
	if p.cur != nil {
		p.cur.abort()
	}
	if t := p.o.trace; t != nil {
		t.Elapsed = time.Duration(p.n.now() - p.started)
	}
	p.done(p.found, err)
}

// ---- node lookups, bootstrap, refresh ----

// findNode looks up target at level to fill the routing table; done (may be
// nil) runs when it ends.
func (n *Node) findNode(level int, target kadID, finishSize int, done func()) {
	l := n.newLookup(level, OpFindNode, target, finishSize)
	stop := n.after(n.cfg.OpTimeout, l.finish)
	l.onDone = func(*lookup) {
		stop()
		if done != nil {
			done()
		}
	}
	l.start(nil)
}

func (n *Node) startBootstrap(seeds []NodeInfo, done func(error)) {
	if n.closed {
		done(ErrClosed)
		return
	}
	if !n.maintain {
		n.refoundClusters()
	}
	n.startMaintenance()
	var valid []NodeInfo
	for _, s := range seeds {
		if s.ID != n.self.ID && validNodeInfo(s) == nil {
			valid = append(valid, s)
		}
	}
	if len(valid) == 0 {
		done(nil)
		return
	}
	pending, ok := len(valid), 0
	for _, s := range valid {
		n.peers.ensure(s, true)
		n.call(s, nil, &Request{Op: OpPing}, n.rto(s.ID), func(resp *Response, err error) {
			if err == nil && resp.Code == CodeOK {
				ok++
			}
			pending--
			if pending > 0 {
				return
			}
			if ok == 0 {
				done(ErrNoBootstrap)
				return
			}
			n.fillTable(0, func() { done(nil) })
		})
	}
}

// refoundClusters dates the node's own clusters to when it joins, not to
// when it was created, unless it already told someone its clusters (it
// answered an RPC before joining): a re-dated cluster would leave a ghost
// behind, the older ID its peers heard, which they would join (the older
// cluster wins, see better) after its only member had left it. In the
// simulator every node is created at time zero and joins over minutes;
// dated by join, a region converges on its first joiner's cluster, which
// later joiners hear of in their first lookups, instead of on a random
// member's, each node moving at every older cluster it learns of (15 %
// fewer messages to build 1,000 nodes).
func (n *Node) refoundClusters() {
	if n.claims != nil {
		return
	}
	for l := 1; l < len(n.levels); l++ {
		if lv := n.levels[l]; lv.changes == 0 && lv.table.size() == 0 {
			lv.cluster = n.newClusterID()
		}
	}
}

// fillTable looks this node up at level, then looks up a random position
// in every bucket farther away than its nearest neighbour (Kademlia's join),
// all at once.
func (n *Node) fillTable(level int, done func()) {
	n.findNode(level, n.selfKad, n.cfg.K, func() {
		t := n.levels[level].table
		near := t.closest(n.selfKad, 1)
		if len(near) == 0 {
			if done != nil {
				done()
			}
			return
		}
		limit := min(cpl(n.selfKad, kadOf(near[0])), 24)
		var targets []kadID
		for c := 0; c < limit; c++ {
			if t.bucketFill(c) < n.cfg.K {
				targets = append(targets, randomKadWithCpl(n.selfKad, c, n.rng.Uint64))
			}
		}
		pending := len(targets)
		if pending == 0 {
			if done != nil {
				done()
			}
			return
		}
		for _, tg := range targets {
			n.findNode(level, tg, n.cfg.K, func() {
				pending--
				if pending == 0 && done != nil {
					done()
				}
			})
		}
	})
}
