// Package proxy is Coral's HTTP front end: a caching reverse proxy for
// Coralized names that goes to each origin as close to once per object as it
// can, and keeps serving when origins misbehave.
//
// One request: the Host header is mapped to an origin (package coralurl);
// anything that is not a Coralized name for the zone is refused, since Coral
// is not an open proxy. GET and HEAD go through the cache: a fresh stored
// copy is served (HIT); a stale one is revalidated with the origin
// (REVALIDATED, or the new version); a miss is fetched. Fetches are coalesced:
// one origin request per object per node at a time, and every visitor asking
// meanwhile streams the body as it arrives (read-while-write), not after it
// ends. The RFC 9111 decisions come from package httpcache.
//
// CoralCDN's lesson, "accept conservatively, serve liberally", shapes the
// failure paths. A new version replaces the stored one only when it arrived
// complete (Content-Length matched, chunked encoding terminated) and within
// MaxObjectBytes; a partial, stalled or oversized transfer leaves the old copy,
// and the visitor of an interrupted transfer gets a broken connection rather
// than a truncated body that looks complete. A transfer from another proxy
// that breaks off is continued from the origin instead (a range request
// guarded by If-Range, or the whole body again with the bytes already sent
// checked against it), so its visitors still get the whole response.
//
// While a stale copy exists, no visitor gets a broken response because its
// refresh failed: the new version's body is held back until it arrived
// complete and was stored (for bodies up to refetchHoldBack, 8 MiB), then
// sent whole; if it truncates, resets or stalls, every visitor waiting on it
// gets the stale copy (STALE, within MaxStale; an error page when the copy
// forbids stale use), and the stale copy is served without another refresh
// for NegativeTTL, so a crowd does not wait on a failing origin one by one.
// The trade-off: when refreshing a stale object, the first byte reaches the
// visitors only once the last one arrived from the origin. A new version
// larger than 8 MiB, or one that is not stored, streams as it arrives, and
// if it breaks off its visitors see a broken connection, as on a miss.
//
// When the origin fails (connect
// error, timeout, 5xx, 403/404/408/429) a stale copy is served (STALE) for up
// to MaxStale unless the response forbids it. Unreachable origins are
// remembered for NegativeTTL, so a crowd asking for a dead site causes one
// connection attempt per NegativeTTL, not one per visitor. A 410 evicts.
//
// Origins resolving to loopback, private, link-local, multicast, CGNAT or
// unspecified addresses, to the machine's own addresses or on-link
// networks, or to the addresses the node is reached at are refused at dial
// time (so DNS rebinding cannot get around it) unless AllowPrivateOrigins,
// and checked once before the DSHT hears of the fetch; only OriginPorts are
// dialled. Each site gets at most MaxFetchesPerSite of the origin slots, and
// a transfer has a total deadline that grows with its size. What of a
// visitor's request reaches the origin, and which responses are personal,
// is in forward.go and httpcache.Storable; the node's Via token detects
// loops.
//
// Hits on fresh objects are answered from a hot cache in memory (hot.go);
// FastListener answers plain HTTP/1.1 hits on small ones on the connection,
// before net/http, and hands it everything else (fastpath.go says what that
// costs and what it must keep).
//
// Cooperative caching (other Coral proxies, found through the DSHT) plugs in
// through the Peers interface; nil means a single node.
//
// A request with "X-Coral-Debug: 1" gets an X-Coral-Trace header saying
// what the node did: DSHT levels searched, referrals tried, where the body
// came from (see Trace); RecentTraces keeps the last ones for the status page.
package proxy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/httpcache"
	"github.com/coralcdn/coral/core/object"
)

// Store is what the proxy needs from the object store; *store.Store
// satisfies it (guarded in the tests, so the proxy does not link Badger).
type Store interface {
	Stat(key string) (object.Meta, error)
	Get(key string) (object.Meta, object.Body, error)
	Create(key string, maxBytes int64) object.Writer
	UpdateMeta(key string, fn func(*object.Meta) error) error
	Delete(key string) error
}

// WaitingPeers is a Peers that knows which peers its fetches are waiting
// on for a response header: a download under way that waits on the peer
// asking for it must not make that peer wait in turn (a cycle that only
// timeouts would end).
type WaitingPeers interface {
	// AwaitsHeader reports whether a fetch of key waits on peer's header.
	AwaitsHeader(key, peer string) bool
}

