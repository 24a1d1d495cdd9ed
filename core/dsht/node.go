package dsht

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// AsyncNetwork is an optional extension of Network for transports that
// deliver replies as events instead of blocking a goroutine, such as the
// simulator, which runs thousands of nodes on one goroutine in virtual time.
// CallAsync must not call done before it returns, and may never call it when
// the message is lost (the node's own timeout covers that).
type AsyncNetwork interface {
	Network
	CallAsync(to NodeInfo, req *Request, done func(*Response, error))
}

// Errors a caller can test for.
var (
	ErrClosed      = errors.New("dsht: node closed")
	ErrNoStore     = errors.New("dsht: no other node answered; the value is stored nowhere others look")
	ErrTimeout     = errors.New("dsht: rpc timed out")
	ErrBadLevels   = errors.New("dsht: bad level range")
	ErrNoBootstrap = errors.New("dsht: no bootstrap node answered")
)

// Value is one value found under a key.
type Value struct {
	Data    []byte
	Expires time.Time
	Level   int // the level whose cluster held it
}

// Option adjusts one get, put or put+get.
type Option func(*opOptions)

type opOptions struct {
	start, stop int // levels, start >= stop
	trace       *Trace
}

// Levels limits an operation to levels start down to stop (start >= stop),
// e.g. Levels(2, 2) searches only the node's level-2 cluster. The default is
// every level, most local first.
func Levels(start, stop int) Option {
	return func(o *opOptions) { o.start, o.stop = start, stop }
}

// WithTrace records how the operation went, level by level.
func WithTrace(t *Trace) Option { return func(o *opOptions) { o.trace = t } }

// Trace describes one operation, for the simulator and for debugging.
type Trace struct {
	Levels  []LevelTrace
	RPCs    int
	Elapsed time.Duration
}

// LevelTrace is one level of an operation.
type LevelTrace struct {
	Level int
	// Hops is the lookup depth of the node that answered: the node holding
	// the values found, the node a put stored at, or the closest node reached.
	Hops      int
	RPCs      int
	Elapsed   time.Duration
	Found     bool // values found (get, put+get)
	Stored    bool // value stored (put)
	Contacted []ID // nodes queried, directly or through a relay
}

// Node is one member of the hierarchical sloppy hash table. All of its state
// is guarded by mu; every entry point (RPC, timer, reply, API call) runs
// under it, so the algorithms below are written as plain event handlers.
type Node struct {
	cfg     Config
	net     Network
	async   AsyncNetwork
	log     *slog.Logger
	self    NodeInfo
	selfKad kadID

	ctx    context.Context
	cancel context.CancelFunc

	mu         sync.Mutex
	deferred   []func()
	closed     bool
	rng        *rand.Rand
	levels     []*level
	peers      *peerCache
	store      *storage
	stats      counters
	forwards   int
	timers     [numTicks]func() bool
	maintain   bool
	clusterSeq uint64

	// all RTT samples, for timeouts to nodes never measured
	global         rttEstimator
	gmax           time.Duration
	gmaxAt         int64
	claims         []ClusterInfo // see clusterClaims
	clusterBackoff int           // multiplier of ClusterInterval
}

type level struct {
	threshold time.Duration
	cluster   ID // zero at level 0
	changes   int
	table     *table
	size      int64 // cached estimate, see clusterSize
	sizeAt    int64
	sampling  bool
	// sampleBudget bounds the clusters sampled per tick.
	sampleBudget int
	sampled      int // clusters sampled, ever
}

type counters struct {
	sent, received, timeouts, failures, relayed, forwarded, bad uint64
	sentOp, recvOp                                              [6]uint64
}

// New creates a node. It does nothing on the network until Bootstrap.
func New(cfg Config, net Network) (*Node, error) {
	if net == nil {
		return nil, errors.New("dsht: new node: nil network")
	}
	cfg.Levels = slices.Clone(cfg.Levels)
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dsht: new node: config: %w", err)
	}
	n := &Node{
		cfg:     cfg,
		net:     net,
		log:     cfg.Logger.With("component", "dsht"),
		self:    cfg.Self,
		selfKad: kadOf(cfg.Self.ID),
		rng:     rand.New(cfg.Rand),
		peers:   newPeerCache(len(cfg.Levels), cfg.PeerCacheSize),
		store: newStorage(len(cfg.Levels), cfg.FullValues, cfg.LoadedRate, cfg.LoadWindow,
			cfg.MaxValuesPerKey, cfg.MaxStoredValues, cfg.MaxValuesPerSender),
	}
	n.async, _ = net.(AsyncNetwork)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for l, thr := range cfg.Levels {
		lv := &level{threshold: thr, table: newTable(cfg.Self.ID, cfg.K)}
		if l > 0 {
			lv.cluster = n.newClusterID()
		}
		n.levels = append(n.levels, lv)
	}
	return n, nil
}

