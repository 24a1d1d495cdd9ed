package locality

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/shaping"
)

// hintPublishInterval is how often the proxy's RTT measurements to visitor
// networks are put into the DSHT (Meter.Run).
const hintPublishInterval = time.Minute

// Peers is what the Locator needs of the peer-to-peer host; p2p.Host
// implements it. Peers are named by their ID as text.
type Peers interface {
	// ConnectedIDs lists the peers with at least one open connection.
	ConnectedIDs() []string
	// IsConnected reports whether a connection (direct or relayed) is open.
	IsConnected(id string) bool
	// PeerInfo asks a connected peer for its announcement, without dialing.
	PeerInfo(ctx context.Context, id string) ([]byte, time.Duration, error)
	// PeerIPs are the remote IPs of the direct connections to a peer.
	PeerIPs(id string) []netip.Addr
	// NotifyInfoChanged tells a connected peer, without dialing, that
	// this node's announcement changed, so it asks again now.
	NotifyInfoChanged(ctx context.Context, id string) error
	// HeardFrom is when a peer last delivered bytes to this node (any
	// stream, a ping's echo included); zero if unknown.
	HeardFrom(id string) time.Time
	// Ping checks that a connected peer answers, without dialing.
	Ping(ctx context.Context, id string) (time.Duration, error)
	// WatchLinks has the links to these peers checked every few seconds
	// for the next d (the others' much less often): this node vouches
	// for them.
	WatchLinks(ids []string, d time.Duration)
	// Public reports whether this host is reachable from the Internet.
	Public() bool
	// DirectIPs are the IPs of this host's own addresses (observed public
	// ones included, relayed ones never).
	DirectIPs() []netip.Addr
}

// DSHT is what the Locator needs of the DSHT: its clusters for the
// announcement, and a store for the RTT hints. *dsht.Node implements it.
type DSHT interface {
	Getter
	Putter
	NumLevels() int
	Cluster(level int) dsht.ID
}

var _ DSHT = (*dsht.Node)(nil)

// LocatorConfig is what a Locator is told by the node's configuration.
type LocatorConfig struct {
	Self       string       // this node's peer ID
	DNSListen  string       // the nameserver's listen address; "" when it runs none
	Nameserver string       // dns.nameserver: auto, yes or no
	HTTPListen string       // the proxy's configured listen address
	Advertise  []netip.Addr // http.advertise: the addresses announced instead of the machine's
	// Headroom is this node's budget; nil: unbounded.
	Headroom func() shaping.Headroom
	Logger   *slog.Logger
}

// Locator is everything the nameserver learns from the rest of the node and
// the network: the Directory of live proxies (kept current by a heartbeat
// with the connected peers, see heartbeat.go), the RTTs this node's proxy
// measured to its visitors (Meter), and RTT hints from the DSHT (Hints). It
// also composes this node's own Announcement (self.go).
type Locator struct {
	cfg   LocatorConfig
	peers Peers
	dht   DSHT
	log   *slog.Logger

	httpAddr atomic.Pointer[string] // set by Measure once the listener is bound
	announce atomic.Pointer[[]byte] // encoded self announcement for Announcement

	dir   *Directory
	meter *Meter
	hints *Hints
	wake  *askNow // peers to ask now (just connected, or told us of a change)

	sched *askSchedule // the heartbeat's exchanges with peers

	// refreshing makes Refreshes one at a time, so one computed earlier is
	// never stored after one computed later (the budget's and settings'
	// subscriptions and the heartbeat's sweep call it at once).
	refreshing sync.Mutex
	seen       atomic.Pointer[string] // peersSee of the last self announcement
	changed    chan struct{}          // the announcement changed: tell the peers
}

var _ dnsserver.Prober = (*Locator)(nil)

// NewLocator builds the locator with this node's announcement ready; the
// caller serves Announcement to peers and reports connections to Connected
// and Forget (p2p.Host.ServeInfo and WatchPeers), then calls Start.
func NewLocator(cfg LocatorConfig, peers Peers, dht DSHT) (*Locator, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Locator{
		cfg:   cfg,
		peers: peers,
		dht:   dht,
		log:   cfg.Logger.With("component", "locality"),
		dir:   NewDirectory(dnsserver.Proxy{ID: cfg.Self}),
		wake:  newAskNow(),
		sched: newAskSchedule(),

		changed: make(chan struct{}, 1),
	}
	var err error
	if l.meter, err = NewMeter(MeterConfig{Self: cfg.Self, Logger: cfg.Logger}, dht); err != nil {
		return nil, err
	}
	if l.hints, err = NewHints(HintsConfig{Self: cfg.Self, Local: l.meter.RTT, Logger: cfg.Logger}, dht); err != nil {
		return nil, err
	}
	l.Refresh()
	return l, nil
}

// Directory is the set of live proxies the nameserver answers from.
func (l *Locator) Directory() *Directory { return l.dir }

// DNSOptions are the nameserver's collaborators from the locator: the
// probe before handing out a proxy not heard from, the RTT hints, and the
// proxies handed out, whose links are then watched closely.
func (l *Locator) DNSOptions() []dnsserver.Option {
	return []dnsserver.Option{dnsserver.WithProber(l), dnsserver.WithHints(l.hints), dnsserver.WithHandout(l.handedOut)}
}

// handoutWatch is how long the links of a proxy the nameserver handed out
// are watched closely after the last time: the liveness window, so a
// proxy that hangs leaves the answers within seconds (README's DNS
// section) while answers name it, and the peers no answer names cost a
// ping every few ten seconds.
const handoutWatch = time.Minute

// handedOut has the links of the proxies the nameserver hands out watched
// closely.
func (l *Locator) handedOut(ids []string) {
	others := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != l.cfg.Self {
			others = append(others, id)
		}
	}
	l.peers.WatchLinks(others, handoutWatch)
}

// Ping probes a proxy before the nameserver hands it out
// (dnsserver.Prober); an answer also counts as hearing from it.
func (l *Locator) Ping(ctx context.Context, id string) error {
	if _, err := l.peers.Ping(ctx, id); err != nil {
		return err
	}
	l.dir.Alive(id, time.Now())
	return nil
}

// Measure wraps the proxy's listener so its visitors' RTTs feed the meter,
// and records the listener's address for the announcement.
func (l *Locator) Measure(ln net.Listener) net.Listener {
	addr := ln.Addr().String()
	l.httpAddr.Store(&addr)
	l.Refresh()
	return MeasureListener(ln, l.meter.Observe)
}

// Connected asks a newly connected peer (or one that says its
// announcement changed) for its announcement now rather than at the next
// heartbeat. It does not block, and no request is lost however many
// arrive at once: the next heartbeat would not ask a peer it already
// heard from.
func (l *Locator) Connected(id string) { l.wake.add(id) }

// Forget drops a peer whose last connection closed.
func (l *Locator) Forget(id string) { l.dir.Forget(id) }

// Start runs the heartbeat and the hint publisher until ctx ends.
func (l *Locator) Start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer l.hints.Close()
		l.heartbeat(ctx)
	}()
	go func() {
		defer wg.Done()
		l.meter.Run(ctx, hintPublishInterval)
	}()
}
