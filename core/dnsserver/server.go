package dnsserver

import (
	"context"
	"errors"
	"fmt"
	lru "github.com/hashicorp/golang-lru/v2"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"
)

// Proxy is a Coral node as the nameserver sees it.
type Proxy struct {
	ID         string       // peer ID (opaque)
	Addrs      []netip.Addr // addresses its HTTP proxy (and nameserver) listen on
	LastHeard  time.Time    // when this node last heard from it (zero: never)
	Public     bool         // reachable from the Internet at its global addresses
	Nameserver bool         // also answers DNS on port 53 at Addrs
	Cluster    [3]string    // cluster IDs at level 2 (regional), 1, 0 (global); "" = none
	// Full: no headroom (paused, over its quota or its upload cap in use):
	// handed out only when no other live proxy is.
	Full bool
	// Paused: Full because it serves nobody now (paused, an "off" window,
	// its quota reached): unlike a proxy that is only busy it would answer
	// every visitor 503, so it is never a spare for proxies whose pings
	// failed (withoutFull).
	Paused bool
}

// Directory lists the proxies this node knows. The server does not modify
// the returned slice, so an implementation may hand out a shared snapshot.
type Directory interface {
	Proxies() []Proxy
}

// Prober checks synchronously that a proxy is alive (optional).
type Prober interface {
	Ping(ctx context.Context, id string) error
}

// Hints reports measured RTTs from proxies to a resolver network (optional):
// proxy ID -> RTT. network is an IPv4 /24, an IPv6 /48, or a shorter client
// subnet. Results are cached for Config.HintTTL.
type Hints interface {
	RTTs(ctx context.Context, network netip.Prefix) map[string]time.Duration
}

// NameServer is a nameserver registered with the parent zone (with glue).
type NameServer struct {
	Name  string       // e.g. "ns1.nyud.net"
	Addrs []netip.Addr // glue; required when Name is inside the zone
}

// RateLimit configures response rate limiting over UDP, as BIND's RRL:
// per client network (IPv4 /24, IPv6 /56) and response (query name, type,
// and answer / no data / NXDOMAIN / error).
type RateLimit struct {
	PerSecond  float64 // identical responses per second per network; 0 = 20; negative = no limit
	Burst      int     // 0 = 2*PerSecond
	Slip       int     // every Slip-th suppressed response is sent truncated; 0 = 2; negative = never
	MaxEntries int     // responses tracked at once; 0 = 65536
}

// DefaultRateLimit is the limiter as shipped: 20 identical responses per
// second to one network, a burst of 40, every 2nd suppressed one slipped.
func DefaultRateLimit() RateLimit {
	return RateLimit{PerSecond: 20, Burst: 40, Slip: 2, MaxEntries: 65536}
}

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	Zone     string       // required, e.g. "nyud.net"
	NSZone   string       // where nameserver names live; default "ns."+Zone; strictly inside Zone
	StaticNS []NameServer // the parent's delegation; NS set of last resort
	Listen   string       // UDP and TCP address; default "127.0.0.1:5354"
	Self     string       // this node's proxy ID, for the own-cluster preference
	// Traffic counts the bytes of each query and answer (their encoded
	// sizes; for the volunteer's usage record, never held back); nil: none.
	Traffic func(sent, received int)

	TTL          time.Duration // A/AAAA and negative TTL, 30s..60s; default 30s
	NSTTL        time.Duration // NS and glue TTL, TTL..24h; default 5m
	Answers      int           // A/AAAA records per answer, 2..4; default 3
	NSCount      int           // NS records per answer, 1..13; default 4
	LiveWindow   time.Duration // proxies heard within it are live; default 60s
	ProbeTimeout time.Duration // deadline for synchronous pings; default 300ms
	HintTTL      time.Duration // how long RTT hints for a network are reused; default 60s
	HintTimeout  time.Duration // deadline for a Hints lookup; default 200ms
	UDPSize      int           // EDNS UDP payload size advertised, 512..4096; default 1232
	RateLimit    RateLimit

	Clock  func() time.Time // default time.Now
	Logger *slog.Logger     // default slog.Default()
}

// Stats are counters since New.
type Stats struct {
	Queries       uint64 // queries handled (UDP and TCP)
	TCP           uint64 // of which over TCP
	Answers       uint64 // NOERROR with records
	NoData        uint64 // NOERROR without records
	NXDomain      uint64
	Refused       uint64
	ServFail      uint64 // no live, reachable proxy known
	OtherErrors   uint64 // FORMERR, NOTIMP, BADVERS
	Truncated     uint64 // sent with TC because the answer did not fit
	Malformed     uint64 // packets dropped unanswered: unparsable, responses, bad counts
	RateDropped   uint64 // responses suppressed by the rate limiter
	RateSlipped   uint64 // responses sent truncated by the rate limiter
	Probes        uint64 // synchronous pings sent
	ProbeFailures uint64
}

