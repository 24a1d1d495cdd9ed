package p2p

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-yamux/v5"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Dead links. A path between two homes can stop carrying packets without
// either end hearing a reset (a router reboots, a NAT forgets the mapping, a
// firewall starts dropping). TCP and yamux then keep the connection for tens
// of seconds while every stream opened on it stalls, and because a live
// connection exists nobody dials the relay route that would work.
//
// The link watch pings direct connections on the connection itself (a
// yamux ping frame, answered by the peer's muxer: no stream), unless the peer
// delivered bytes on it since the last time it was due: every
// LinkCheckInterval the connections to the peers whose liveness this node
// vouches for — the proxies its DNS answers hand out (WatchLinks) — and
// every linkIdleEvery intervals the others (relays holding a reservation
// for it too: a relay serves dozens, and each pinging it every interval
// made it the busiest node of an idle network) (an idle node with 96 peers pinged 48 times a second, most
// of its CPU, for peers nobody asked about; issue 17). Every 20 s keeps an
// idle peer heard from well within the directory's 60 s liveness window
// (core/dnsserver LiveWindow) and within yamux's 30 s keepalive, which
// would otherwise ping on its own timer, one wakeup per connection. A peer that comes
// in through a relay while a direct connection to it is open gets that
// connection pinged at once: it went round because the direct path did
// not work for it. The watch closes a connection whose ping gets no echo
// within LinkPingTimeout (linkIdlePatience times that for an idle link's
// ping: a peer whose CPU is busy for a few seconds keeps its connections,
// whose closing and re-dialling cost a crowd of peers far more) —
// unless the peer's streams delivered bytes meanwhile, which means the link
// is busy, not dead (a ping queued behind a large transfer on a slow uplink).
// A request that waits on a connection for longer than linkSuspectAfter
// has that connection pinged at once instead of at the next tick, so a
// fetch started right after the cut learns of it within about
// linkSuspectAfter+LinkPingTimeout and retries over a fresh route.
//
// Relayed connections are not pinged: they ride on the connection to the
// relay, which is. A peer whose direct path was closed is dialled directly
// again every linkHealEvery intervals (for up to linkHealFor) while it is
// reached through a relay, so a path that comes back is used again.
const (
	defaultLinkCheckInterval = 2 * time.Second
	defaultLinkPingTimeout   = 2 * time.Second
	linkSuspectAfter         = 750 * time.Millisecond
	linkHealEvery            = 10 // intervals between direct dials to a cut peer
	linkIdleEvery            = 10 // intervals between pings of a connection nobody watches
	linkIdlePatience         = 5  // LinkPingTimeouts an idle connection's ping may take
	linkHealFor              = time.Hour
)

// linkWatch probes connections and closes the ones that stopped carrying
// packets.
type linkWatch struct {
	h       *Host
	recv    *recvClock
	every   time.Duration
	timeout time.Duration

	mu       sync.Mutex
	probing  map[network.Conn]time.Duration // probes under way, by their timeout
	cut      map[peer.ID]time.Time          // peers whose direct path was closed as dead, and when
	watched  map[peer.ID]time.Time          // peers pinged every interval, until when (WatchLinks)
	detoured map[peer.ID]time.Time          // peers reached through a relay whose direct path was tried, and when (detour.go)
	rtts     map[peer.ID]time.Duration      // round trip of each connected peer's last answered ping (Host.Latency)

	closed atomic.Int64 // dead connections closed since start
}

func newLinkWatch(h *Host, every, timeout time.Duration) *linkWatch {
	return &linkWatch{
		h: h, recv: &recvClock{last: map[peer.ID]*atomic.Int64{}, tally: newStreamCounts()},
		every: every, timeout: timeout,
		probing: map[network.Conn]time.Duration{}, cut: map[peer.ID]time.Time{},
		watched: map[peer.ID]time.Time{}, detoured: map[peer.ID]time.Time{},
		rtts: map[peer.ID]time.Duration{},
	}
}