// ResumePeers is a Peers that can also find a copy to continue a peer
// transfer that broke off (core/coop can), before the origin is asked.
type ResumePeers interface {
	Peers
	// FetchForResume returns another node's copy of the object: a
	// complete one (it may wait a while for one), or the download of the
	// one node elected among those whose transfers broke off together.
	// ErrNotFound means this node is to go to the origin.
	FetchForResume(ctx context.Context, key object.Key, canonicalURL string, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error)
}

// Peers is the seam for cooperative proxies (core/coop): the DSHT and the p2p
// object transfer live behind it. All methods must be safe for concurrent
// use and must not block for long except Fetch.
type Peers interface {
	// Fetch asks other proxies for the object of canonicalURL, whose key
	// is key (object.KeyOf, computed once per request), on a local miss, before the origin is contacted. It returns
	// the response's meta (Status, Header; Size and SHA256 when known, Size
	// -1 otherwise) and a body stream, or an error wrapping
	// object.ErrNotFound when no peer delivers. The peer is an upstream
	// cache: Header carries the copy's current Age (OpenForPeer sets it).
	// RequestTime and ResponseTime, when they are this node's clock readings
	// around the request to the peer that delivered, are used for the age
	// calculation; otherwise the proxy uses its own around the Fetch call.
	// The proxy checks freshness, length and hash before storing the
	// result, and continues from the origin if the body breaks off. ctx
	// carries the fetch's Trace (TraceFrom) for recording the path.
	// usable (nil: any) judges a delivered copy by its meta, with
	// RequestTime and ResponseTime set: a copy it refuses (too old for
	// this request, say) is closed and the next referral tried, so one
	// stale copy does not send the request to the origin while another
	// peer holds a fresh one.
	// A body that hashes itself as it streams in (a HashingBody) spares
	// the proxy hashing it again.
	Fetch(ctx context.Context, key object.Key, canonicalURL string, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error)
	// Downloading is called when an origin download for key starts (so the
	// node can announce "I am downloading"); done is called when it ends,
	// whatever the outcome.
	Downloading(key object.Key, canonicalURL string) (done func())
	// Cached is called once an object of the URL with key is completely
	// stored.
	Cached(key object.Key, meta object.Meta)
	// Removed is called when the proxy deletes an object (410, invalidation
	// by an unsafe method) and from Proxy.Evicted.
	Removed(key string)
}

