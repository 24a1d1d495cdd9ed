package dsht

import (
	"fmt"
	"time"
)

// handle serves one inbound request (under the lock). from is the transport's
// word for the sender, so it is trusted for liveness and address; everything
// in req is checked first.
func (n *Node) handle(from NodeInfo, req *Request, reply func(*Response, error)) {
	if n.closed {
		reply(nil, ErrClosed)
		return
	}
	if err := validNodeInfo(from); err != nil {
		n.stats.bad++
		reply(nil, fmt.Errorf("dsht: handle rpc: sender: %w", err))
		return
	}
	if from.ID == n.self.ID {
		n.stats.bad++
		reply(nil, fmt.Errorf("dsht: handle rpc: %w", badf("request from this node's own ID")))
		return
	}
	if err := validateRequest(req, len(n.levels), n.cfg.MaxValueBytes, n.cfg.MaxTTL.Milliseconds()); err != nil {
		n.stats.bad++
		reply(nil, fmt.Errorf("dsht: handle rpc: %w", err))
		return
	}
	now := n.now()
	n.stats.received++
	n.stats.recvOp[req.Op%6]++
	if len(n.peers.m) > n.peers.limit+n.peers.limit/4 {
		n.prunePeers()
	}
	p := n.peers.ensure(from, true)
	p.lastOK = now
	p.fails = 0
	p.setClaims(req.Clusters, now)
	n.updateTables(p, now)
	n.nudge(p, now)

	if req.ForwardTo != nil {
		n.forward(from, req, reply)
		return
	}
	reply(n.serve(from.ID, req, now), nil)
}

// serve answers a validated request; lookups also use it to query this node
// itself, so the local node takes part in its own gets and puts. requester
// is the transport's from (over libp2p the peer the stream came on, which
// its security handshake authenticated; the request itself names no
// sender), and a store is charged to its quota. A relayed store is charged
// to the relay that delivered it, the only sender this node can verify.
func (n *Node) serve(requester ID, req *Request, now int64) *Response {
	resp := &Response{Clusters: n.clusterClaims()}
	l := int(req.Level)
	if l > 0 && req.Cluster != (ID{}) && req.Cluster != n.levels[l].cluster {
		resp.Code = CodeWrongCluster
		return resp
	}
	key := kadID(req.Target)
	ttl := time.Duration(req.TTLMs) * time.Millisecond
	switch req.Op {
	case OpPing:
	case OpFindNode:
		resp.Contacts = n.contacts(l, key, requester, now)
	case OpFindValue:
		n.store.request(l, key, now)
		resp.Values = n.store.get(l, key, now, n.cfg.ReturnValues, nil)
		if len(resp.Values) == 0 {
			resp.Contacts = n.contacts(l, key, requester, now)
		}
	case OpProbe:
		resp.Full = n.store.isFull(l, key, ttl, now)
		resp.Loaded = n.store.loaded(l, key, now)
		n.store.request(l, key, now)
		if req.WantValues {
			resp.Values = n.store.get(l, key, now, n.cfg.ReturnValues, nil)
		}
		resp.Contacts = n.contacts(l, key, requester, now)
	case OpStore:
		full := n.store.isFull(l, key, ttl, now)
		loaded := n.store.loaded(l, key, now)
		n.store.request(l, key, now)
		if req.WantValues {
			resp.Values = n.store.get(l, key, now, n.cfg.ReturnValues, req.Value)
		}
		resp.Full, resp.Loaded = full, loaded
		if full && loaded || !n.store.put(l, key, requester, req.Value, ttl, now) {
			resp.Code = CodeRefused
		}
	}
	return resp
}

// contacts returns up to K level-l table members nearest to target, leaving
// out the requester and nodes this node recently failed to reach, each
// tagged with how long ago this node heard from it.
func (n *Node) contacts(l int, target kadID, exclude ID, now int64) []Contact {
	ids := n.levels[l].table.closest(target, n.cfg.K+8)
	out := make([]Contact, 0, min(len(ids), n.cfg.K))
	for _, id := range ids {
		if len(out) == n.cfg.K {
			break
		}
		if id == exclude {
			continue
		}
		p := n.peers.get(id)
		if p == nil || p.lastOK == 0 || p.recentlyFailed(now, n.cfg.UnreachableTTL) {
			continue
		}
		out = append(out, Contact{Node: p.info, AgeMs: (now - p.lastOK) / int64(time.Millisecond)})
	}
	return out
}

// forward relays a request to the node it names (Coral's forwarding RPC for
// non-transitive links). Only nodes this node itself heard from are relayed
// to, at the address it knows, so a relay cannot be aimed at arbitrary hosts.
func (n *Node) forward(from NodeInfo, req *Request, reply func(*Response, error)) {
	to := *req.ForwardTo
	if to.ID == n.self.ID || to.ID == from.ID {
		n.stats.bad++
		reply(nil, fmt.Errorf("dsht: handle rpc: %w", badf("forward to the relay or the sender")))
		return
	}
	if !n.cfg.IndirectRouting {
		reply(&Response{Code: CodeUnreachable}, nil)
		return
	}
	if n.forwards >= n.cfg.MaxForwards {
		reply(&Response{Code: CodeBusy}, nil)
		return
	}
	now := n.now()
	p := n.peers.get(to.ID)
	if p == nil || p.lastOK == 0 || p.recentlyFailed(now, n.cfg.UnreachableTTL) {
		reply(&Response{Code: CodeUnreachable}, nil)
		return
	}
	inner := *req
	inner.ForwardTo = nil
	n.forwards++
	n.stats.forwarded++
	n.call(p.info, nil, &inner, n.rto(to.ID), func(resp *Response, err error) {
		n.forwards--
		if err != nil {
			reply(&Response{Code: CodeUnreachable}, nil)
			return
		}
		reply(resp, nil)
	})
}
