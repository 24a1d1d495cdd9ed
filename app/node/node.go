// Package node is Coral's composition root: it turns a config.Config into a
// running node — store, proxy, control listener, DNS server and libp2p host —
// and is the only package that knows every part.
package node

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/locality"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are what the caller of New supplies beside the config.
type Options struct {
	Logger  *slog.Logger
	Version string
	// HeaderTimeout bounds how long a visitor may take to send a request's
	// headers (default 10s); tests shorten it.
	HeaderTimeout time.Duration
	// RunStateRepublish is how often the run-state document in force is
	// sent to the network again (default p2p.DefaultRunStateRepublish);
	// tests shorten it.
	RunStateRepublish time.Duration
	// GroupFigures is how often a member node publishes its figures to its
	// site groups (default DefaultGroupFigures); tests shorten it.
	GroupFigures time.Duration
	// ConnLow and ConnHigh replace the connection manager's watermarks
	// (default p2p's 32 / 96). Figure tools give the crowd of peers around
	// a measured node room to keep their connection to it.
	ConnLow, ConnHigh int
}

const (
	defaultHeaderTimeout = 10 * time.Second
	// maxHeaderBytes caps a visitor's request headers; larger get 431.
	maxHeaderBytes = 64 << 10
)

// Node is one running Coral node.
type Node struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	token   string
	nodeID  string
	started time.Time

	headerTimeout time.Duration
	// parts is the logger handed to the components, each of which names
	// itself with a "component" attribute.
	parts *slog.Logger

	host    *p2p.Host
	dht     *dsht.Node
	coop    *coop.Coop
	store   *store.Store
	proxy   *proxy.Proxy
	dns     *dnsserver.Server
	loc     *locality.Locator // directory of live proxies, RTT meter and hints (dns.go)
	control *control.Server
	metrics *prometheus.Registry
	events  *eventLog // warnings for the Log tab and the status page

	// Run state (runstate.go): the operator key trusted, the document in
	// force and its effect, the gossip channel, restart requests.
	operatorKey       ed25519.PublicKey
	runState          *runstate.Tracker
	runStateCh        *p2p.RunStateChannel
	applyMu           sync.Mutex // one document applied at a time, so an older never replaces a newer
	effect            atomic.Pointer[appliedRunState]
	restart           chan struct{}
	restartOnce       sync.Once
	restartWhy        string
	runStateRepublish time.Duration

	groups   groupSet     // site groups (groups.go)
	settings *config.Live // live settings (budget.go)
	// settingsPath is the settings file, in homeDataDir (the config
	// file's data_dir) even when the settings moved the data dir.
	settingsPath, homeDataDir string
	dirLock                   *os.File        // held while the node runs (datalock.go)
	budget                    *shaping.Budget // caps, schedule, quota, usage (budget.go)
	budgetPolicyMu            sync.Mutex      // one policy applied at a time (setBudgetPolicy)

	httpLn, controlLn net.Listener
	servers           []*http.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	// siteProxy is proxy once made, for reindexSites: group gossip may
	// deliver a manifest while the node is still being built.
	siteProxy atomic.Pointer[proxy.Proxy]
}

var _ control.API = (*Node)(nil)