type counters struct {
	queries, tcp, answers, noData, nxDomain, refused, servFail, otherErrors atomic.Uint64
	truncated, malformed, rateDropped, rateSlipped, probes, probeFailures   atomic.Uint64
}

// Option adds an optional collaborator.
type Option func(*Server)

// WithProber makes the server ping proxies it has not heard from recently
// before handing them out.
func WithProber(p Prober) Option { return func(s *Server) { s.prober = p } }

// WithHints gives the server RTT hints per resolver network.
func WithHints(h Hints) Option { return func(s *Server) { s.hints = h } }

// WithHandout tells f which proxies the server's answers are handing out:
// the candidates that fill an answer of a fresh ranking (at most one call
// per kind of asker and second, never per query). The caller watches
// their liveness closely (a proxy that hangs must leave the answers within
// seconds) and the rest of its peers' loosely.
func WithHandout(f func(ids []string)) Option { return func(s *Server) { s.handout = f } }

// Server is an authoritative nameserver for one Coral zone.
type Server struct {
	cfg     Config
	dir     Directory
	prober  Prober
	hints   Hints
	handout func(ids []string) // see WithHandout
	paused  func() bool        // see WithPause
	sites   Sites              // see WithSites
	log     *slog.Logger

	zone       string   // canonical: lower case, no trailing dot
	zoneFQDN   string   // with trailing dot
	zoneLabels []string // labels of zone
	nsRel      []string // labels of NSZone relative to zone
	nsFQDN     string
	static     map[string]NameServer // by lower-case FQDN
	staticList []NameServer          // names as FQDNs, in configured order
	soaMname   string
	serial     uint32

	rrl *limiter
	// Everything remembered per client or per proxy lives in a bounded
	// LRU, so that spoofed sources cannot grow memory without bound.
	hintCache  *lru.Cache[netip.Prefix, hintEntry]
	probeCache *lru.Cache[string, probeResult]
	labels     *lru.Cache[string, string]
	ranks      *lru.Cache[rankKey, *ranking]
	classes    *lru.Cache[string, nameKind] // fast path: lower-case FQDN -> kind
	selfCache  atomic.Pointer[selfEntry]
	probeSF    singleflight.Group
	hintSF     singleflight.Group
	rotA, rotN atomic.Uint64
	st         counters

	ctx    context.Context // cancelled by Close; parent of pings and hint lookups
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool
	closed  bool
	udp     *dns.Server
	tcp     *dns.Server
	udpAddr net.Addr
	tcpAddr net.Addr
	served  sync.WaitGroup
}

var _ dns.Handler = (*Server)(nil)

