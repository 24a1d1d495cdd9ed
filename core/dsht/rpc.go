package dsht

import (
	"context"
	"fmt"
	"math"
	"time"
)

// call sends req to `to`, directly or through the relay via, and runs cb
// under the lock exactly once: with the answer, or with an error when the
// RPC failed, timed out or came back malformed. It keeps the peer cache
// current: RTT and liveness for direct answers, failures, cluster claims.
func (n *Node) call(to NodeInfo, via *NodeInfo, req *Request, timeout time.Duration, cb func(*Response, error)) {
	if len(n.peers.m) > n.peers.limit+n.peers.limit/4 {
		n.prunePeers()
	}
	wire := *req
	wire.Clusters = n.clusterClaims()
	dest := to
	if via != nil {
		t := to
		wire.ForwardTo = &t
		dest = *via
		n.stats.relayed++
	}
	n.stats.sent++
	n.stats.sentOp[req.Op%6]++
	sent := n.now()

	var finished, timedOut bool
	var stop func() bool
	var cancel context.CancelFunc
	// complete runs once per outcome source; the first one wins. After a
	// timeout the transport keeps listening (up to MaxRTO) so a late reply
	// can still correct the peer's RTT.
	complete := func(resp *Response, err error, timer bool, measured time.Duration) {
		now := n.now()
		rtt := time.Duration(now - sent)
		if measured > 0 && measured < rtt {
			rtt = measured // the exchange without a dial (TimedNetwork)
		}
		if finished {
			// A reply after the timeout: too late for the caller, but the node
			// is alive and the sample shows the timeout was too short.
			if timedOut && via == nil && err == nil && validateResponse(resp) == nil {
				if p := n.peers.get(to.ID); p != nil {
					p.observeRTT(rtt, now)
					n.observeGlobalRTT(rtt)
					p.lastOK = now
					p.fails = 0
					p.setClaims(resp.Clusters, now)
					n.updateTables(p, now)
				}
			}
			return
		}
		finished = true
		if stop != nil {
			stop()
		}
		if err == nil {
			err = validateResponse(resp)
		}
		if err != nil {
			if cancel != nil && !timer {
				cancel()
			}
			n.stats.failures++
			if via == nil {
				n.markFailed(n.peers.ensure(to, false), now)
			}
			cb(nil, fmt.Errorf("dsht: %v to %x: %w", req.Op, to.ID[:4], err))
			return
		}
		if cancel != nil {
			cancel()
		}
		if via == nil {
			p := n.peers.ensure(to, false)
			p.observeRTT(rtt, now)
			n.observeGlobalRTT(rtt)
			p.lastOK = now
			p.fails = 0
			p.setClaims(resp.Clusters, now)
			n.updateTables(p, now)
			n.nudge(p, now)
		} else {
			if r := n.peers.get(via.ID); r != nil {
				r.lastOK = now
				r.fails = 0
			}
			if resp.Code != CodeUnreachable && resp.Code != CodeBusy {
				p := n.peers.ensure(to, false)
				p.lastVia = now
				p.setClaims(resp.Clusters, now)
			}
		}
		cb(resp, nil)
	}
	timed, _ := n.net.(TimedNetwork)
	if timed != nil && !timed.Connected(dest) {
		timeout += n.cfg.InitialRTO
	}
	stop = n.after(timeout, func() {
		if finished {
			return
		}
		n.stats.timeouts++
		timedOut = true
		complete(nil, ErrTimeout, true, 0)
	})
	if n.async != nil {
		n.async.CallAsync(dest, &wire, func(resp *Response, err error) {
			n.locked(func() { complete(resp, err, false, 0) })
		})
		return
	}
	ctx, c := context.WithTimeout(n.ctx, max(timeout, n.cfg.MaxRTO))
	cancel = c
	go func() {
		var resp *Response
		var err error
		var measured time.Duration
		if timed != nil {
			resp, measured, err = timed.CallTimed(ctx, dest, &wire)
		} else {
			resp, err = n.net.Call(ctx, dest, &wire)
		}
		c()
		n.locked(func() { complete(resp, err, false, measured) })
	}()
}