// Self returns this node's identity.
func (n *Node) Self() NodeInfo { return n.self }

// locked runs f under the node's lock, then the callbacks f deferred to
// outside code (which may call back into the node).
func (n *Node) locked(f func()) {
	n.mu.Lock()
	f()
	d := n.deferred
	n.deferred = nil
	n.mu.Unlock()
	for _, g := range d {
		g()
	}
}

// later queues g to run once the lock is released.
func (n *Node) later(g func()) { n.deferred = append(n.deferred, g) }

// after arms a timer whose callback runs under the lock.
func (n *Node) after(d time.Duration, f func()) func() bool {
	return n.cfg.AfterFunc(d, func() { n.locked(f) })
}

func (n *Node) now() int64 { return n.cfg.Clock().UnixNano() }

// newClusterID names a cluster this node founds: the founding time (unix
// nanoseconds, big-endian) followed by a hash, so that ordering IDs orders
// clusters by age: members move to the older of two acceptable clusters, so
// a newcomer never pulls an established cluster apart.
func (n *Node) newClusterID() ID {
	n.clusterSeq++
	now := n.cfg.Clock().UnixNano()
	var b [48]byte
	copy(b[:], n.self.ID[:])
	binary.BigEndian.PutUint64(b[32:], n.clusterSeq)
	binary.BigEndian.PutUint64(b[40:], uint64(now))
	h := sha256.Sum256(b[:])
	var id ID
	binary.BigEndian.PutUint64(id[:8], uint64(now))
	copy(id[8:], h[:24])
	return id
}

func (n *Node) numLevels() int { return len(n.levels) }

// Close stops the node's timers; operations in flight end with ErrClosed or
// their own timeouts.
func (n *Node) Close() error {
	n.locked(func() {
		if n.closed {
			return
		}
		n.closed = true
		for _, stop := range n.timers {
			if stop != nil {
				stop()
			}
		}
		n.cancel()
	})
	return nil
}

func (n *Node) options(opts []Option) (opOptions, error) {
	o := opOptions{start: n.numLevels() - 1, stop: 0}
	for _, f := range opts {
		f(&o)
	}
	if o.stop < 0 || o.start >= n.numLevels() || o.start < o.stop {
		return o, fmt.Errorf("%w: %d..%d of %d levels", ErrBadLevels, o.start, o.stop, n.numLevels())
	}
	return o, nil
}

// ---- blocking API ----

// wait runs start under the lock and waits for its completion or ctx.
func wait[T any](n *Node, ctx context.Context, what string, start func(done func(T, error)) (cancel func())) (T, error) {
	type result struct {
		v   T
		err error
	}
	var zero T
	if err := ctx.Err(); err != nil {
		// Not started at all: over a fast network the operation could
		// otherwise finish inside start and race the cancellation.
		return zero, fmt.Errorf("dsht: %s: %w", what, err)
	}
	ch := make(chan result, 1)
	var cancel func()
	n.locked(func() {
		cancel = start(func(v T, err error) {
			select {
			case ch <- result{v, err}:
			default: // completed twice: keep the first
			}
		})
	})
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		if cancel != nil {
			n.locked(cancel)
		}
		return zero, fmt.Errorf("dsht: %s: %w", what, ctx.Err())
	}
}

// Get returns the first values found for key, searching the most local
// cluster first and continuing outward from the closest node reached. No
// values is not an error.
func (n *Node) Get(ctx context.Context, key ID, opts ...Option) ([]Value, error) {
	o, err := n.options(opts)
	if err != nil {
		return nil, err
	}
	return wait(n, ctx, "get", func(done func([]Value, error)) func() {
		return n.startGet(key, o, done)
	})
}

