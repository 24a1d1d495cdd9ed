package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/locality"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/p2p"
)

// hintPublishInterval is how often the proxy's RTT measurements to visitor
// networks are put into the DSHT (core/locality.Meter).
const hintPublishInterval = time.Minute

// locator is everything the nameserver learns from the rest of the node and
// the network: the directory of live proxies (directory.go), the RTTs this
// node's proxy measured to its visitors, and RTT hints from the DSHT.
type locator struct {
	host *p2p.Host
	dht  *dsht.Node
	self string
	log  *slog.Logger

	dnsOn      bool
	dnsListen  string
	nsMode     string // config dns.nameserver: auto, yes, no
	httpListen string
	advertise  []netip.Addr
	httpAddr   atomic.Pointer[string] // set by measure once the listener is bound
	announce   atomic.Pointer[[]byte] // encoded self announcement for ServeInfo

	dir   *locality.Directory
	meter *locality.Meter
	hints *locality.Hints
	wake  chan string // peers to ask now (just connected, or told us of a change)

	seen    atomic.Pointer[string] // peersSee of the last self announcement
	changed chan struct{}          // the announcement changed: tell the peers

	headroom func() shaping.Headroom // this node's budget (set by openBudget); nil: unbounded
}

// newLocator builds the locator and starts answering peers' /coral/info
// requests (every node does, whether or not it runs DNS itself).
func newLocator(n *Node) (*locator, error) {
	l := &locator{
		host:       n.host,
		dht:        n.dht,
		self:       n.nodeID,
		log:        n.parts.With("component", "locality"),
		dnsOn:      n.cfg.DNS.Listen != "",
		dnsListen:  n.cfg.DNS.Listen,
		nsMode:     n.cfg.DNS.Nameserver,
		httpListen: n.cfg.HTTP.Listen,
		wake:       make(chan string, 64),
		changed:    make(chan struct{}, 1),
	}
	for _, s := range n.advertiseSetting() {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.IsUnspecified() {
			return nil, fmt.Errorf("node: http.advertise: %q is not an IP address", s)
		}
		l.advertise = append(l.advertise, ip.Unmap())
	}
	l.dir = locality.NewDirectory(dnsserver.Proxy{ID: n.nodeID})
	var err error
	if l.meter, err = locality.NewMeter(locality.MeterConfig{Self: n.nodeID, Logger: n.parts}, n.dht); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if l.hints, err = locality.NewHints(locality.HintsConfig{Self: n.nodeID, Local: l.meter.RTT, Logger: n.parts}, n.dht); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	l.refreshSelf()
	n.host.ServeInfo(l.announcement)
	n.host.OnInfoChanged(func(id string) {
		select {
		case l.wake <- id:
		default: // full: the next refresh asks it
		}
	})
	n.host.WatchPeers(
		func(id string) {
			select {
			case l.wake <- id:
			default: // the next heartbeat asks it
			}
		},
		l.dir.Forget,
	)
	return l, nil
}

// advertiseSetting is [http] advertise: the addresses visitors use for
// this node's proxy when the node cannot see them itself (a port-forwarded
// home router's public address, or test addresses).
func (n *Node) advertiseSetting() []string { return n.cfg.HTTP.Advertise }

// dnsOptions are the nameserver's collaborators from the locator.
func (l *locator) dnsOptions() []dnsserver.Option {
	return []dnsserver.Option{
		dnsserver.WithProber(proxyProber{host: l.host, dir: l.dir}),
		dnsserver.WithHints(l.hints),
	}
}

// measure wraps the HTTP listener so the proxy's visitors' RTTs feed the
// meter, and records the listener's address for the announcement.
func (l *locator) measure(ln net.Listener) net.Listener {
	addr := ln.Addr().String()
	l.httpAddr.Store(&addr)
	l.refreshSelf()
	return locality.MeasureListener(ln, l.meter.Observe)
}

// start runs the heartbeat and the hint publisher until ctx ends.
func (l *locator) start(ctx context.Context, wg *sync.WaitGroup) {
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

// proxyProber pings a proxy over libp2p before the nameserver hands it out
// (dnsserver.Prober); an answer also counts as hearing from it.
type proxyProber struct {
	host *p2p.Host
	dir  *locality.Directory
}

var _ dnsserver.Prober = proxyProber{}

func (p proxyProber) Ping(ctx context.Context, id string) error {
	if _, err := p.host.Ping(ctx, id); err != nil {
		return err
	}
	p.dir.Alive(id, time.Now())
	return nil
}

// rateLimit maps the [dns] rrl_* keys to the limiter; 0 means off in the
// config and "never" for slip, where dnsserver takes 0 as "default".
func rateLimit(d config.DNS) dnsserver.RateLimit {
	rl := dnsserver.RateLimit{
		PerSecond:  float64(d.RRLResponsesPerSecond),
		Burst:      d.RRLBurst,
		Slip:       d.RRLSlip,
		MaxEntries: d.RRLTableSize,
	}
	if rl.PerSecond == 0 {
		rl.PerSecond = -1
	}
	if rl.Slip == 0 {
		rl.Slip = -1
	}
	return rl
}
