package dsht

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"
)

// nearTries bounds the nodes a near put+get tries, closest first.
const nearTries = 4

// nearAgree is how many nodes, closest first, must answer with nothing
// before a near put+get reports that it met nobody (2 left 20 nodes of a
// 100-node crowd first at the global level for 12 files: each node had
// heard from about 60 of the others). Nodes whose peer caches
// differ can name different roots (one does not know the closest node yet);
// a node that met nobody at its root asks the next one too, where a racer
// with the other view has stored, so the two still meet. Every node walks
// its list in the same order (distance to the key) and stops at the first
// node holding a value, so two racers never each meet the other: a node
// that meets a value met it at a node the other reached first.
const nearAgree = 3

// PutGetNear is a one-round put+get for when lookups are too slow to
// finish (a DSHT overwhelmed by a flash crowd): it stores value at the node
// closest to key in this node's most local non-empty routing table, the
// root as far as this node knows, without walking toward it, and returns
// the other values that node already held. Cluster-mates with complete
// tables pick the same root, which answers them one at a time, so of a
// crowd racing there exactly one meets nothing: test-and-set in one RPC
// instead of a lookup per level. Each try waits up to MaxRTO, since the
// point is a slow network; the next closest node is tried when one fails.
// It stores at no other level: the caller's regular announcement does.
func (n *Node) PutGetNear(ctx context.Context, key ID, value []byte, ttl time.Duration) ([]Value, error) {
	return n.PutGetNearAt(ctx, key, value, ttl, -1)
}

// PutGetNearAt is PutGetNear at the given level (negative: the most local
// non-empty one, as PutGetNear). The node that met nobody in its cluster
// tests again at level 0, so that of the clusters' first nodes only one
// goes to the origin.
// WithTrace records the nodes that answered its stores, closest first, as
// the level's Contacted, and its RPCs (the probe included).
func (n *Node) PutGetNearAt(ctx context.Context, key ID, value []byte, ttl time.Duration, level int, opts ...Option) ([]Value, error) {
	var o opOptions
	for _, f := range opts {
		f(&o)
	}
	return wait(n, ctx, "near put+get", func(done func([]Value, error)) func() {
		n.startPutGetNear(key, value, ttl, level, o.trace, done)
		return nil
	})
}

func (n *Node) startPutGetNear(key ID, value []byte, ttl time.Duration, level int, trace *Trace, done func([]Value, error)) {
	switch {
	case n.closed:
		done(nil, ErrClosed)
		return
	case len(value) == 0 || len(value) > n.cfg.MaxValueBytes:
		done(nil, fmt.Errorf("dsht: near put+get: value of %d bytes (limit %d)", len(value), n.cfg.MaxValueBytes))
		return
	case ttl < time.Millisecond || ttl > n.cfg.MaxTTL:
		done(nil, fmt.Errorf("dsht: near put+get: ttl %v outside [1ms, %v]", ttl, n.cfg.MaxTTL))
		return
	case level >= len(n.levels):
		done(nil, fmt.Errorf("dsht: near put+get: level %d of %d", level, len(n.levels)))
		return
	}
	if level < 0 {
		level = n.mostLocalLevel()
	}
	target := kadOf(key)
	req := Request{Op: OpStore, Level: uint8(level), Target: ID(target), Value: bytes.Clone(value),
		TTLMs: ttl.Milliseconds(), WantValues: true}
	if level > 0 {
		req.Cluster = n.levels[level].cluster
	}
	t := &nearTrace{LevelTrace: LevelTrace{Level: level}, started: n.now()}
	n.refineNear(req, level, n.nearRoots(level, target), t, func(vals []Value, err error) {
		if trace != nil {
			t.Elapsed = time.Duration(n.now() - t.started)
			t.Found = len(vals) > 0
			*trace = Trace{Levels: []LevelTrace{t.LevelTrace}, RPCs: t.RPCs, Elapsed: t.Elapsed}
		}
		done(vals, err)
	})
}

// nearTrace is a near put+get's trace while it runs.
type nearTrace struct {
	LevelTrace
	started int64
}