// Options configures a Proxy. Zero values get the defaults noted (see
// setDefaults); a feature that can be turned off is turned off with Off,
// never with zero (the convention is in the README, "Defaults in Go code").
type Options struct {
	// Zone is the Coralized suffix, e.g. "localhost" or "nyud.net". Required.
	Zone string
	// NodeToken names this node in Via headers and detects loops; default
	// "coral-" and 8 random hex digits.
	NodeToken string

	// MaxObjectBytes is the largest body stored; larger ones are streamed
	// to the visitor but not stored. Default 50 MiB.
	MaxObjectBytes int64
	// HeuristicTTL caps heuristic freshness (httpcache.Policy). Default
	// 12h (CoralCDN's default expiry); Off turns heuristic freshness off.
	HeuristicTTL time.Duration
	// MaxStale is how long past expiry a stale copy may be served when the
	// origin fails. Default 24h; Off disables serving stale on error
	// (stale-if-error from the origin is still honoured).
	MaxStale time.Duration
	// NegativeTTL is how long an unreachable origin is remembered. Default
	// 60s; Off disables the negative cache.
	NegativeTTL time.Duration
	// PeerCopyMaxAge bounds how long a copy from a peer is fresh, whatever
	// its header says: only that peer vouches for the header, and one
	// member could otherwise plant a page for as long as it likes (max-age
	// of a year) at every node that misses. Past it the origin is asked
	// for the whole object, without the copy's validators (a forged copy
	// may carry the origin's real ETag). Default 24h; Off: no bound.
	PeerCopyMaxAge time.Duration

	AllowPrivateOrigins bool // fetch from addresses ipclass does not class as Global (tests, LANs)
	PassUnsafeMethods   bool // pass POST, PUT, ... to the origin uncached instead of 405
	StripCookies        bool // drop Cookie and Set-Cookie both ways; Set-Cookie responses then get cached

	// OriginTimeout bounds connecting to an origin, waiting for its
	// response header, and any stall while reading its body. Default 30s.
	OriginTimeout time.Duration
	// MaxOriginFetches caps concurrent origin fetches. Default 64.
	MaxOriginFetches int
	// MaxFetchesPerSite caps the origin fetches of one site (registrable
	// domain or IP address) at a time. Default a quarter of
	// MaxOriginFetches, at least 1; at most MaxOriginFetches.
	MaxFetchesPerSite int
	// MinOriginRate (bytes per second) sets a transfer's total deadline:
	// OriginTimeout plus its size at this rate. Default 1 KiB/s.
	MinOriginRate int64
	// OriginPorts are the ports origins may be fetched on, as
	// coralurl.ParsePorts reads them. Default coralurl.DefaultOriginPorts.
	OriginPorts []string
	// SelfAddrs, when set, lists addresses the node is reached at that
	// are not on its interfaces (an advertised router address); origins
	// there are refused unless AllowPrivateOrigins. Called with each
	// reading of the interface addresses (every few seconds at most).
	SelfAddrs func() []netip.Addr
	// OriginConn wraps each new connection to an origin host (the
	// volunteer's download cap and byte counting); nil: none.
	OriginConn func(host string, c net.Conn) net.Conn
	// Resolver resolves origin host names, both when an origin is screened
	// and when it is dialled; nil: the system's (net.DefaultResolver).
	// Tests point it at their own DNS server.
	Resolver *net.Resolver

	// Sites maps a custom domain (a site group's public name, "www.site.org",
	// lower case, no port) to the origin it is fetched from; the proxy asks
	// it for the Host and for the Host's Coralized form (the name the
	// domain's CNAME points at). nil: no custom domains.
	Sites func(host string) (coralurl.Origin, bool)
	// SiteDisputed says why a name Sites does not map (as Sites takes it)
	// is served by no origin at all: several site groups claim it. Its
	// visitors, by the public name or its Coralized form, get that reason
	// (409) — never a fetch of a claimant's origin or of the public name,
	// which leads back to Coral. nil: no name is disputed.
	SiteDisputed func(host string) (why string, disputed bool)

	// MemoryBytes bounds the hot cache: fresh objects' response headers
	// ready to write, and bodies of up to 64 KiB (see hot.go). Default
	// 32 MiB; Off turns it off. It needs a store that implements
	// HotStore.
	MemoryBytes int64

	// SpoolDir holds temporary files for in-flight bodies larger than
	// 256 KiB (unlinked at once). Default os.TempDir().
	SpoolDir string
	// Peers enables cooperative caching; nil means a single node.
	Peers Peers
	// Now is the clock for freshness, ages and the negative cache.
	// Default time.Now.
	Now func() time.Time
	// Logger; default slog.Default(). A component=proxy attribute is added.
	Logger *slog.Logger
}

// Off, in an Options field whose zero means "the default", turns that
// feature off (any negative value does the same).
const Off = -1

const (
	defaultMaxObjectBytes = 50 << 20
	defaultHeuristicTTL   = 12 * time.Hour
	defaultPeerCopyMaxAge = 24 * time.Hour
	defaultMaxStale       = 24 * time.Hour
	defaultNegativeTTL    = 60 * time.Second
	defaultOriginTimeout  = 30 * time.Second
	defaultMaxFetches     = 64
	defaultMinOriginRate  = 1 << 10
	spoolMemLimit         = 256 << 10
	pipeWindow            = 1 << 20
	copyBufSize           = 32 << 10
	// refetchHoldBack bounds the new body of a stale object held back
	// until complete (see the package doc).
	refetchHoldBack = 8 << 20
	// oversizeMemory is how long an object found larger than
	// MaxObjectBytes has its ranges passed to the origin.
	oversizeMemory = time.Hour
)

// Cache status values for the X-Coral-Cache response header.
const (
	CacheHit         = "HIT"
	CacheMiss        = "MISS"
	CacheStale       = "STALE"
	CachePeer        = "PEER"
	CacheRevalidated = "REVALIDATED"
)