// run probes every direct connection each interval, and tries the direct
// path of cut peers again every linkHealEvery intervals, until the host
// stops. Ticks fall on wall-clock multiples of the interval, the same
// instants on every node (clocks agree to milliseconds), so the pings an
// idle node gets from its peers arrive together with its own pongs: a
// wakeup per tick rather than one per peer (issue 17).
func (w *linkWatch) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := time.Now().Truncate(w.every).Add(w.every)
		t.Reset(time.Until(next))
		select {
		case <-w.h.ctx.Done():
			return
		case <-t.C:
		}
		tick := int(next.UnixNano() / int64(w.every))
		w.probeAll(tick)
		if tick%linkHealEvery == 0 {
			w.healAll()
			w.closeAllDetours()
			w.dropExpiredWatches()
			w.forgetDetours(time.Now())
			w.forgetRTTs()
		}
	}
}

// healAll dials peers whose direct path was cut directly again: a path
// that came back should carry their traffic, not a volunteer's relay
// (libp2p's hole punching only tries when a relayed connection opens).
// Peers reached directly meanwhile, and cuts older than linkHealFor, are
// forgotten.
func (w *linkWatch) healAll() {
	w.mu.Lock()
	var try []peer.ID
	for p, at := range w.cut {
		switch {
		case w.directConns(p) > 0: // the peer dialled us
			w.h.log.Info("direct link is back", "peer", p)
			delete(w.cut, p)
		case time.Since(at) > linkHealFor:
			delete(w.cut, p)
		case hasConn(w.h.host.Network().Connectedness(p)):
			try = append(try, p) // still talking, through a relay
		}
	}
	w.mu.Unlock()
	for _, p := range try {
		go w.heal(p)
	}
}

func (w *linkWatch) heal(p peer.ID) {
	ctx, cancel := context.WithTimeout(w.h.ctx, directDialTimeout)
	defer cancel()
	err := w.h.host.Connect(network.WithForceDirectDial(ctx, "link heal"), peer.AddrInfo{ID: p})
	if err != nil || w.directConns(p) == 0 {
		return
	}
	w.h.log.Info("direct link is back", "peer", p)
	w.mu.Lock()
	delete(w.cut, p)
	w.mu.Unlock()
}

func (w *linkWatch) directConns(p peer.ID) int {
	n := 0
	for _, c := range w.h.host.Network().ConnsToPeer(p) {
		if !relayedConn(c) && !c.IsClosed() {
			n++
		}
	}
	return n
}

// probeAll probes the connections due at this tick, all at once: yamux
// pings open no stream, so no stream limit asks for them to be spread,
// and pings sent together come back together — one wakeup of an idle
// process instead of one per ping, which on a small machine costs more
// than the ping (issue 17). A watched peer's connections are due every
// tick, the others' every linkIdleEvery ticks, each in its own slot so a
// tick pings a fifth of them.
func (w *linkWatch) probeAll(tick int) {
	now := time.Now()
	type probe struct {
		c       network.Conn
		timeout time.Duration
	}
	var due []probe
	for _, c := range w.h.host.Network().Conns() {
		every, timeout := w.every, w.timeout
		if !w.isWatched(c.RemotePeer(), now) {
			if connSlot(c, linkIdleEvery) != tick%linkIdleEvery {
				continue
			}
			every, timeout = every*linkIdleEvery, timeout*linkIdlePatience
		}
		if !w.heardOn(c, now.Add(-every)) {
			due = append(due, probe{c, timeout})
		}
	}
	for _, p := range due {
		w.probe(p.c, p.timeout)
	}
}

// connSlot is c's tick slot among n: stable for the connection, spread
// over the connections. It hashes the peer's ID bytes (c.ID() formats
// base58 text on every call: a tenth of an idle node's CPU). The two ends
// of a link hash different IDs, so they are mostly due at different
// ticks, and the first one's ping spares the other's (heardOn).
func connSlot(c network.Conn, n int) int {
	h := fnv.New32a()
	_, _ = io.WriteString(h, string(c.RemotePeer()))
	return int(h.Sum32() % uint32(n))
}

// watch has p's connections pinged every interval until until.
func (w *linkWatch) watch(p peer.ID, until time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if until.After(w.watched[p]) {
		w.watched[p] = until
	}
}