// New validates cfg and returns a server that is not yet listening.
func New(cfg Config, dir Directory, opts ...Option) (*Server, error) {
	if dir == nil {
		return nil, errors.New("dnsserver: nil Directory")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	zone, err := coralurl.NormalizeZone(cfg.Zone)
	if err != nil {
		return nil, fmt.Errorf("dnsserver: zone: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		dir:        dir,
		log:        cfg.Logger.With("component", "dnsserver"),
		zone:       zone,
		zoneFQDN:   zone + ".",
		zoneLabels: strings.Split(zone, "."),
		static:     make(map[string]NameServer),
		hintCache:  newLRU[netip.Prefix, hintEntry](4096),
		probeCache: newLRU[string, probeResult](16384),
		labels:     newLRU[string, string](16384),
		ranks:      newLRU[rankKey, *ranking](1024),
		classes:    newLRU[string, nameKind](16384),
	}
	if err := s.setNameservers(cfg); err != nil {
		return nil, err
	}
	s.serial = uint32(cfg.Clock().Unix())
	if cfg.RateLimit.PerSecond > 0 {
		perName := []string{s.zoneFQDN, s.nsFQDN} // finite names; the rest are synthesised
		for name := range s.static {
			perName = append(perName, name)
		}
		s.rrl = newLimiter(cfg.RateLimit, perName...)
	}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// setNameservers checks and sets the nameserver zone (cfg.NSZone, default
// "ns.<zone>") and the static nameservers, and names the SOA's primary.
func (s *Server) setNameservers(cfg Config) error {
	nsZone := cfg.NSZone
	if nsZone == "" {
		nsZone = "ns." + s.zone
	}
	nsZone, err := coralurl.NormalizeZone(nsZone)
	if err != nil {
		return fmt.Errorf("dnsserver: ns_zone: %w", err)
	}
	rel, ok := strings.CutSuffix(nsZone, "."+s.zone)
	if !ok {
		return fmt.Errorf("dnsserver: ns_zone %q must be strictly inside zone %q", nsZone, s.zone)
	}
	s.nsRel = strings.Split(rel, ".")
	s.nsFQDN = nsZone + "."
	for _, ns := range cfg.StaticNS {
		name, err := coralurl.NormalizeZone(ns.Name)
		if err != nil {
			return fmt.Errorf("dnsserver: static nameserver: %w", err)
		}
		inZone := name == s.zone || strings.HasSuffix(name, "."+s.zone)
		if inZone && len(ns.Addrs) == 0 {
			return fmt.Errorf("dnsserver: static nameserver %q is inside the zone and needs glue addresses", ns.Name)
		}
		if name == s.zone || strings.HasSuffix(name, "."+nsZone) || name == nsZone {
			return fmt.Errorf("dnsserver: static nameserver %q collides with the zone apex or the nameserver zone", ns.Name)
		}
		for _, a := range ns.Addrs {
			if !a.IsValid() || a.IsUnspecified() {
				return fmt.Errorf("dnsserver: static nameserver %q: invalid address %v", ns.Name, a)
			}
		}
		ns := NameServer{Name: name + ".", Addrs: unmapAll(ns.Addrs)}
		if inZone {
			s.static[ns.Name] = ns
		}
		s.staticList = append(s.staticList, ns)
	}
	if len(s.staticList) > 0 {
		s.soaMname = s.staticList[0].Name
	} else {
		s.soaMname = s.nsFQDN
	}
	return nil
}

// newLRU makes a bounded LRU of a constant, positive size.
func newLRU[K comparable, V any](size int) *lru.Cache[K, V] {
	c, err := lru.New[K, V](size)
	if err != nil {
		panic("dnsserver: " + err.Error()) // only for size <= 0
	}
	return c
}

// getOrAdd returns c's value for k, computing and adding it with mk when
// absent. Two callers may both compute a missing value; mk is pure, so
// either result is the same.
func getOrAdd[K comparable, V any](c *lru.Cache[K, V], k K, mk func() V) V {
	if v, ok := c.Get(k); ok {
		return v
	}
	v := mk()
	c.Add(k, v)
	return v
}

// setDefaults fills zero fields with their defaults (the README's "Defaults in
// Go code") and checks the result; negative PerSecond and Slip mean off.
func (c *Config) setDefaults() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TTL, 30*time.Second)
	def(&c.NSTTL, 5*time.Minute)
	def(&c.LiveWindow, 60*time.Second)
	def(&c.ProbeTimeout, 300*time.Millisecond)
	def(&c.HintTTL, 60*time.Second)
	def(&c.HintTimeout, 200*time.Millisecond)
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5354"
	}
	if c.Answers == 0 {
		c.Answers = 3
	}
	if c.NSCount == 0 {
		c.NSCount = 4
	}
	if c.UDPSize == 0 {
		c.UDPSize = 1232 // DNS flag day 2020: avoids IP fragmentation
	}
	rl, shipped := &c.RateLimit, DefaultRateLimit()
	if rl.PerSecond == 0 {
		rl.PerSecond = shipped.PerSecond
	}
	if rl.Burst == 0 {
		rl.Burst = int(2*rl.PerSecond + 0.5)
	}
	if rl.Slip == 0 {
		rl.Slip = shipped.Slip
	}
	if rl.MaxEntries == 0 {
		rl.MaxEntries = shipped.MaxEntries
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.TTL < 30*time.Second || c.TTL > 60*time.Second:
		return fmt.Errorf("dnsserver: ttl %v outside 30s..60s", c.TTL)
	case c.NSTTL < c.TTL || c.NSTTL > 24*time.Hour:
		return fmt.Errorf("dnsserver: ns_ttl %v outside ttl..24h", c.NSTTL)
	case c.Answers < 2 || c.Answers > 4:
		return fmt.Errorf("dnsserver: answers %d outside 2..4", c.Answers)
	case c.NSCount < 1 || c.NSCount > 13:
		return fmt.Errorf("dnsserver: ns_count %d outside 1..13", c.NSCount)
	case c.LiveWindow < time.Second:
		return fmt.Errorf("dnsserver: live_window %v shorter than 1s", c.LiveWindow)
	case c.ProbeTimeout <= 0 || c.HintTimeout <= 0 || c.HintTTL <= 0:
		return errors.New("dnsserver: probe_timeout, hint_timeout and hint_ttl must be positive")
	case c.UDPSize < dns.MinMsgSize || c.UDPSize > 4096:
		return fmt.Errorf("dnsserver: udp_size %d outside 512..4096", c.UDPSize)
	case c.RateLimit.Burst < 1 && c.RateLimit.PerSecond > 0:
		return fmt.Errorf("dnsserver: rate_limit burst %d must be at least 1", c.RateLimit.Burst)
	}
	return nil
}

