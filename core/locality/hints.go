package locality

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// Getter looks values up in the DSHT; *dsht.Node implements it.
type Getter interface {
	Get(ctx context.Context, key dsht.ID, opts ...dsht.Option) ([]dsht.Value, error)
}

// HintsConfig configures Hints. Zero values take the defaults.
type HintsConfig struct {
	// Self and Local add this node's own measurement (Meter.RTT) without a
	// DSHT round trip. Both optional.
	Self  string
	Local func(netip.Prefix) (time.Duration, bool)

	Fresh        time.Duration // a lookup is reused this long; default 60s
	Stale        time.Duration // after Fresh, served while a new lookup runs; default 10m
	FetchTimeout time.Duration // bound on one DSHT lookup; default 5s
	MaxNetworks  int           // networks cached; default 4096
	Rate         float64       // DSHT lookups started per second; default 20
	Burst        int           // default 2*Rate
	MaxInFlight  int           // lookups at once; default 16
	MaxProxies   int           // hints kept per network, nearest first; default 64

	Clock  func() time.Time
	Logger *slog.Logger
}

// Hints answers the nameserver's question "how far is each proxy from this
// network" from hints in the DSHT. It implements dnsserver.Hints.
type Hints struct {
	cfg HintsConfig
	dht Getter
	log *slog.Logger
	lim *rate.Limiter

	ctx    context.Context // cancelled by Close; parent of background lookups
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	cache    *simplelru.LRU[netip.Prefix, hintSet]
	inflight map[netip.Prefix]chan struct{}
	closed   bool
}

type hintSet struct {
	rtts map[string]time.Duration // shared with callers: never modified
	at   time.Time
}

var _ dnsserver.Hints = (*Hints)(nil)

// setDefaults fills zero (or negative) fields with their defaults.
func (cfg *HintsConfig) setDefaults() {
	setDur(&cfg.Fresh, 60*time.Second)
	setDur(&cfg.Stale, 10*time.Minute)
	setDur(&cfg.FetchTimeout, 5*time.Second)
	setInt(&cfg.MaxNetworks, 4096)
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	setInt(&cfg.Burst, int(2*cfg.Rate+0.5))
	setInt(&cfg.MaxInFlight, 16)
	setInt(&cfg.MaxProxies, 64)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// NewHints returns a lookup service over dht. Close stops its background
// lookups.
func NewHints(cfg HintsConfig, dht Getter) (*Hints, error) {
	if dht == nil {
		return nil, errors.New("locality: hints: nil DSHT")
	}
	cfg.setDefaults()
	h := &Hints{
		cfg:      cfg,
		dht:      dht,
		log:      cfg.Logger.With("component", "locality"),
		lim:      rate.NewLimiter(rate.Limit(cfg.Rate), cfg.Burst),
		cache:    newLRU[netip.Prefix, hintSet](cfg.MaxNetworks),
		inflight: map[netip.Prefix]chan struct{}{},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// Close cancels background lookups and waits for them.
func (h *Hints) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
	return nil
}

// RTTs implements dnsserver.Hints: proxy ID -> RTT for the hint network of
// network. It returns by ctx's deadline with what it has (a cached, possibly
// stale, answer or none); a lookup still running then completes in the
// background for the next query. The map must not be modified.
func (h *Hints) RTTs(ctx context.Context, network netip.Prefix) map[string]time.Duration {
	n, ok := hintNetwork(network)
	if !ok {
		return nil
	}
	now := h.cfg.Clock()
	h.mu.Lock()
	e, have := h.cache.Get(n)
	if have && now.Sub(e.at) < h.cfg.Fresh {
		h.mu.Unlock()
		return h.withLocal(n, e.rtts)
	}
	done, running := h.inflight[n]
	if !running {
		done = h.startLocked(n)
	}
	h.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	h.mu.Lock()
	e, have = h.cache.Peek(n)
	h.mu.Unlock()
	if have && now.Sub(e.at) < h.cfg.Fresh+h.cfg.Stale {
		return h.withLocal(n, e.rtts)
	}
	return h.withLocal(n, nil)
}

// startLocked starts a background lookup for n, unless closed, too many run
// or the rate limit says no (then the caller makes do with the cache).
func (h *Hints) startLocked(n netip.Prefix) chan struct{} {
	if h.closed || len(h.inflight) >= h.cfg.MaxInFlight || !h.lim.Allow() {
		return nil
	}
	done := make(chan struct{})
	h.inflight[n] = done
	h.wg.Add(1)
	go h.fetch(n, done)
	return done
}

func (h *Hints) fetch(n netip.Prefix, done chan struct{}) {
	defer h.wg.Done()
	defer close(done)
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.FetchTimeout)
	vals, err := h.dht.Get(ctx, HintKey(n))
	cancel()
	rtts, bad := h.decode(vals)
	if bad > 0 {
		h.log.Debug("ignored malformed RTT hints", "network", n, "count", bad)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.inflight, n)
	now := h.cfg.Clock()
	if err != nil {
		h.log.Debug("RTT hint lookup failed", "network", n, "err", err)
		if old, ok := h.cache.Peek(n); ok {
			// Keep what we had rather than retrying on every query.
			h.cache.Add(n, hintSet{rtts: old.rtts, at: now})
			return
		}
	}
	h.cache.Add(n, hintSet{rtts: rtts, at: now})
}

// decode keeps, per proxy, the hint with the longest remaining lifetime
// (its latest renewal), and at most MaxProxies proxies, nearest first.
func (h *Hints) decode(vals []dsht.Value) (map[string]time.Duration, int) {
	type best struct {
		rtt time.Duration
		exp time.Time
	}
	m := map[string]best{}
	bad := 0
	for _, v := range vals {
		hint, err := ParseHint(v.Data)
		if err != nil {
			bad++
			continue
		}
		if b, ok := m[hint.Proxy]; !ok || v.Expires.After(b.exp) {
			m[hint.Proxy] = best{rtt: hint.RTT, exp: v.Expires}
		}
	}
	if len(m) == 0 {
		return nil, bad
	}
	ids := slices.Collect(maps.Keys(m))
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[a].rtt, m[b].rtt), cmp.Compare(a, b))
	})
	out := make(map[string]time.Duration, min(len(ids), h.cfg.MaxProxies))
	for _, id := range ids[:min(len(ids), h.cfg.MaxProxies)] {
		out[id] = m[id].rtt
	}
	return out, bad
}

// withLocal adds this node's own measurement for n, which is fresher than
// what it published.
func (h *Hints) withLocal(n netip.Prefix, rtts map[string]time.Duration) map[string]time.Duration {
	if h.cfg.Local == nil || h.cfg.Self == "" {
		return rtts
	}
	rtt, ok := h.cfg.Local(n)
	if !ok {
		return rtts
	}
	out := make(map[string]time.Duration, len(rtts)+1)
	maps.Copy(out, rtts)
	out[h.cfg.Self] = rtt
	return out
}
