package locality

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Putter stores a value in the DSHT; *dsht.Node implements it.
type Putter interface {
	Put(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) error
}

// MeterConfig configures a Meter. Zero values take the defaults.
type MeterConfig struct {
	Self        string        // this proxy's peer ID, named in its hints; required
	TTL         time.Duration // lifetime of a published hint; default 1h
	Renew       time.Duration // republish a network still visited after this; default TTL/2
	MaxNetworks int           // networks remembered (least recently visited forgotten); default 4096
	MaxPuts     int           // hints published per round; default 32
	Parallel    int           // puts at once; default 4
	PutTimeout  time.Duration // bound on one put; default 30s
	Clock       func() time.Time
	Logger      *slog.Logger
}

// Meter collects this proxy's RTTs to visitor networks and publishes them
// as hints. Per network it keeps the smallest RTT seen since the last
// publication: the minimum is the path's base RTT, free of the queueing a
// busy visitor adds.
type Meter struct {
	cfg MeterConfig
	dht Putter
	log *slog.Logger

	mu   sync.Mutex
	nets *simplelru.LRU[netip.Prefix, *netStat]
}

type netStat struct {
	winMin  time.Duration // smallest RTT since the last publication
	samples int           // samples since the last publication
	pubRTT  time.Duration // last published value
	pubAt   time.Time     // zero: never published
	busy    bool          // a put is in flight
}

// NewMeter returns a meter that publishes through dht.
func NewMeter(cfg MeterConfig, dht Putter) (*Meter, error) {
	if cfg.Self == "" || checkProxyID(cfg.Self) != nil {
		return nil, fmt.Errorf("locality: meter: bad proxy ID %q", cfg.Self)
	}
	if dht == nil {
		return nil, fmt.Errorf("locality: meter: nil DSHT")
	}
	cfg.setDefaults()
	return &Meter{cfg: cfg, dht: dht, log: cfg.Logger.With("component", "locality"),
		nets: newLRU[netip.Prefix, *netStat](cfg.MaxNetworks)}, nil
}

// setDefaults fills zero (or negative) fields with their defaults.
func (cfg *MeterConfig) setDefaults() {
	setDur(&cfg.TTL, time.Hour)
	setDur(&cfg.Renew, cfg.TTL/2)
	setDur(&cfg.PutTimeout, 30*time.Second)
	setInt(&cfg.MaxNetworks, 4096)
	setInt(&cfg.MaxPuts, 32)
	setInt(&cfg.Parallel, 4)
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

func setDur(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func setInt(n *int, v int) {
	if *n <= 0 {
		*n = v
	}
}

// Observe records one visitor connection's RTT. Visitors without a hint
// network (loopback, LAN) and nonsense RTTs are ignored.
func (m *Meter) Observe(visitor netip.Addr, rtt time.Duration) {
	if rtt <= 0 || rtt > MaxHintRTT {
		return
	}
	n, ok := NetworkOf(visitor)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.nets.Get(n)
	if !ok {
		s = &netStat{}
		m.nets.Add(n, s)
	}
	if s.samples == 0 || rtt < s.winMin {
		s.winMin = rtt
	}
	s.samples++
}

// RTT is this proxy's own measurement for the network the nameserver asks
// about: the current window's minimum, else the last value published (while
// it has not expired).
func (m *Meter) RTT(network netip.Prefix) (time.Duration, bool) {
	n, ok := hintNetwork(network)
	if !ok {
		return 0, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.nets.Peek(n)
	switch {
	case !ok:
		return 0, false
	case s.samples > 0:
		return quantize(s.winMin), true
	case !s.pubAt.IsZero() && m.cfg.Clock().Sub(s.pubAt) < m.cfg.TTL:
		return s.pubRTT, true
	}
	return 0, false
}

// Networks is the number of networks remembered.
func (m *Meter) Networks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nets.Len()
}

type pending struct {
	n       netip.Prefix
	s       *netStat
	rtt     time.Duration
	samples int
	first   bool
}

// due reports whether a network's hint should be (re)published: never
// published, moved by more than a quarter (at least 5 ms), or due for
// renewal while visitors keep coming.
func (m *Meter) due(s *netStat, now time.Time) bool {
	if s.samples == 0 || s.busy {
		return false
	}
	if s.pubAt.IsZero() || now.Sub(s.pubAt) >= m.cfg.Renew {
		return true
	}
	diff := quantize(s.winMin) - s.pubRTT
	return max(diff, -diff) > max(5*time.Millisecond, s.pubRTT/4)
}

// Publish runs one round: it puts the hints that are due, at most MaxPuts,
// networks never published first, then the most visited. It returns how
// many were stored; a failed put is retried next round.
func (m *Meter) Publish(ctx context.Context) (int, error) {
	now := m.cfg.Clock()
	var work []pending
	m.mu.Lock()
	for _, n := range m.nets.Keys() {
		if s, _ := m.nets.Peek(n); m.due(s, now) {
			work = append(work, pending{n: n, s: s, rtt: quantize(s.winMin), samples: s.samples, first: s.pubAt.IsZero()})
		}
	}
	slices.SortStableFunc(work, func(a, b pending) int {
		if a.first != b.first {
			if a.first {
				return -1
			}
			return 1
		}
		return cmp.Compare(b.samples, a.samples)
	})
	work = work[:min(len(work), m.cfg.MaxPuts)]
	for _, w := range work {
		w.s.busy = true
	}
	m.mu.Unlock()

	var wg sync.WaitGroup
	sem := make(chan struct{}, m.cfg.Parallel)
	errs := make([]error, len(work))
	for i, w := range work {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = m.put(ctx, w)
		})
	}
	wg.Wait()
	stored := 0
	var firstErr error
	for _, err := range errs {
		if err == nil {
			stored++
		} else if firstErr == nil {
			firstErr = err
		}
	}
	return stored, firstErr
}

func (m *Meter) put(ctx context.Context, w pending) error {
	val, err := Hint{Proxy: m.cfg.Self, RTT: w.rtt}.Marshal()
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, m.cfg.PutTimeout)
		err = m.dht.Put(pctx, HintKey(w.n), val, m.cfg.TTL)
		cancel()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w.s.busy = false
	if err != nil {
		return fmt.Errorf("locality: publish hint for %v: %w", w.n, err)
	}
	w.s.pubRTT, w.s.pubAt = w.rtt, m.cfg.Clock()
	// Samples that arrived during the put open the next window.
	if w.s.samples -= w.samples; w.s.samples <= 0 {
		w.s.samples, w.s.winMin = 0, 0
	}
	return nil
}

// Run publishes every interval until ctx ends.
func (m *Meter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := m.Publish(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Debug("publishing RTT hints", "stored", n, "err", err)
		} else if n > 0 {
			m.log.Debug("published RTT hints", "stored", n)
		}
	}
}