// Proxy is the caching HTTP handler. Create it with New; stop background
// fetches with Close before closing the store.
type Proxy struct {
	opts   Options
	zone   string
	token  string
	st     Store
	peers  Peers
	log    *slog.Logger
	now    func() time.Time
	policy httpcache.Policy

	guard     *originGuard
	transport *http.Transport
	sem       *semaphore.Weighted
	sites     *siteLimiter
	neg       *negativeCache
	// brokenRefetch remembers objects whose new version broke off while
	// a stale copy was kept (keyed by object key, not origin).
	brokenRefetch *negativeCache
	// oversize remembers objects found larger than MaxObjectBytes, whose
	// ranges go to the origin (keyed by primary key).
	oversize *negativeCache

	mu       sync.Mutex
	inflight map[string]*fetch

	ctx     context.Context
	cancel  context.CancelFunc
	closeMu sync.Mutex
	closed  bool
	wg      sync.WaitGroup

	stats  counters
	traces traceRing

	hot *hotCache // nil when off
	hs  HotStore
}

var _ http.Handler = (*Proxy)(nil)

// New builds a proxy serving from st.
func New(opts Options, st Store) (*Proxy, error) {
	if st == nil {
		return nil, errors.New("proxy: nil store")
	}
	zone, err := coralurl.NormalizeZone(opts.Zone)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	ports, err := coralurl.ParsePorts(opts.OriginPorts)
	if err != nil {
		return nil, fmt.Errorf("proxy: origin ports: %w", err)
	}
	guard := newOriginGuard(ports, opts.AllowPrivateOrigins, opts.SelfAddrs)
	if opts.Resolver != nil {
		guard.resolver = opts.Resolver
	}
	guard.fakeIP = func(a netip.Addr) { warnFakeIP(opts.Logger, a) }
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		opts:          opts,
		zone:          zone,
		token:         opts.NodeToken,
		st:            st,
		peers:         opts.Peers,
		log:           opts.Logger.With("component", "proxy"),
		now:           opts.Now,
		policy:        httpcache.Policy{HeuristicTTL: opts.HeuristicTTL, MaxStale: opts.MaxStale},
		guard:         guard,
		transport:     newOriginTransport(opts.OriginTimeout, guard, opts.OriginConn),
		sem:           semaphore.NewWeighted(int64(opts.MaxOriginFetches)),
		sites:         newSiteLimiter(opts.MaxFetchesPerSite),
		neg:           newNegativeCache(),
		brokenRefetch: newNegativeCache(),
		oversize:      newNegativeCache(),
		inflight:      map[string]*fetch{},
		ctx:           ctx,
		cancel:        cancel,
	}
	if hs, ok := st.(HotStore); ok && opts.MemoryBytes > 0 {
		p.hot, p.hs = newHotCache(opts.MemoryBytes), hs
	}
	return p, nil
}