// New provisions every part from cfg but binds no listener yet: a node that
// cannot open its store or read its secret fails here, before it is visible.
func New(cfg config.Config, opts Options) (_ *Node, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: config: %w", err)
	}
	// One absolute data directory for every part (p2p joins relative file
	// names to it again; a relative one would be resolved twice).
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	// The settings file stays in the config's data dir; a data dir chosen
	// through the settings (cache.data_dir) takes over from this start on.
	settingsPath := cfg.Path(config.SettingsFile)
	homeDataDir := cfg.DataDir
	if moved, err := config.SavedDataDir(settingsPath); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	} else if moved != "" {
		cfg.DataDir = moved
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	events := &eventLog{}
	log = slog.New(events.tee(log.Handler()))
	n := &Node{cfg: cfg, log: log.With("component", "node"), parts: log, events: events, version: opts.Version, started: time.Now(),
		headerTimeout: cmp.Or(opts.HeaderTimeout, defaultHeaderTimeout), restart: make(chan struct{})}
	n.settingsPath, n.homeDataDir = settingsPath, homeDataDir
	n.runStateRepublish = opts.RunStateRepublish
	n.groups.figuresEvery = cmp.Or(opts.GroupFigures, DefaultGroupFigures)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	if n.dirLock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := checkDataFormat(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := p2p.CheckListenPorts(cfg.P2P.Listen); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	joined, err := readJoined(cfg)
	if err != nil {
		return nil, err
	}
	if err := n.openRunState(joined); err != nil {
		return nil, err
	}
	if err := n.openGroups(); err != nil {
		return nil, err
	}
	if err := n.openBudget(); err != nil {
		return nil, err
	}
	n.host, err = p2p.New(context.Background(), p2p.Config{
		DataDir:             cfg.DataDir,
		ListenAddrs:         cfg.P2P.Listen,
		Bootstrap:           withJoined(cfg.P2P.Bootstrap, joined),
		SecretFile:          cfg.Path(cfg.P2P.SecretFile),
		Operator:            n.operatorKey, // part of the network's identity
		DisableMDNS:         !cfg.P2P.MDNS,
		Reachability:        cfg.P2P.Reachability,
		DisableRelayService: !cfg.P2P.RelayService,
		DisableNATPortMap:   !cfg.P2P.NATPortMap,
		EmulateRTT:          rttRules(cfg.P2P.EmulateRTT),
		ConnLow:             opts.ConnLow,
		ConnHigh:            opts.ConnHigh,
		Budget:              n.budget,
		Serving:             n.budget.Serving, // no relaying while paused, off or over quota
		Logger:              log,
	})
	if err != nil {
		return nil, fmt.Errorf("node: p2p: %w", err)
	}
	n.nodeID = n.host.ID().String()
	dcfg := dsht.DefaultConfig(n.host.Self())
	dcfg.Logger = log
	dcfg.Levels = []time.Duration{0, cfg.DSHT.Level1RTT.D(), cfg.DSHT.Level2RTT.D()}
	if n.dht, err = dsht.New(dcfg, n.host.DSHTNetwork()); err != nil {
		return nil, fmt.Errorf("node: dsht: %w", err)
	}
	n.host.ServeDSHT(dshtGate{n, n.dht})
	if err := n.joinRunStateTopic(); err != nil {
		return nil, err
	}
	if err := n.joinGroupTopics(); err != nil {
		return nil, err
	}
	if n.loc, err = newLocator(n); err != nil {
		return nil, err
	}
	n.announceHeadroom()
	n.coop = coop.New(coop.Config{
		Self:    n.nodeID,
		PutGet:  cfg.P2P.PutGet,
		HasRoom: n.loc.Directory().HasRoom,
		Logger:  log,
	}, gatedDSHT{n.dht, n}, n.host)
	if err := os.MkdirAll(cfg.Path("tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("node: spool dir: %w", err)
	}
	n.token, err = control.LoadOrCreateToken(cfg.Path(cfg.Control.TokenFile))
	if err != nil {
		return nil, err
	}
	// The spool (cfg.Path("tmp")) is on the same filesystem: the proxy
	// asks the store's watermark before spooling to disk too.
	n.store, err = store.Open(cfg.Path("store"), store.Options{
		MaxBytes:     int64(n.settings.Get().Cache.MaxBytes),
		MinFreeBytes: int64(cfg.Cache.MinFreeBytes),
		Logger:       log,
		OnEvict: func(key string) {
			if n.proxy != nil {
				n.proxy.Evicted(key)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("node: open store: %w", err)
	}
	n.followCacheSize()
	n.proxy, err = proxy.New(proxy.Options{
		Zone:                cfg.Zone,
		NodeToken:           viaToken(n.host.Self().ID),
		SpoolDir:            cfg.Path("tmp"),
		Peers:               n.coop,
		MaxObjectBytes:      int64(cfg.Cache.MaxObjectBytes),
		MemoryBytes:         zeroIsOff(int64(cfg.Cache.MemoryBytes)),
		HeuristicTTL:        zeroIsOff(cfg.Cache.HeuristicTTL.D()),
		MaxStale:            zeroIsOff(cfg.Cache.MaxStale.D()),
		NegativeTTL:         zeroIsOff(cfg.Cache.NegativeTTL.D()),
		PeerCopyMaxAge:      zeroIsOff(cfg.Cache.PeerCopyMaxAge.D()),
		AllowPrivateOrigins: cfg.Cache.AllowPrivateOrigins,
		PassUnsafeMethods:   cfg.Cache.PassUnsafeMethods,
		StripCookies:        cfg.Cache.StripCookies,
		OriginTimeout:       cfg.HTTP.OriginTimeout.D(),
		MaxOriginFetches:    cfg.HTTP.MaxOriginFetches,
		MaxFetchesPerSite:   cfg.HTTP.MaxFetchesPerSite,
		OriginPorts:         cfg.Cache.OriginPorts,
		SelfAddrs:           n.reachedAt,
		Sites:               n.siteOrigin,
		SiteDisputed:        n.siteDisputed,
		OriginConn:          n.originConn,
		Logger:              log,
	}, n.store)
	if err != nil {
		return nil, fmt.Errorf("node: proxy: %w", err)
	}
	n.siteProxy.Store(n.proxy)
	if cfg.DNS.Listen != "" {
		n.dns, err = dnsserver.New(dnsserver.Config{
			Zone:      cfg.Zone,
			Listen:    cfg.DNS.Listen,
			StaticNS:  staticNS(cfg.DNS.Nameservers),
			Self:      n.nodeID,
			RateLimit: rateLimit(cfg.DNS),
			Traffic:   n.countDNS,
			Logger:    log,
		}, n.loc.Directory(), append(n.loc.DNSOptions(), dnsserver.WithPause(func() bool { return !n.serving(runstate.DNS) }), dnsserver.WithSites(n.siteMembers))...)
		if err != nil {
			return nil, fmt.Errorf("node: dns: %w", err)
		}
	}
	n.host.ServeObjects(shapedObjects{src: n.proxy, budget: n.budget})
	var held []store.Meta
	n.store.Each(func(m store.Meta) bool { held = append(held, m); return true })
	n.coop.Seed(held)
	n.metrics = prometheus.NewRegistry()
	n.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.metrics.MustRegister(newCollector(n), budgetCollector{n}, networkCollector{n})
	n.control = control.NewServer(n, n.token, promhttp.HandlerFor(n.metrics, promhttp.HandlerOpts{}), log)
	n.registerControlAPI()
	n.control.EnableSettings(n)
	n.control.EnableUsage(n)
	return n, nil
}

// Start binds the listeners and serves. It returns once everything listens,
// so Addrs is meaningful right after.
func (n *Node) Start(ctx context.Context) error {
	var err error
	if n.httpLn, err = net.Listen("tcp", n.cfg.HTTP.Listen); err != nil {
		return listenError("http", n.cfg.HTTP.Listen, err)
	}
	n.httpLn = n.loc.Measure(n.httpLn)
	if n.controlLn, err = net.Listen("tcp", n.cfg.Control.Listen); err != nil {
		return listenError("control", n.cfg.Control.Listen, err)
	}
	n.warnOpenControl()
	n.control.AllowHost(n.cfg.Control.Listen)
	n.control.AllowHost(n.controlLn.Addr().String())
	gate := newVisitorGate(n.proxy, n.budget, n.cfg.Zone, n.cfg.Path(homeOriginsFile))
	gate.custom = n.customSite
	// Hot-cache hits are answered on the connection when the gate lets
	// them (proxy.FastListener); everything else reaches the handlers.
	visitorLn, connState := n.proxy.FastListener(n.httpLn, fastGate{n, gate},
		proxy.FastTimeouts{Idle: httpIdleTimeout, Header: n.headerTimeout})
	// proxy.ConnContext lets the gate name each response's site to the
	// connection, which shapes and counts every byte (proxy.Uplink).
	n.serve(visitorLn, n.gateProxy(gate), connState, proxy.ConnContext)
	n.serve(n.controlLn, n.control, nil, nil)
	n.wg.Add(1)
	go n.followPeers(n.ctx)
	n.loc.Start(n.ctx, &n.wg)
	if n.dns != nil {
		if err := n.dns.Start(ctx); err != nil {
			return listenError("dns", n.cfg.DNS.Listen, err)
		}
	}
	return nil
}

// httpIdleTimeout is how long a visitor's connection may wait between
// requests.
const httpIdleTimeout = 120 * time.Second

// serve runs an http.Server with limits fit for untrusted visitors: slow
// clients cannot hold headers open or send oversized ones. connState, when
// set, is the server's ConnState hook; connContext, when set, its
// ConnContext.
func (n *Node) serve(ln net.Listener, h http.Handler, connState func(net.Conn, http.ConnState),
	connContext func(context.Context, net.Conn) context.Context) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: n.headerTimeout,
		// No WriteTimeout: long downloads stream for as long as they need;
		// stalled origins are cut by the proxy's origin timeout instead.
		ReadTimeout:    60 * time.Second,
		IdleTimeout:    httpIdleTimeout,
		ConnState:      connState,
		ConnContext:    connContext,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       serverErrorLog(n.log),
	}
	n.servers = append(n.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// ConnectDirect dials a member at a p2p address (…/p2p/<peer id>)
// directly, never through a relay; nothing when a direct connection is
// open. Figure tools use it to keep their crowd connected to the node they
// measure.
func (n *Node) ConnectDirect(ctx context.Context, addr string) error {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("node: connect: address %q: %w", addr, err)
	}
	return n.host.ConnectDirect(ctx, *ai)
}

// Addrs reports where the node listens (after Start).
func (n *Node) Addrs() control.Listen {
	l := control.Listen{}
	if n.httpLn != nil {
		l.HTTP = n.httpLn.Addr().String()
	}
	if n.controlLn != nil {
		l.Control = n.controlLn.Addr().String()
	}
	if n.dns != nil {
		if udp, _ := n.dns.Addr(); udp != nil {
			l.DNS = udp.String()
		}
	}
	if n.host != nil {
		for _, a := range n.host.P2PAddrs() {
			l.P2P = append(l.P2P, a.String())
		}
	}
	return l
}

// Token is the control token (for the in-process GUI).
func (n *Node) Token() string { return n.token }

// Run starts the node and serves until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return n.Close()
}

// Close stops listeners, lets in-flight requests finish briefly, then closes
// the store. Safe to call more than once.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var errs []error
		n.cancel()
		n.wg.Wait()
		for _, s := range n.servers {
			if err := s.Shutdown(ctx); err != nil {
				s.Close()
			}
		}
		if n.dns != nil {
			errs = append(errs, n.dns.Close())
		}
		// Background fetches write to the store: stop them before it closes.
		if n.proxy != nil {
			errs = append(errs, n.proxy.Close())
		}
		if n.coop != nil {
			errs = append(errs, n.coop.Close())
		}
		if n.runStateCh != nil {
			errs = append(errs, n.runStateCh.Close())
		}
		errs = append(errs, n.closeGroups()...)
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.host != nil {
			errs = append(errs, n.diskFullIsNoFailure(n.host.Close()))
		}
		if n.store != nil {
			errs = append(errs, n.store.Close())
		}
		if n.budget != nil {
			errs = append(errs, n.diskFullIsNoFailure(n.budget.Close()))
		}
		n.closeErr = errors.Join(errs...)
		unlockDataDir(n.dirLock) // last: every part has let go of the directory
	})
	return n.closeErr
}