// Put stores value under key at every level (sloppily: at the closest node
// that is not both full and loaded). It fails with ErrNoStore only if no
// level stored it where other nodes can find it.
func (n *Node) Put(ctx context.Context, key ID, value []byte, ttl time.Duration, opts ...Option) error {
	o, err := n.options(opts)
	if err != nil {
		return err
	}
	_, err = wait(n, ctx, "put", func(done func([]Value, error)) func() {
		return n.startPut(key, value, ttl, false, o, done)
	})
	return err
}

// PutGet is put and get as one operation (test-and-set): it stores value
// like Put and returns the first other values met in either phase at the
// operation's start level (the most local by default), so of several nodes
// of a cluster racing for a new key exactly one meets nothing.
func (n *Node) PutGet(ctx context.Context, key ID, value []byte, ttl time.Duration, opts ...Option) ([]Value, error) {
	o, err := n.options(opts)
	if err != nil {
		return nil, err
	}
	return wait(n, ctx, "put+get", func(done func([]Value, error)) func() {
		return n.startPut(key, value, ttl, true, o, done)
	})
}

// Bootstrap joins the network through seeds: it pings them, looks itself up
// to fill its routing table, and starts maintenance (cluster membership,
// refresh). With no seeds the node starts alone and waits to be contacted.
func (n *Node) Bootstrap(ctx context.Context, seeds []NodeInfo) error {
	_, err := wait(n, ctx, "bootstrap", func(done func(struct{}, error)) func() {
		n.startBootstrap(seeds, func(err error) { done(struct{}{}, err) })
		return nil
	})
	return err
}

// HandleRPC serves one inbound request from a directly connected peer (the
// transport vouches for from). A malformed request gets an error.
func (n *Node) HandleRPC(ctx context.Context, from NodeInfo, req *Request) (*Response, error) {
	return wait(n, ctx, "handle rpc", func(done func(*Response, error)) func() {
		n.handle(from, req, done)
		return nil
	})
}

// ---- event-driven API (the simulator) ----
// The callbacks run after the node's lock is released and may call the node.

// GetAsync is Get without blocking.
func (n *Node) GetAsync(key ID, done func([]Value, error), opts ...Option) {
	o, err := n.options(opts)
	n.locked(func() {
		if err != nil {
			n.later(func() { done(nil, err) })
			return
		}
		n.startGet(key, o, func(v []Value, err error) { n.later(func() { done(v, err) }) })
	})
}

// PutAsync is Put without blocking.
func (n *Node) PutAsync(key ID, value []byte, ttl time.Duration, done func(error), opts ...Option) {
	o, err := n.options(opts)
	n.locked(func() {
		if err != nil {
			n.later(func() { done(err) })
			return
		}
		n.startPut(key, value, ttl, false, o, func(_ []Value, err error) { n.later(func() { done(err) }) })
	})
}

// PutGetAsync is PutGet without blocking.
func (n *Node) PutGetAsync(key ID, value []byte, ttl time.Duration, done func([]Value, error), opts ...Option) {
	o, err := n.options(opts)
	n.locked(func() {
		if err != nil {
			n.later(func() { done(nil, err) })
			return
		}
		n.startPut(key, value, ttl, true, o, func(v []Value, err error) { n.later(func() { done(v, err) }) })
	})
}

// BootstrapAsync is Bootstrap without blocking.
func (n *Node) BootstrapAsync(seeds []NodeInfo, done func(error)) {
	n.locked(func() {
		n.startBootstrap(seeds, func(err error) { n.later(func() { done(err) }) })
	})
}

// HandleRPCAsync is HandleRPC without blocking; reply may run later (a
// relayed request waits for the far node).
func (n *Node) HandleRPCAsync(from NodeInfo, req *Request, reply func(*Response, error)) {
	n.locked(func() {
		n.handle(from, req, func(r *Response, err error) { n.later(func() { reply(r, err) }) })
	})
}

// ---- hints from the transport ----

// Observe tells the node that peer is reachable with the given RTT (a new
// connection, or a measurement the transport made).
func (n *Node) Observe(peer NodeInfo, rtt time.Duration) {
	if peer.ID == n.self.ID || validNodeInfo(peer) != nil {
		return
	}
	n.locked(func() {
		now := n.now()
		p := n.peers.ensure(peer, true)
		if rtt > 0 {
			p.observeRTT(rtt, now)
		}
		p.lastOK = now
		p.fails = 0
		n.updateTables(p, now)
	})
}