// setDefaults fills every zero field with its default. Off stays negative
// for NegativeTTL and MemoryBytes (their users test "> 0") and becomes 0
// for the freshness limits, which httpcache.Policy reads as off.
func (o *Options) setDefaults() error {
	if o.NodeToken == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("proxy: node token: %w", err)
		}
		o.NodeToken = "coral-" + hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(o.NodeToken, " ,;()\t\r\n\"") {
		return fmt.Errorf("proxy: node token %q must be a single token", o.NodeToken)
	}
	o.MaxObjectBytes = orDefault(o.MaxObjectBytes, defaultMaxObjectBytes)
	o.HeuristicTTL = max(0, orOff(o.HeuristicTTL, defaultHeuristicTTL))
	o.MaxStale = max(0, orOff(o.MaxStale, defaultMaxStale))
	o.PeerCopyMaxAge = max(0, orOff(o.PeerCopyMaxAge, defaultPeerCopyMaxAge))
	o.NegativeTTL = orOff(o.NegativeTTL, defaultNegativeTTL)
	o.MemoryBytes = orOff(o.MemoryBytes, defaultHotBytes)
	o.OriginTimeout = orDefault(o.OriginTimeout, defaultOriginTimeout)
	o.MaxOriginFetches = orDefault(o.MaxOriginFetches, defaultMaxFetches)
	if o.MaxFetchesPerSite <= 0 {
		o.MaxFetchesPerSite = max(1, o.MaxOriginFetches/4)
	}
	o.MaxFetchesPerSite = min(o.MaxFetchesPerSite, o.MaxOriginFetches)
	o.MinOriginRate = orDefault(o.MinOriginRate, defaultMinOriginRate)
	if o.OriginPorts == nil {
		o.OriginPorts = slices.Clone(coralurl.DefaultOriginPorts)
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// orDefault gives a field that cannot be off its default when it is zero
// (or negative, which means nothing for it).
func orDefault[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// orOff gives a field that can be off its default when it is zero, and
// keeps Off (any negative value).
func orOff[T int | int64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Token is the node's Via token.
func (p *Proxy) Token() string { return p.token }

// Zone is the canonical zone the proxy serves.
func (p *Proxy) Zone() string { return p.zone }

// Close stops every fetch in progress (their visitors see broken
// connections) and waits for them; call it before closing the store.
func (p *Proxy) Close() error {
	p.closeMu.Lock()
	p.closed = true
	p.closeMu.Unlock()
	p.cancel()
	p.wg.Wait()
	p.transport.CloseIdleConnections()
	return nil
}

// Evicted tells the proxy (and its peers) that the store evicted key; wire it
// to store.Options.OnEvict.
func (p *Proxy) Evicted(key string) {
	p.stats.evictions.Add(1)
	if p.peers != nil {
		p.peers.Removed(key)
	}
}

// CanonicalURL is the URL an object is known by across the network: the
// canonical origin (lower case, default port omitted) followed by the
// request's path and query exactly as sent (escapes preserved).
func CanonicalURL(o coralurl.Origin, requestURI string) string {
	if requestURI == "" || requestURI[0] != '/' {
		requestURI = "/" + requestURI
	}
	return o.String() + requestURI
}

// variantKey names one variant of a response that has Vary.
func variantKey(canonicalURL, varyValues string) string {
	sum := sha256.Sum256([]byte(canonicalURL + "\x00vary\x00" + varyValues))
	return hex.EncodeToString(sum[:])
}

// Stats are cumulative counters since start, for the status page.
type Stats struct {
	Requests      uint64 // every request handled
	Hits          uint64 // served fresh from the store
	Misses        uint64 // fetched (origin or coalesced onto a fetch)
	Stale         uint64 // stale copy served (origin failing, stale-while-revalidate)
	Revalidated   uint64 // stale copy confirmed by a 304
	PeerHits      uint64 // fetched from another proxy
	PeerResumes   uint64 // peer transfers that broke off and were continued from the origin
	Coalesced     uint64 // visitors that joined a fetch already in progress
	OriginFetches uint64 // requests sent to origins
	OriginErrors  uint64 // origin unreachable, timed out, or broke off a body
	NegativeHits  uint64 // visitors answered from the negative cache
	Errors        uint64 // error responses generated by the proxy (4xx/5xx pages)
	Refused       uint64 // not Coralized, methods refused, loops
	PassedThrough uint64 // unsafe methods passed to the origin
	Evictions     uint64 // store evictions reported through Evicted
	BytesServed   uint64 // body bytes written to visitors
	InFlight      int64  // origin fetches in progress now
	Queued        int64  // origin fetches waiting for a slot (MaxOriginFetches)
}

type counters struct {
	requests, hits, misses, stale, revalidated, peerHits, coalesced atomic.Uint64
	peerResumes                                                     atomic.Uint64
	originFetches, originErrors, negativeHits, errors, refused      atomic.Uint64
	passed, evictions, bytes                                        atomic.Uint64
	inflight, queued                                                atomic.Int64
}

// Stats returns a snapshot of the counters.
func (p *Proxy) Stats() Stats {
	c := &p.stats
	return Stats{
		Requests: c.requests.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(),
		Stale: c.stale.Load(), Revalidated: c.revalidated.Load(), PeerHits: c.peerHits.Load(),
		Coalesced: c.coalesced.Load(), OriginFetches: c.originFetches.Load(),
		OriginErrors: c.originErrors.Load(), NegativeHits: c.negativeHits.Load(),
		Errors: c.errors.Load(), Refused: c.refused.Load(), PassedThrough: c.passed.Load(),
		Evictions: c.evictions.Load(), BytesServed: c.bytes.Load(), InFlight: c.inflight.Load(),
		Queued: c.queued.Load(), PeerResumes: c.peerResumes.Load(),
	}
}

// admitter is implemented by a Store that refuses new objects when its disk
// is nearly full (*store.Store: object.ErrDiskFull).
type admitter interface{ Admit() error }

// admit returns an error when a new object would not be stored now; such a
// body is then passed through, not spooled to disk either.
func (p *Proxy) admit() error {
	if a, ok := p.st.(admitter); ok {
		return a.Admit()
	}
	return nil
}

// ServeHTTP handles one visitor request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.stats.requests.Add(1)
	if p.isLoop(r.Header) {
		p.stats.refused.Add(1)
		p.errorPage(w, r, http.StatusLoopDetected, "Request loop detected",
			"This request has already passed through this Coral node ("+p.token+"); it would loop forever.")
		return
	}
	if p.hot != nil && plainRequest(r) && p.serveHot(w, r) {
		return
	}
	prepareRequest(r)
	o, err := p.originOf(r.Host)
	switch {
	case errors.Is(err, coralurl.ErrBareZone):
		p.serveFront(w, r)
		return
	case errors.Is(err, errSiteDisputed):
		p.stats.refused.Add(1)
		p.errorPage(w, r, http.StatusConflict, "This site is not served here",
			strings.TrimPrefix(err.Error(), errSiteDisputed.Error()+": "))
		return
	case errors.Is(err, coralurl.ErrNotInZone):
		p.stats.refused.Add(1)
		p.errorPage(w, r, http.StatusBadRequest, "Coral is not an open proxy",
			fmt.Sprintf("This server only serves Coralized names: origin host names followed by .%s, "+
				"for example http://example.com.%s/. %q is not one.", p.zone, p.zone, r.Host))
		return
	case err != nil:
		p.stats.refused.Add(1)
		p.errorPage(w, r, http.StatusBadRequest, "Not a valid Coralized name", err.Error())
		return
	}
	canon := CanonicalURL(o, r.URL.RequestURI())
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.serveCached(w, r, o, canon)
	default:
		if !p.opts.PassUnsafeMethods {
			p.stats.refused.Add(1)
			w.Header().Set("Allow", "GET, HEAD")
			p.errorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed",
				"Coral only serves GET and HEAD requests.")
			return
		}
		p.passThrough(w, r, o, canon, true)
	}
}