// isWatched says whether p's connections are pinged every interval: it
// was handed out lately.
func (w *linkWatch) isWatched(p peer.ID, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	until, ok := w.watched[p]
	return ok && now.Before(until)
}

func (w *linkWatch) dropExpiredWatches() {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, until := range w.watched {
		if !now.Before(until) {
			delete(w.watched, p)
		}
	}
}

// relayedIn is told of every new connection. A relayed one to a peer
// with direct connections open has those probed: a live direct path
// would have carried it. A relayed one to a peer without has the direct
// path tried (detour.go).
func (w *linkWatch) relayedIn(c network.Conn) {
	if !relayedConn(c) {
		return
	}
	direct := false
	for _, d := range w.h.host.Network().ConnsToPeer(c.RemotePeer()) {
		if !relayedConn(d) {
			w.probe(d, w.timeout)
			direct = true
		}
	}
	if !direct {
		w.takeDirect(c.RemotePeer())
	}
}

// heardOn reports whether c's peer delivered bytes since t over c, its
// only connection: the link carried packets since it was last due, so a
// ping would tell nothing new. Any frame counts (hearingMuxer): a pong, so
// an idle link is pinged every other time it is due, and the peer's own
// ping, so of an idle link's two ends mostly one pings; a pair that
// exchanges traffic not at all. A half-dead link (our packets lost) is
// the peer's to find: its pings to us go unanswered.
func (w *linkWatch) heardOn(c network.Conn, t time.Time) bool {
	p := c.RemotePeer()
	return w.recv.since(p, t) && len(w.h.host.Network().ConnsToPeer(p)) == 1
}

// suspect probes c now: a request on it is waiting longer than a live
// link would make it.
func (w *linkWatch) suspect(c network.Conn) {
	if c != nil {
		w.probe(c, w.timeout)
	}
}

// probe starts one ping on c that gives up after timeout, unless c is
// relayed, closed or already being probed with a timeout as short. (An
// idle link's unhurried probe does not hold back a suspect's quick one.)
func (w *linkWatch) probe(c network.Conn, timeout time.Duration) {
	if relayedConn(c) || c.IsClosed() || w.h.ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	if running, ok := w.probing[c]; ok && running <= timeout {
		w.mu.Unlock()
		return
	}
	w.probing[c] = timeout
	w.mu.Unlock()
	// Not in h.wg: suspect runs from request goroutines, possibly while
	// Close waits. The ping is bounded by the timeout and by h.ctx.
	go func() {
		defer func() {
			w.mu.Lock()
			if w.probing[c] == timeout {
				delete(w.probing, c)
			}
			w.mu.Unlock()
		}()
		w.check(c, timeout)
	}()
}

// check pings c once and closes it if the link looks dead.
func (w *linkWatch) check(c network.Conn, timeout time.Duration) {
	p := c.RemotePeer()
	start := time.Now()
	err := w.ping(c, timeout)
	if err == nil || c.IsClosed() || w.h.ctx.Err() != nil {
		return
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		// Refused or reset (a stream limit on either side): whatever
		// came back came over the link, so it is alive.
		w.h.log.Debug("link ping failed without a timeout", "peer", p, "err", err)
		return
	}
	// Bytes from p mean a busy link only if this is p's only path: bytes
	// over a relayed connection to p prove nothing about this one.
	if w.recv.since(p, start) && !w.hasRelayedConn(p) {
		w.h.log.Debug("link ping failed but the peer is sending: busy, not dead", "peer", p, "err", err)
		return
	}
	w.h.log.Info("link stopped carrying packets: closing the connection",
		"peer", p, "addr", c.RemoteMultiaddr(), "silent_for", time.Since(start).Round(time.Millisecond), "err", err)
	// The others on this path first: a request waiting on c fails when c
	// closes and is retried at once, and must not land on one of them.
	w.sharedFate(c)
	w.closed.Add(1)
	_ = c.Close()
	w.mu.Lock()
	w.cut[p] = time.Now()
	w.mu.Unlock()
}

