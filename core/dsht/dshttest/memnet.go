// Package dshttest joins real DSHT nodes inside one process, for the tests
// of dsht and of the packages built on it (as net/http/httptest does for
// HTTP). Every request and response is CBOR-encoded and decoded on the way,
// as package p2p does over libp2p, and each call runs in the caller's
// goroutine, so a test sees what the real transport would deliver.
package dshttest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/wire"
	"github.com/fxamacker/cbor/v2"
)

// MemNet is an in-process network of DSHT nodes, addressed by NodeInfo.Addr.
// Its zero value is ready to use.
type MemNet struct {
	mu        sync.Mutex
	nodes     map[string]*dsht.Node
	down      map[string]bool // unreachable, both ways
	failStore map[string]bool // STORE requests fail; probes still answer
	hold      map[string]*storeHold
	calls     atomic.Int64
}

// storeHold keeps STORE requests to one address waiting.
type storeHold struct {
	held    chan struct{} // one signal per held request
	release chan struct{} // closed: they go on
}

// HoldStores makes STORE requests to addr wait until release is called;
// held receives a signal for each request that waits. A test sees what a
// caller does while a store is in flight to a slow node.
func (m *MemNet) HoldStores(addr string) (held <-chan struct{}, release func()) {
	h := &storeHold{held: make(chan struct{}, 64), release: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hold == nil {
		m.hold = map[string]*storeHold{}
	}
	m.hold[addr] = h
	var once sync.Once
	return h.held, func() { once.Do(func() { close(h.release) }) }
}

// Endpoint returns the Network through which the node self reaches others.
func (m *MemNet) Endpoint(self dsht.NodeInfo) dsht.Network {
	return &endpoint{net: m, self: self}
}

// Add makes n reachable at addr.
func (m *MemNet) Add(addr string, n *dsht.Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.nodes == nil {
		m.nodes = map[string]*dsht.Node{}
	}
	m.nodes[addr] = n
}

// SetDown makes addr unreachable (or reachable again), as a crash or a cut
// link would: calls to and from it fail.
func (m *MemNet) SetDown(addr string, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down == nil {
		m.down = map[string]bool{}
	}
	m.down[addr] = down
}

// FailStores makes STORE requests to addr fail while other requests work:
// a node whose storage refuses.
func (m *MemNet) FailStores(addr string, fail bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failStore == nil {
		m.failStore = map[string]bool{}
	}
	m.failStore[addr] = fail
}

// Calls returns how many RPCs were attempted.
func (m *MemNet) Calls() int64 { return m.calls.Load() }

type endpoint struct {
	net  *MemNet
	self dsht.NodeInfo
}

var _ dsht.Network = (*endpoint)(nil)

func (e *endpoint) Call(ctx context.Context, to dsht.NodeInfo, req *dsht.Request) (*dsht.Response, error) {
	m := e.net
	m.calls.Add(1)
	m.mu.Lock()
	n := m.nodes[to.Addr]
	down := m.down[to.Addr] || m.down[e.self.Addr] || req.Op == dsht.OpStore && m.failStore[to.Addr]
	hold := m.hold[to.Addr]
	m.mu.Unlock()
	if n == nil || down {
		return nil, fmt.Errorf("memnet: %s unreachable", to.Addr)
	}
	if hold != nil && req.Op == dsht.OpStore {
		select {
		case hold.held <- struct{}{}:
		default:
		}
		select {
		case <-hold.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var in dsht.Request
	if err := roundTrip(req, &in); err != nil {
		return nil, err
	}
	resp, err := n.HandleRPC(ctx, e.self, &in)
	if err != nil {
		return nil, err
	}
	var out dsht.Response
	if err := roundTrip(resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func roundTrip(v, into any) error {
	b, err := cbor.Marshal(v)
	if err != nil {
		return fmt.Errorf("memnet: encode: %w", err)
	}
	if err := wire.Unmarshal(b, into); err != nil {
		return fmt.Errorf("memnet: decode: %w", err)
	}
	return nil
}