// markFailed records a direct failure. The node stays in the cache (and is
// skipped by lookups while recently unreachable); a second failure in a row
// drops it from the routing tables.
func (n *Node) markFailed(p *peerState, now int64) {
	p.lastFail = now
	p.fails++
	if p.fails >= 2 {
		for _, lv := range n.levels {
			lv.table.remove(p.info.ID)
		}
	}
}

// updateTables files a node this node heard from directly: always at level
// 0, and at a higher level exactly when it claims this node's cluster there.
func (n *Node) updateTables(p *peerState, now int64) {
	if p.info.ID == n.self.ID || p.recentlyFailed(now, n.cfg.UnreachableTTL) {
		return
	}
	n.levels[0].table.add(p.info.ID, p.kad)
	for l := 1; l < len(n.levels); l++ {
		c, ok := p.claimAt(l, now, n.cfg.ClaimTTL)
		switch {
		case !ok:
		case c.id == n.levels[l].cluster:
			n.levels[l].table.add(p.info.ID, p.kad)
		default:
			n.levels[l].table.remove(p.info.ID)
		}
	}
}

func (n *Node) observeGlobalRTT(rtt time.Duration) {
	// gmax follows the largest RTT, halving every ten minutes without a
	// larger one, so nodes never measured get a timeout that suits the
	// farthest ones too.
	now := n.now()
	if n.gmaxAt != 0 {
		n.gmax = time.Duration(float64(n.gmax) * math.Exp2(-float64(now-n.gmaxAt)/float64(10*time.Minute)))
	}
	n.gmaxAt = now
	n.gmax = max(n.gmax, rtt)
	n.global.observe(rtt)
}

// rto is the adaptive timeout for an RPC to id. Nodes never measured get a
// generous timeout from the largest RTTs seen lately: a premature timeout
// would mark a live node unreachable.
func (n *Node) rto(id ID) time.Duration {
	if p := n.peers.get(id); p != nil && p.samples > 0 {
		return rtoFor(p.srtt, p.rttvar, n.cfg.MinRTO, n.cfg.MaxRTO)
	}
	if n.global.samples == 0 {
		return n.cfg.InitialRTO
	}
	return rtoFor(2*n.gmax, n.global.rttvar, n.cfg.MinRTO, n.cfg.MaxRTO)
}

// clusterClaims is what this node tells every peer about its clusters. The
// slice is shared by the messages sent until a claim changes; nobody may
// modify it.
func (n *Node) clusterClaims() []ClusterInfo {
	changed := n.claims == nil
	for l := 1; l < len(n.levels); l++ {
		ci := ClusterInfo{Level: uint8(l), ID: n.levels[l].cluster, Size: n.clusterSize(l)}
		if !changed && n.claims[l-1] != ci {
			changed = true
		}
	}
	if changed {
		out := make([]ClusterInfo, 0, len(n.levels)-1)
		for l := 1; l < len(n.levels); l++ {
			out = append(out, ClusterInfo{Level: uint8(l), ID: n.levels[l].cluster, Size: n.levels[l].size})
		}
		n.claims = out
	}
	return n.claims
}

// clusterSize is this node's own estimate of its level-l cluster, counting
// only table members whose recent claims name the cluster (members that left
// linger in the table until heard from), cached for a second because every
// RPC carries it.
func (n *Node) clusterSize(l int) int64 {
	lv := n.levels[l]
	now := n.now()
	if lv.sizeAt == 0 || now-lv.sizeAt > int64(time.Second) {
		var keep func(ID) bool
		if l > 0 {
			keep = func(id ID) bool {
				p := n.peers.get(id)
				if p == nil {
					return false
				}
				c, ok := p.claimAt(l, now, n.cfg.ClaimTTL)
				return ok && c.id == lv.cluster
			}
		}
		lv.size = lv.table.estimateSize(n.cfg.K, keep)
		lv.sizeAt = now
	}
	return lv.size
}