// refineNear asks the closest other node of roots, in one probe that
// stores nothing, for the values it holds and the nodes it knows closer to
// the key, and merges those into roots before the stores. Peer caches
// differ: in the 100-node crowd each node had heard from about 60 others
// at the global level, so two racers of different regions could each store
// at three nodes the other never tried, both meet nobody, and both go to
// the origin. The probed node is near the key, so its table holds the nodes
// nearest it, and racers that merge its answer start their stores at the
// same node. A value the probe meets was stored before this node stored
// anywhere, so taking it makes no cycle. After a failed probe the stores
// go to the other nodes of roots.
func (n *Node) refineNear(req Request, level int, roots []NodeInfo, t *nearTrace, done func([]Value, error)) {
	i := slices.IndexFunc(roots, func(r NodeInfo) bool { return r.ID != n.self.ID })
	if i < 0 {
		n.tryNear(req, level, roots, 0, t, done)
		return
	}
	probe := Request{Op: OpProbe, Level: req.Level, Target: req.Target, Cluster: req.Cluster, TTLMs: req.TTLMs, WantValues: true}
	t.RPCs++
	n.call(roots[i], nil, &probe, n.cfg.MaxRTO, func(resp *Response, err error) {
		if err != nil || resp.Code != CodeOK {
			// Not asked again: a node killed in a crowd stays in peer
			// caches for a while, and each try waits up to MaxRTO.
			n.tryNear(req, level, slices.Delete(slices.Clone(roots), i, i+1), 0, t, done)
			return
		}
		if vals := toValues(resp.Values, level, n.cfg.Clock(), req.Value); len(vals) > 0 {
			done(vals, nil)
			return
		}
		n.tryNear(req, level, n.mergeNear(roots, resp.Contacts, kadID(req.Target)), 0, t, done)
	})
}

// mergeNear returns the nearTries nodes of roots and contacts closest to
// target, closest first. A contact this node knows keeps the address it
// knows.
func (n *Node) mergeNear(roots []NodeInfo, contacts []Contact, target kadID) []NodeInfo {
	all := slices.Clone(roots)
	for _, ct := range contacts {
		id := ct.Node.ID
		if slices.ContainsFunc(all, func(r NodeInfo) bool { return r.ID == id }) || validNodeInfo(ct.Node) != nil {
			continue
		}
		info := ct.Node
		if p := n.peers.get(id); p != nil {
			info = p.info
		}
		all = append(all, info)
	}
	closer := byDistance(target)
	slices.SortStableFunc(all, func(a, b NodeInfo) int { return closer(a.ID, b.ID) })
	return all[:min(len(all), nearTries)]
}

// mostLocalLevel is the most local level whose routing table is not empty.
func (n *Node) mostLocalLevel() int {
	for l := len(n.levels) - 1; l > 0; l-- {
		if n.levels[l].table.size() > 0 {
			return l
		}
	}
	return 0
}

// nearRoots returns the nearTries nodes closest to target among this
// node's level-l peers and itself, closest first. It reads the peer cache,
// not the routing table: a slow network gets peers dropped from tables for
// timing out, each node a different few, and cluster-mates must still
// agree on the root. Nodes farther than this one are on the list too: a
// node that thinks itself the root tests the next ones, where racers that
// never heard of it test.
func (n *Node) nearRoots(level int, target kadID) []NodeInfo {
	now := n.now()
	type near struct {
		info NodeInfo
		dist kadID
	}
	all := []near{{n.self, xorKad(n.selfKad, target)}}
	for _, p := range n.peers.m {
		if p.lastOK == 0 {
			continue
		}
		if c, ok := p.claimAt(level, now, n.cfg.ClaimTTL); !ok || level > 0 && c.id != n.levels[level].cluster {
			continue
		}
		all = append(all, near{p.info, xorKad(p.kad, target)})
	}
	slices.SortFunc(all, func(a, b near) int {
		switch {
		case lessKad(a.dist, b.dist):
			return -1
		case lessKad(b.dist, a.dist):
			return 1
		}
		return 0
	})
	var out []NodeInfo
	for _, x := range all[:min(len(all), nearTries)] {
		out = append(out, x.info)
	}
	return out
}

// tryNear stores req at roots in order (this node's own storage when its
// turn comes) until one answers with values, nearAgree answered with
// nothing, or the list ends; answered counts the empty answers so far. Its
// own earlier value (the same bytes) is not someone else's.
func (n *Node) tryNear(req Request, level int, roots []NodeInfo, answered int, t *nearTrace, done func([]Value, error)) {
	next := func(vals []Value, ok bool) {
		if ok {
			t.Contacted = append(t.Contacted, roots[0].ID)
		}
		switch {
		case len(vals) > 0:
			done(vals, nil)
		case ok && answered+1 >= nearAgree, len(roots) == 1 && (ok || answered > 0):
			done(nil, nil)
		case len(roots) == 1:
			done(nil, fmt.Errorf("dsht: near put+get: %w", ErrTimeout))
		case ok:
			n.tryNear(req, level, roots[1:], answered+1, t, done)
		default:
			n.tryNear(req, level, roots[1:], answered, t, done)
		}
	}
	if roots[0].ID == n.self.ID {
		now := n.cfg.Clock()
		resp := n.serve(n.self.ID, &req, now.UnixNano())
		next(toValues(resp.Values, level, now, req.Value), true)
		return
	}
	t.RPCs++
	n.call(roots[0], nil, &req, n.cfg.MaxRTO, func(resp *Response, err error) {
		if err != nil || resp.Code != CodeOK && resp.Code != CodeRefused {
			next(nil, false)
			return
		}
		next(toValues(resp.Values, level, n.cfg.Clock(), req.Value), true)
	})
}