// sharedFate closes the other direct connections to c's peer between the
// same two addresses (both ends dialling at once leaves two): they ride
// the same dead path, and a request retried on one would stall again.
// Connections over other addresses are probed instead.
func (w *linkWatch) sharedFate(dead network.Conn) {
	ip := func(c network.Conn) string {
		a, _ := manet.ToIP(c.RemoteMultiaddr())
		b, _ := manet.ToIP(c.LocalMultiaddr())
		return a.String() + "|" + b.String()
	}
	path := ip(dead)
	for _, c := range w.h.host.Network().ConnsToPeer(dead.RemotePeer()) {
		switch {
		case c == dead || c.IsClosed() || relayedConn(c):
		case ip(c) == path:
			w.h.log.Info("closing another connection over the same dead path", "peer", c.RemotePeer(), "addr", c.RemoteMultiaddr())
			w.closed.Add(1)
			_ = c.Close()
		default:
			w.probe(c, w.timeout)
		}
	}
}

func (w *linkWatch) hasRelayedConn(p peer.ID) bool {
	return slices.ContainsFunc(w.h.host.Network().ConnsToPeer(p), relayedConn)
}

// trimIdle forgets peers idle for an hour.
func (w *linkWatch) trimIdle() {
	w.recv.TrimIdle(time.Now().Add(-time.Hour))
}

// recvClock is the bandwidth reporter libp2p's swarm calls on every stream
// read; it keeps only when each peer last delivered bytes, which is what
// tells a busy link from a dead one. The byte totals it is asked for are
// not kept (zero).
type recvClock struct {
	mu    sync.RWMutex
	last  map[peer.ID]*atomic.Int64 // unix nanoseconds
	tally *streamCounts             // per-protocol counts (streamcount.go); nil: none
}

var _ metrics.Reporter = (*recvClock)(nil)

func (r *recvClock) LogRecvMessageStream(n int64, proto protocol.ID, p peer.ID) {
	if n <= 0 {
		return // the swarm reports failed reads too
	}
	r.tally.read(proto)
	r.heard(p, time.Now())
}

// heard records that p delivered bytes at t.
func (r *recvClock) heard(p peer.ID, at time.Time) {
	now := at.UnixNano()
	r.mu.RLock()
	t := r.last[p]
	r.mu.RUnlock()
	if t == nil {
		r.mu.Lock()
		if t = r.last[p]; t == nil {
			t = new(atomic.Int64)
			r.last[p] = t
		}
		r.mu.Unlock()
	}
	t.Store(now)
}

// since reports whether p delivered bytes at or after t.
func (r *recvClock) since(p peer.ID, t time.Time) bool {
	return !r.lastFrom(p).Before(t)
}

// lastFrom is when p last delivered bytes on any stream; zero if not
// since it was last trimmed.
func (r *recvClock) lastFrom(p peer.ID) time.Time {
	r.mu.RLock()
	last := r.last[p]
	r.mu.RUnlock()
	if last == nil {
		return time.Time{}
	}
	return time.Unix(0, last.Load())
}

func (r *recvClock) TrimIdle(since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, t := range r.last {
		if t.Load() < since.UnixNano() {
			delete(r.last, p)
		}
	}
}

func (r *recvClock) LogSentMessage(int64) {}
func (r *recvClock) LogRecvMessage(int64) {}
func (r *recvClock) LogSentMessageStream(n int64, proto protocol.ID, _ peer.ID) {
	if n > 0 {
		r.tally.wrote(proto)
	}
}
func (r *recvClock) GetBandwidthForPeer(peer.ID) metrics.Stats             { return metrics.Stats{} }
func (r *recvClock) GetBandwidthForProtocol(protocol.ID) metrics.Stats     { return metrics.Stats{} }
func (r *recvClock) GetBandwidthTotals() metrics.Stats                     { return metrics.Stats{} }
func (r *recvClock) GetBandwidthByPeer() map[peer.ID]metrics.Stats         { return nil }
func (r *recvClock) GetBandwidthByProtocol() map[protocol.ID]metrics.Stats { return nil }
func (r *recvClock) Reset()                                                {}