// errSiteDisputed: the Host is a custom domain several site groups claim
// (Options.SiteDisputed); the error's text says so to the visitor.
var errSiteDisputed = errors.New("proxy: site name disputed")

// originOf maps a Host header to its origin: a custom domain (Options.
// Sites) to the origin its group's manifest names — never to the public name,
// which leads back to Coral — else the Coralized name to its origin. A
// disputed custom domain maps to none (errSiteDisputed).
func (p *Proxy) originOf(hostHeader string) (coralurl.Origin, error) {
	if p.opts.Sites != nil {
		host, _ := coralurl.StripPort(hostHeader)
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		names := []string{host}
		if site, ok := strings.CutSuffix(host, "."+p.zone); ok {
			names = append(names, site)
		}
		for _, name := range names {
			if o, ok := p.opts.Sites(name); ok {
				return o, nil
			}
			if p.opts.SiteDisputed == nil {
				continue
			}
			if why, disputed := p.opts.SiteDisputed(name); disputed {
				return coralurl.Origin{}, fmt.Errorf("%w: %s", errSiteDisputed, why)
			}
		}
	}
	return coralurl.Parse(hostHeader, p.zone)
}

// isLoop reports whether the request already went through this node.
func (p *Proxy) isLoop(h http.Header) bool {
	for _, line := range h.Values("Via") {
		for _, hop := range strings.Split(line, ",") {
			f := strings.Fields(hop)
			if len(f) >= 2 && strings.EqualFold(f[1], p.token) {
				return true
			}
		}
	}
	return false
}

// via is this node's Via entry.
func (p *Proxy) via() string { return "1.1 " + p.token }
