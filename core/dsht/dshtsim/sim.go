// Package dshtsim runs many dsht nodes in one process on a simulated network
// in virtual time: a discrete-event loop on one goroutine delivers every RPC
// after its link's latency, drops messages for loss, crashed nodes and
// non-transitive pairs, and fires the nodes' timers. Nothing sleeps, so a
// thousand nodes settle in seconds, and the same seed gives the same run.
//
// It is a test helper: package dsht's tests and the test/sim command use it.
package dshtsim

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/coralcdn/coral/core/dsht"
)

// Topology plants latency clusters: regions inside continents. Region r of
// Regions lies in continent r*Continents/Regions; node i in region i%Regions.
type Topology struct {
	Regions, Continents int
	// RTTs within a region, between regions of one continent, across.
	IntraRegion, IntraContinent, InterContinent time.Duration
	// Jitter scales each link's RTT by a fixed factor in [1-Jitter, 1+Jitter].
	Jitter float64
}

// DefaultTopology is the example: 5 regions (5 ms inside), grouped
// into 2 continents (40 ms between neighbouring regions), 150 ms across.
func DefaultTopology() Topology {
	return Topology{Regions: 5, Continents: 2, IntraRegion: 5 * time.Millisecond,
		IntraContinent: 40 * time.Millisecond, InterContinent: 150 * time.Millisecond, Jitter: 0.2}
}

// Options configures a simulation.
type Options struct {
	Seed     uint64
	Nodes    int
	Topology Topology
	// Loss drops each message (request or reply) with this probability.
	Loss float64
	// NonTransitive is the fraction of node pairs that cannot talk directly
	// (each can still reach everyone else).
	NonTransitive float64
	// Configure adjusts each node's configuration (optional).
	Configure func(i int, c *dsht.Config)
	// Trace sees every request sent, delivered or not (optional).
	Trace func(from, to int, req *dsht.Request)
}

// Sim is the simulated network and its nodes.
type Sim struct {
	opts  Options
	epoch time.Time
	now   int64 // virtual ns since epoch
	q     eventQueue
	seq   uint64
	rng   *rand.Rand
	nodes []*simNode

	// Messages sent and dropped (loss, crash, blocked pair).
	Messages, Dropped uint64
	// RequestsByOp counts requests sent, by operation (index: dsht.Op).
	RequestsByOp [8]uint64
}

type simNode struct {
	requests  uint64 // requests addressed to it, delivered or not
	info      dsht.NodeInfo
	node      *dsht.Node
	crashed   bool
	region    int
	continent int
}