const udpReadBuffer = 4 << 20

// Start listens on Config.Listen over UDP and TCP (the same port; with port
// 0 both get the same ephemeral port) and serves until ctx ends or Close.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("dnsserver: already started or closed")
	}
	pc, l, err := listenBoth(s.cfg.Listen)
	if err != nil {
		return err
	}
	s.udp = &dns.Server{
		PacketConn:     pc,
		Handler:        s,
		UDPSize:        4096, // read buffer: queries with large EDNS options still fit
		MsgAcceptFunc:  s.accept,
		MsgInvalidFunc: s.invalid,
		DecorateWriter: s.decorate,
		DecorateReader: s.decorateReader, // the fast path (fast.go)
	}
	s.tcp = &dns.Server{
		Listener:       l,
		Handler:        s,
		MaxTCPQueries:  -1, // a resolver may keep one connection for many queries (RFC 7766)
		ReadTimeout:    2 * time.Second,
		WriteTimeout:   2 * time.Second,
		MsgAcceptFunc:  s.accept,
		MsgInvalidFunc: s.invalid,
		DecorateWriter: s.decorate,
	}
	if uc, ok := pc.(*net.UDPConn); ok {
		// Absorb bursts instead of dropping them in the kernel (capped by
		// net.core.rmem_max; failure leaves the default).
		_ = uc.SetReadBuffer(udpReadBuffer)
	}
	s.udpAddr, s.tcpAddr = pc.LocalAddr(), l.Addr()
	// Wait until both loops run: ShutdownContext refuses a server that has
	// not started yet, which would leave a listener behind after Close.
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		up := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(up) }
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			err := srv.ActivateAndServe()
			failed <- err
			if err != nil && s.ctx.Err() == nil {
				s.log.Error("dns listener stopped", "err", err)
			}
		}()
		select {
		case <-up:
		case err := <-failed:
			pc.Close()
			l.Close()
			if s.udp != srv {
				s.udp.Shutdown()
			}
			return fmt.Errorf("dnsserver: serve %s: %w", s.cfg.Listen, err)
		}
	}
	s.started = true
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.ctx.Done():
		}
	}()
	s.log.Info("serving DNS", "zone", s.zone, "udp", s.udpAddr.String(), "tcp", s.tcpAddr.String())
	if len(s.staticList) == 0 && s.zone != "localhost" {
		s.log.Warn("no nameserver registered for the zone ([[dns.nameservers]]): NS at the apex names volunteer nameservers only, and has no answer while none is known",
			"zone", s.zone)
	}
	return nil
}

func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dnsserver: listen udp %s: %w", addr, err)
		}
		host, _, _ := net.SplitHostPort(addr)
		_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
		l, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = err
		if _, p, _ := net.SplitHostPort(addr); p != "0" {
			break // a fixed port: retrying cannot help
		}
	}
	return nil, nil, fmt.Errorf("dnsserver: listen tcp %s: %w", addr, lastErr)
}

// Addr returns the bound UDP and TCP addresses (nil before Start).
func (s *Server) Addr() (udp, tcp net.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udpAddr, s.tcpAddr
}

// Close stops listening and waits for the listeners to exit. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	udp, tcp, started := s.udp, s.tcp, s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range []*dns.Server{udp, tcp} {
		if err := srv.ShutdownContext(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.served.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dnsserver: close: %w", err)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.st
	return Stats{
		Queries: c.queries.Load(), TCP: c.tcp.Load(), Answers: c.answers.Load(), NoData: c.noData.Load(),
		NXDomain: c.nxDomain.Load(), Refused: c.refused.Load(), ServFail: c.servFail.Load(),
		OtherErrors: c.otherErrors.Load(), Truncated: c.truncated.Load(), Malformed: c.malformed.Load(),
		RateDropped: c.rateDropped.Load(), RateSlipped: c.rateSlipped.Load(),
		Probes: c.probes.Load(), ProbeFailures: c.probeFailures.Load(),
	}
}

func (s *Server) now() time.Time { return s.cfg.Clock() }

func unmapAll(as []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		out = append(out, a.Unmap())
	}
	return out
}