// diskFullIsNoFailure turns a full disk while saving state at shutdown
// (peers.json is replaced atomically, so the old file stays) into a WARN:
// shutting down on a full disk is something the node must do cleanly.
func (n *Node) diskFullIsNoFailure(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		n.log.Warn("disk full at shutdown: state not saved", "err", err)
		return nil
	}
	return err
}

// Status implements control.API.
func (n *Node) Status(ctx context.Context) (control.Status, error) {
	ps := n.proxy.Stats()
	u := n.store.Usage()
	st := control.Status{
		Version:   n.version,
		NodeID:    n.nodeID,
		Zone:      n.cfg.Zone,
		StartedAt: n.started,
		Uptime:    time.Since(n.started),
		Listen:    n.Addrs(),
		Proxy:     proxyStatus(ps),
		Cache:     cacheStatus(u, n.store.Space()),
	}
	hs := n.host.Status()
	st.P2P = &control.P2PStatus{
		PeerID:         hs.PeerID,
		Addrs:          hs.Addrs,
		Reachability:   hs.Reachability,
		Relayed:        hs.Relayed,
		RelayAddrs:     hs.RelayReservations,
		ConnectedPeers: len(hs.Peers),
		JoinProblem:    hs.JoinProblem,
	}
	for _, p := range hs.Peers {
		if p.Relayed {
			st.P2P.RelayedPeers++
		}
	}
	for _, ip := range n.reachedAt() {
		st.P2P.ReachedAt = append(st.P2P.ReachedAt, ip.String())
	}
	st.DSHT = dshtStatus(n.dht.Status(), n.dht.Outlook)
	for _, t := range n.proxy.RecentTraces() {
		st.Recent = append(st.Recent, control.Trace{Time: t.Time, URL: withoutQuery(t.URL), Result: t.Result, Path: t.Path})
	}
	if n.dns != nil {
		ds := n.dns.Stats()
		st.DNS = dnsStatus(ds)
	}
	st.Events = n.events.list()
	st.RunState = n.runStateStatus()
	st.Groups = n.groupsStatus()
	st.Budget = n.budgetStatus()
	return st, nil
}

// zeroIsOff maps a config key the user turns off with "0" (the config
// file's defaults are already filled in) to the Options convention, where
// zero means the default and proxy.Off means off.
func zeroIsOff[T int64 | time.Duration](v T) T {
	if v == 0 {
		return proxy.Off
	}
	return v
}

// staticNS is the parent zone's delegation from config (validated there).
func staticNS(cfg []config.NameServer) []dnsserver.NameServer {
	var out []dnsserver.NameServer
	for _, ns := range cfg {
		ips, _, _ := ns.IPs()
		out = append(out, dnsserver.NameServer{Name: ns.Name, Addrs: ips})
	}
	return out
}

// rttRules are the planted RTTs from config (validated there).
func rttRules(cfg []config.RTTRule) []p2p.RTTRule {
	var out []p2p.RTTRule
	for _, r := range cfg {
		if a, b, _, err := r.Prefixes(); err == nil {
			out = append(out, p2p.RTTRule{A: a, B: b, RTT: r.RTT.D()})
		}
	}
	return out
}