// measured records the round trip of an answered ping to p: raw for
// Host.Latency, and in libp2p's peerstore (its smoothed estimate, shown
// per peer in the status), which libp2p's own pings fed before these
// replaced them.
func (w *linkWatch) measured(p peer.ID, rtt time.Duration) {
	w.sampled(p, rtt)
	w.h.host.Peerstore().RecordLatency(p, rtt)
}

// sampled keeps rtt as p's last round trip.
func (w *linkWatch) sampled(p peer.ID, rtt time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rtts[p] = rtt
}

// lastRTT is the round trip of p's last answered ping (a link ping or
// Host.Ping); 0 if none.
func (w *linkWatch) lastRTT(p peer.ID) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rtts[p]
}

// forgetRTTs forgets the round trips of peers no longer connected.
func (w *linkWatch) forgetRTTs() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.rtts {
		if !hasConn(w.h.host.Network().Connectedness(p)) {
			delete(w.rtts, p)
		}
	}
}

// ping pings c at the muxer level. The host makes only yamux connections
// (TCP is its one transport); anything else is not pinged.
func (w *linkWatch) ping(c network.Conn, timeout time.Duration) error {
	var sess *yamux.Session
	if !c.As(&sess) {
		return nil
	}
	return w.muxerPing(c, sess, timeout)
}

// muxerPingProtocol names yamux's own pings in the stream counts
// (StreamCounts, nodefig), which see no stream for them.
const muxerPingProtocol = protocol.ID("(yamux-ping)")

// muxerPing sends a yamux ping frame on c's session and waits for the
// pong: 12 bytes each way, answered by the peer's yamux read loop. The
// link watch used libp2p's ping protocol, on a stream kept per
// connection; but a stream costs an open, a protocol negotiation and a
// handler goroutine on both ends, and libp2p's ping handler ends a stream
// idle for 10 s — the very interval of idle links' pings — so every idle
// ping paid for a new stream: at 96 peers most of an idle node's messages
// (issue 17). The pong counts as hearing from the peer (HeardFrom), as
// every frame does (hearingMuxer). yamux bounds its
// own ping by its write timeout; this one gives up after timeout and
// leaves yamux's to finish in the background.
func (w *linkWatch) muxerPing(c network.Conn, sess *yamux.Session, timeout time.Duration) error {
	type pong struct {
		rtt time.Duration
		err error
	}
	done := make(chan pong, 1)
	go func() {
		rtt, err := sess.Ping()
		done <- pong{rtt, err}
	}()
	w.recv.tally.wrote(muxerPingProtocol)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p := <-done:
		err := p.err
		if errors.Is(err, yamux.ErrTimeout) {
			return fmt.Errorf("yamux ping: %w", context.DeadlineExceeded)
		}
		if err != nil {
			return fmt.Errorf("yamux ping: %w", err)
		}
		w.recv.tally.read(muxerPingProtocol)
		w.recv.heard(c.RemotePeer(), time.Now())
		w.measured(c.RemotePeer(), p.rtt)
		return nil
	case <-timer.C:
		return fmt.Errorf("yamux ping: %w", context.DeadlineExceeded)
	case <-w.h.ctx.Done():
		return w.h.ctx.Err()
	}
}

// WatchLinks has the connections to these peers (IDs as text) pinged
// every LinkCheckInterval for the next d, instead of every
// linkIdleEvery intervals: the node is vouching for them (its DNS answers
// hand them out), so one that hangs must be noticed within seconds.
func (h *Host) WatchLinks(ids []string, d time.Duration) {
	until := time.Now().Add(d)
	for _, id := range ids {
		if p, err := h.ids.decode(id); err == nil {
			h.links.watch(p, until)
		}
	}
}

// watchConns asks for a probe of conns if the returned stop is not called
// within linkSuspectAfter: a request waiting that long on a LAN or a
// home link is a sign the link died.
func (h *Host) watchConns(conns []network.Conn) (stop func()) {
	t := time.AfterFunc(linkSuspectAfter, func() {
		for _, c := range conns {
			h.links.suspect(c)
		}
	})
	return func() { t.Stop() }
}