// NodeFailed tells the node the transport could not reach peer.
func (n *Node) NodeFailed(peer NodeInfo) {
	n.locked(func() {
		if p := n.peers.get(peer.ID); p != nil {
			n.markFailed(p, n.now())
		}
	})
}

// ---- status ----

// Status is a snapshot for the status page.
type Status struct {
	Self   NodeInfo
	Levels []LevelStatus
	Peers  PeerStats
	RPC    RPCStats
}

// LevelStatus describes one level: the cluster this node is in, its routing
// table and what it stores there.
type LevelStatus struct {
	Level          int
	Threshold      time.Duration // 0 at the global level
	Cluster        ID            // zero at the global level
	ClusterSize    int64         // this node's estimate
	ClusterChanges int
	Table          []TableEntry
	StoredKeys     int
	StoredValues   int
}

// TableEntry is one routing-table member.
type TableEntry struct {
	Node   NodeInfo
	RTT    time.Duration // 0 when not measured
	Bucket int           // common prefix length with this node
}

// PeerStats counts the peer cache.
type PeerStats struct {
	Known       int // nodes remembered
	Live        int // heard from directly within the unreachable TTL
	Unreachable int // recently failed
	Indirect    int // recently failed but with a relay on record
}

// RPCStats counts RPCs since start.
type RPCStats struct {
	Sent, Received, Timeouts, Failures uint64
	Relayed                            uint64 // sent through a relay
	Forwarded                          uint64 // relayed for others
	BadRequests                        uint64
	SentByOp, ReceivedByOp             map[string]uint64
}

// Status returns a snapshot of the node's state.
func (n *Node) Status() Status {
	var st Status
	n.locked(func() {
		now := n.now()
		st.Self = n.self
		for l, lv := range n.levels {
			ls := LevelStatus{Level: l, Threshold: lv.threshold, Cluster: lv.cluster,
				ClusterSize: n.clusterSize(l), ClusterChanges: lv.changes}
			for _, id := range lv.table.list() {
				te := TableEntry{Node: NodeInfo{ID: id}}
				if p := n.peers.get(id); p != nil {
					te.Node = p.info
					te.RTT = p.srtt
					te.Bucket = cpl(n.selfKad, p.kad)
				}
				ls.Table = append(ls.Table, te)
			}
			slices.SortFunc(ls.Table, func(a, b TableEntry) int {
				if a.Bucket != b.Bucket {
					return a.Bucket - b.Bucket
				}
				return compareID(a.Node.ID, b.Node.ID)
			})
			ls.StoredKeys, ls.StoredValues = n.store.counts(l, now)
			st.Levels = append(st.Levels, ls)
		}
		for _, p := range n.peers.m {
			st.Peers.Known++
			switch {
			case p.recentlyFailed(now, n.cfg.UnreachableTTL):
				st.Peers.Unreachable++
				if len(p.vias) > 0 {
					st.Peers.Indirect++
				}
			case p.lastOK > 0 && now-p.lastOK < int64(n.cfg.UnreachableTTL):
				st.Peers.Live++
			}
		}
		c := n.stats
		st.RPC = RPCStats{Sent: c.sent, Received: c.received, Timeouts: c.timeouts, Failures: c.failures,
			Relayed: c.relayed, Forwarded: c.forwarded, BadRequests: c.bad,
			SentByOp: map[string]uint64{}, ReceivedByOp: map[string]uint64{}}
		for op := OpPing; op <= OpStore; op++ {
			st.RPC.SentByOp[op.String()] = c.sentOp[op]
			st.RPC.ReceivedByOp[op.String()] = c.recvOp[op]
		}
	})
	return st
}

// Stores returns how many stores this node accepted for key at level (the
// simulator uses it to measure a hot key's load).
func (n *Node) Stores(key ID, level int) uint64 {
	var s uint64
	n.locked(func() {
		if level >= 0 && level < n.numLevels() {
			s = n.store.stores(level, kadOf(key))
		}
	})
	return s
}

// NumLevels is the number of levels, global included.
func (n *Node) NumLevels() int { return len(n.levels) }

// Cluster returns the node's cluster ID at level (zero at level 0).
func (n *Node) Cluster(level int) ID {
	var id ID
	n.locked(func() {
		if level >= 0 && level < n.numLevels() {
			id = n.levels[level].cluster
		}
	})
	return id
}