type event struct {
	at  int64
	seq uint64
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// New builds the nodes (not yet bootstrapped).
func New(opts Options) (*Sim, error) {
	if opts.Nodes < 1 {
		return nil, errors.New("dshtsim: need at least one node")
	}
	t := opts.Topology
	if t.Regions < 1 {
		t = DefaultTopology()
		opts.Topology = t
	}
	if t.Continents < 1 || t.Continents > t.Regions {
		return nil, fmt.Errorf("dshtsim: %d continents for %d regions", t.Continents, t.Regions)
	}
	s := &Sim{
		opts:  opts,
		epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		rng:   rand.New(rand.NewPCG(opts.Seed, 0x5eed)),
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i := range opts.Nodes {
		var seed [16]byte
		binary.BigEndian.PutUint64(seed[:], opts.Seed)
		binary.BigEndian.PutUint64(seed[8:], uint64(i))
		info := dsht.NodeInfo{ID: dsht.NodeID(seed[:]), Addr: strconv.Itoa(i)}
		region := i % t.Regions
		sn := &simNode{info: info, region: region, continent: region * t.Continents / t.Regions}
		cfg := dsht.DefaultConfig(info)
		cfg.Clock = s.Now
		cfg.AfterFunc = s.afterFunc(i)
		cfg.Rand = rand.NewPCG(opts.Seed^0x9e3779b97f4a7c15, uint64(i))
		cfg.Logger = quiet
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		n, err := dsht.New(cfg, &endpoint{s: s, from: i})
		if err != nil {
			return nil, fmt.Errorf("dshtsim: node %d: %w", i, err)
		}
		sn.node = n
		s.nodes = append(s.nodes, sn)
	}
	return s, nil
}

// Now is the virtual clock.
func (s *Sim) Now() time.Time { return s.epoch.Add(time.Duration(s.now)) }

// Elapsed is the virtual time since the start.
func (s *Sim) Elapsed() time.Duration { return time.Duration(s.now) }

// Len is the number of nodes.
func (s *Sim) Len() int { return len(s.nodes) }

// Node returns node i.
func (s *Sim) Node(i int) *dsht.Node { return s.nodes[i].node }

// Info returns node i's identity.
func (s *Sim) Info(i int) dsht.NodeInfo { return s.nodes[i].info }

// Region and Continent return node i's planted clusters.
func (s *Sim) Region(i int) int    { return s.nodes[i].region }
func (s *Sim) Continent(i int) int { return s.nodes[i].continent }

// Rand is the simulation's random source, for workloads (deterministic).
func (s *Sim) Rand() *rand.Rand { return s.rng }

// Requests counts the requests sent to node i, delivered or not.
func (s *Sim) Requests(i int) uint64 { return s.nodes[i].requests }

// Crash stops node i for good: it sends, receives and times out nothing.
func (s *Sim) Crash(i int) { s.nodes[i].crashed = true }

// Crashed reports whether node i is down.
func (s *Sim) Crashed(i int) bool { return s.nodes[i].crashed }

// Live returns the nodes that are up.
func (s *Sim) Live() []int {
	var out []int
	for i, n := range s.nodes {
		if !n.crashed {
			out = append(out, i)
		}
	}
	return out
}

func mix(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// pairHash is a fixed pseudo-random value in [0,1) for an unordered pair.
func (s *Sim) pairHash(i, j int, salt uint64) float64 {
	if i > j {
		i, j = j, i
	}
	h := mix(s.opts.Seed ^ mix(uint64(i)<<32|uint64(j)) ^ salt)
	return float64(h>>11) / (1 << 53)
}

// Blocked reports whether i and j cannot talk directly.
func (s *Sim) Blocked(i, j int) bool {
	return i != j && s.opts.NonTransitive > 0 && s.pairHash(i, j, 0xb10c) < s.opts.NonTransitive
}

// RTT is the round-trip time of the link between i and j.
func (s *Sim) RTT(i, j int) time.Duration {
	t := s.opts.Topology
	a, b := s.nodes[i], s.nodes[j]
	var base time.Duration
	switch {
	case a.region == b.region:
		base = t.IntraRegion
	case a.continent == b.continent:
		base = t.IntraContinent
	default:
		base = t.InterContinent
	}
	f := 1 + t.Jitter*(2*s.pairHash(i, j, 0x717e)-1)
	return time.Duration(float64(base) * f)
}

func (s *Sim) schedule(d time.Duration, fn func()) *event {
	s.seq++
	e := &event{at: s.now + int64(d), seq: s.seq, fn: fn}
	heap.Push(&s.q, e)
	return e
}

// afterFunc gives node i timers in virtual time; a crashed node's timers
// never fire.
func (s *Sim) afterFunc(i int) func(time.Duration, func()) func() bool {
	return func(d time.Duration, f func()) func() bool {
		stopped, fired := false, false
		s.schedule(d, func() {
			if stopped || s.nodes[i].crashed {
				return
			}
			fired = true
			f()
		})
		return func() bool {
			was := !stopped && !fired
			stopped = true
			return was
		}
	}
}

// Step runs the next event; false when none is left.
func (s *Sim) Step() bool {
	if len(s.q) == 0 {
		return false
	}
	e := heap.Pop(&s.q).(*event)
	s.now = e.at
	e.fn()
	return true
}

// RunFor runs events for d of virtual time.
func (s *Sim) RunFor(d time.Duration) {
	end := s.now + int64(d)
	for len(s.q) > 0 && s.q[0].at <= end {
		s.Step()
	}
	s.now = max(s.now, end)
}

// RunUntil runs events until cond holds or limit of virtual time passes;
// it reports whether cond held.
func (s *Sim) RunUntil(cond func() bool, limit time.Duration) bool {
	end := s.now + int64(limit)
	for !cond() {
		if len(s.q) == 0 || s.q[0].at > end {
			return cond()
		}
		s.Step()
	}
	return true
}

// endpoint is node from's view of the network.
type endpoint struct {
	s    *Sim
	from int
}

var _ dsht.AsyncNetwork = (*endpoint)(nil)

// Call is not supported: the simulator has no goroutines to block.
func (e *endpoint) Call(context.Context, dsht.NodeInfo, *dsht.Request) (*dsht.Response, error) {
	return nil, errors.New("dshtsim: blocking Call is not supported; nodes use CallAsync")
}

func (e *endpoint) CallAsync(to dsht.NodeInfo, req *dsht.Request, done func(*dsht.Response, error)) {
	s := e.s
	s.Messages++
	s.RequestsByOp[req.Op%8]++
	j, err := strconv.Atoi(to.Addr)
	if err != nil || j < 0 || j >= len(s.nodes) || s.nodes[j].info.ID != to.ID {
		s.Dropped++
		return
	}
	s.nodes[j].requests++
	if s.opts.Trace != nil {
		s.opts.Trace(e.from, j, req)
	}
	if s.drop(e.from, j) {
		s.Dropped++
		return
	}
	from := e.from
	fromInfo := s.nodes[from].info
	s.schedule(s.RTT(from, j)/2, func() {
		if s.nodes[j].crashed {
			s.Dropped++
			return
		}
		s.nodes[j].node.HandleRPCAsync(fromInfo, req, func(resp *dsht.Response, err error) {
			s.Messages++
			if s.drop(j, from) {
				s.Dropped++
				return
			}
			s.schedule(s.RTT(j, from)/2, func() {
				if s.nodes[from].crashed {
					return
				}
				done(resp, err)
			})
		})
	})
}

// drop decides a message's fate when sent.
func (s *Sim) drop(from, to int) bool {
	if s.nodes[from].crashed || s.nodes[to].crashed || s.Blocked(from, to) {
		return true
	}
	return s.opts.Loss > 0 && s.rng.Float64() < s.opts.Loss
}

// KeyID makes a deterministic key for workload item i.
func KeyID(seed uint64, i int) dsht.ID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	return sha256.Sum256(append([]byte("key"), b[:]...))
}
