// Package coop makes proxies cooperate: on a local miss it looks the URL up
// in the DSHT and fetches the object from other proxies that hold it or are
// still downloading it; before going to the origin it announces "I am
// downloading" so that the rest of a flash crowd comes to this proxy instead
// of the origin; once an object is cached it announces the copy at every
// level and keeps the announcement alive while the copy stays.
//
// It implements proxy.Peers on top of two small interfaces, the DSHT and a
// Fetcher for peer object transfer, so it runs unchanged on libp2p and in
// tests.
package coop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
	"github.com/fxamacker/cbor/v2"
)

// DSHT is the part of *dsht.Node cooperation needs.
type DSHT interface {
	Get(ctx context.Context, key dsht.ID, opts ...dsht.Option) ([]dsht.Value, error)
	Put(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) error
	PutGet(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) ([]dsht.Value, error)
}

var _ DSHT = (*dsht.Node)(nil)

// Fetcher transfers an object from another proxy, streaming as it arrives.
// The body must return io.EOF only after the length and hash were checked.
type Fetcher interface {
	FetchObject(ctx context.Context, peer string, key string) (store.Meta, io.ReadCloser, error)
}

// Config tunes cooperation. Zero values take the defaults noted.
type Config struct {
	// Self is this proxy's peer ID, as it appears in referrals.
	Self string
	// PutGet makes the lookup before an origin fetch a single put+get
	// (test-and-set): two proxies missing at once cannot both miss each
	// other's "downloading" value. Off: a get, then a put.
	PutGet bool
	// DownloadingTTL is the life of an "I am downloading" value; it is
	// renewed at half-life while the download runs (20s).
	DownloadingTTL time.Duration
	// CachedTTL is the life of an "I hold a copy" value; renewed at
	// half-life while the copy is cached (1h).
	CachedTTL time.Duration
	// Parallel is how many referrals are fetched from at once (3).
	Parallel int
	// LookupTimeout bounds the DSHT lookup on the miss path (3s).
	LookupTimeout time.Duration
	// FetchTimeout bounds waiting for a peer's response header (5s).
	FetchTimeout time.Duration
	// MaxAnnouncements bounds concurrent background puts (16).
	MaxAnnouncements int
	Logger           *slog.Logger
	Now              func() time.Time
}

func (c *Config) defaults() {
	if c.DownloadingTTL <= 0 {
		c.DownloadingTTL = 20 * time.Second
	}
	if c.CachedTTL <= 0 {
		c.CachedTTL = time.Hour
	}
	if c.Parallel <= 0 {
		c.Parallel = 3
	}
	if c.LookupTimeout <= 0 {
		c.LookupTimeout = 3 * time.Second
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 5 * time.Second
	}
	if c.MaxAnnouncements <= 0 {
		c.MaxAnnouncements = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Referral states.
const (
	StateDownloading = 1
	StateCached      = 2
)

// Referral is the DSHT value a proxy stores under a URL's key.
type Referral struct {
	Version int    `cbor:"1,keyasint"`
	Peer    string `cbor:"2,keyasint"`
	State   int    `cbor:"3,keyasint"`
}

const referralVersion = 1

// EncodeReferral is the wire form of a referral.
func EncodeReferral(r Referral) []byte {
	r.Version = referralVersion
	b, _ := cbor.Marshal(r) // a struct of plain fields always encodes
	return b
}

// DecodeReferral parses a DSHT value; values from other versions or
// garbage are rejected, never trusted.
func DecodeReferral(b []byte) (Referral, error) {
	var r Referral
	if err := cbor.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("coop: bad referral: %w", err)
	}
	if r.Version != referralVersion || r.Peer == "" || len(r.Peer) > 128 || (r.State != StateDownloading && r.State != StateCached) {
		return r, errors.New("coop: bad referral")
	}
	return r, nil
}

// Coop is the cooperative side of a proxy.
type Coop struct {
	cfg   Config
	dht   DSHT
	fetch Fetcher
	log   *slog.Logger
	slots chan struct{}

	mu        sync.Mutex
	cached    map[string]string    // cache key -> canonical URL, for renewal
	announced map[string]time.Time // cache key -> when put+get last announced a download

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats Stats
}

var _ proxy.Peers = (*Coop)(nil)

// Stats counts cooperation since start.
type Stats struct {
	Lookups, LookupHits, PeerFetches, PeerFailures, Announcements uint64
	// FromLevel counts objects fetched from peers by the DSHT level whose
	// cluster held the referral (index = level).
	FromLevel [3]uint64
}

// New starts cooperation; Close stops its background announcements.
func New(cfg Config, d DSHT, f Fetcher) *Coop {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coop{
		cfg: cfg, dht: d, fetch: f, log: cfg.Logger.With("component", "coop"),
		slots: make(chan struct{}, cfg.MaxAnnouncements), cached: map[string]string{},
		announced: map[string]time.Time{}, ctx: ctx, cancel: cancel,
	}
	c.wg.Add(1)
	go c.renewLoop()
	return c
}

// Close stops background work.
func (c *Coop) Close() error {
	c.cancel()
	c.wg.Wait()
	return nil
}

// Stats returns a snapshot.
func (c *Coop) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

type candidate struct {
	Referral
	level int
}

// Fetch implements proxy.Peers: find referrals for the URL, fetch from up to
// Parallel of them at once, return the first that delivers a response.
func (c *Coop) Fetch(ctx context.Context, key, canonicalURL string) (store.Meta, io.ReadCloser, error) {
	id := dsht.KeyID(canonicalURL)
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LookupTimeout)
	vals, err := c.dht.Get(lctx, id)
	cands := c.candidates(vals)
	if len(cands) == 0 && c.cfg.PutGet {
		// Test-and-set: announce our download and learn, in the same
		// operation, of anyone who announced first.
		vals, err = c.dht.PutGet(lctx, id, EncodeReferral(Referral{Peer: c.cfg.Self, State: StateDownloading}), c.cfg.DownloadingTTL)
		if err == nil {
			c.mu.Lock()
			c.announced[key] = c.cfg.Now()
			c.mu.Unlock()
		}
		cands = c.candidates(vals)
	}
	cancel()
	c.count(func(s *Stats) {
		s.Lookups++
		if len(cands) > 0 {
			s.LookupHits++
		}
	})
	if len(cands) == 0 {
		if err != nil {
			c.log.Debug("lookup failed", "url", canonicalURL, "err", err)
		}
		return store.Meta{}, nil, fmt.Errorf("coop: no referral for %s: %w", canonicalURL, store.ErrNotFound)
	}
	return c.race(ctx, key, cands)
}

// candidates decodes values into referrals to other proxies, best first:
// complete copies before downloads, the most local level first.
func (c *Coop) candidates(vals []dsht.Value) []candidate {
	seen := map[string]bool{c.cfg.Self: true}
	var out []candidate
	for _, v := range vals {
		r, err := DecodeReferral(v.Data)
		if err != nil || seen[r.Peer] {
			continue
		}
		seen[r.Peer] = true
		out = append(out, candidate{Referral: r, level: v.Level})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].State != out[j].State {
			return out[i].State == StateCached
		}
		return out[i].level > out[j].level
	})
	return out
}

type result struct {
	meta   store.Meta
	body   io.ReadCloser
	err    error
	cand   candidate
	cancel context.CancelFunc
}

// race fetches from the candidates, Parallel at a time, and returns the
// first response; the others are cancelled. When an attempt fails the next
// candidate starts, so a dead referral costs one slot, not the request.
func (c *Coop) race(ctx context.Context, key string, cands []candidate) (store.Meta, io.ReadCloser, error) {
	results := make(chan result, len(cands))
	start := func(cd candidate) {
		actx, cancel := context.WithCancel(ctx)
		go func() {
			hctx, hcancel := context.WithTimeout(actx, c.cfg.FetchTimeout)
			defer hcancel()
			type hdr struct {
				meta store.Meta
				body io.ReadCloser
				err  error
			}
			ch := make(chan hdr, 1)
			go func() {
				m, b, err := c.fetch.FetchObject(actx, cd.Peer, key)
				ch <- hdr{m, b, err}
			}()
			select {
			case h := <-ch:
				results <- result{meta: h.meta, body: h.body, err: h.err, cand: cd, cancel: cancel}
			case <-hctx.Done():
				cancel()
				h := <-ch
				if h.body != nil {
					h.body.Close()
				}
				results <- result{err: fmt.Errorf("coop: peer %s: no response: %w", cd.Peer, hctx.Err()), cand: cd, cancel: cancel}
			}
		}()
	}
	next, running := 0, 0
	for ; next < len(cands) && running < c.cfg.Parallel; next++ {
		start(cands[next])
		running++
	}
	var errs []error
	for running > 0 {
		r := <-results
		running--
		if r.err == nil {
			c.count(func(s *Stats) {
				s.PeerFetches++
				if r.cand.level >= 0 && r.cand.level < len(s.FromLevel) {
					s.FromLevel[r.cand.level]++
				}
			})
			// Losers still running are cancelled and drained in the background.
			go func(n int) {
				for ; n > 0; n-- {
					l := <-results
					if l.body != nil {
						l.body.Close()
					}
					l.cancel()
				}
			}(running)
			return r.meta, &cancelOnClose{ReadCloser: r.body, cancel: r.cancel}, nil
		}
		r.cancel()
		c.count(func(s *Stats) { s.PeerFailures++ })
		errs = append(errs, r.err)
		if next < len(cands) {
			start(cands[next])
			next++
			running++
		}
	}
	return store.Meta{}, nil, fmt.Errorf("coop: no peer delivered: %w (%w)", store.ErrNotFound, errors.Join(errs...))
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Downloading implements proxy.Peers: announce the origin download and
// renew the announcement at half-life until done is called.
func (c *Coop) Downloading(key, canonicalURL string) (done func()) {
	id := dsht.KeyID(canonicalURL)
	value := EncodeReferral(Referral{Peer: c.cfg.Self, State: StateDownloading})
	c.mu.Lock()
	at, fresh := c.announced[key]
	delete(c.announced, key)
	c.mu.Unlock()
	if !fresh || c.cfg.Now().Sub(at) > c.cfg.DownloadingTTL/2 {
		c.announce(id, value, c.cfg.DownloadingTTL)
	}
	stop := make(chan struct{})
	var once sync.Once
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.cfg.DownloadingTTL / 2)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-c.ctx.Done():
				return
			case <-t.C:
				c.announce(id, value, c.cfg.DownloadingTTL)
			}
		}
	}()
	return func() { once.Do(func() { close(stop) }) }
}

// Cached implements proxy.Peers: announce the complete copy at every level.
func (c *Coop) Cached(meta store.Meta) {
	if meta.URL == "" {
		return
	}
	c.mu.Lock()
	c.cached[meta.Key] = meta.URL
	c.mu.Unlock()
	c.announce(dsht.KeyID(meta.URL), EncodeReferral(Referral{Peer: c.cfg.Self, State: StateCached}), c.cfg.CachedTTL)
}

// Removed implements proxy.Peers: the copy is gone, so stop renewing its
// announcement; the value expires by itself (soft state).
func (c *Coop) Removed(key string) {
	c.mu.Lock()
	delete(c.cached, key)
	c.mu.Unlock()
}

// Seed registers copies already in the store at start-up (no announcement
// yet: renewLoop announces them right away).
func (c *Coop) Seed(metas []store.Meta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range metas {
		if m.URL != "" {
			c.cached[m.Key] = m.URL
		}
	}
}

// announce puts a value in the background; when every announcement slot is
// busy it is dropped (the next renewal tries again) rather than queued
// without bound.
func (c *Coop) announce(id dsht.ID, value []byte, ttl time.Duration) {
	select {
	case c.slots <- struct{}{}:
	default:
		c.log.Debug("announcement dropped: too many in flight")
		return
	}
	c.put(id, value, ttl)
}

// announceWait is announce for renewals: it waits for a slot instead of
// dropping. It returns false when the Coop is closing.
func (c *Coop) announceWait(id dsht.ID, value []byte, ttl time.Duration) bool {
	select {
	case c.slots <- struct{}{}:
	case <-c.ctx.Done():
		return false
	}
	c.put(id, value, ttl)
	return true
}

// put runs one put holding an announcement slot.
func (c *Coop) put(id dsht.ID, value []byte, ttl time.Duration) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.slots }()
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		if err := c.dht.Put(ctx, id, value, ttl); err != nil {
			c.log.Debug("announce failed", "err", err)
			return
		}
		c.count(func(s *Stats) { s.Announcements++ })
	}()
}

// renewLoop re-announces every cached copy at half its TTL.
func (c *Coop) renewLoop() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.CachedTTL / 2)
	defer t.Stop()
	first := time.After(0)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-first:
		case <-t.C:
		}
		c.mu.Lock()
		urls := make(map[string]bool, len(c.cached))
		for _, u := range c.cached {
			urls[u] = true
		}
		c.mu.Unlock()
		value := EncodeReferral(Referral{Peer: c.cfg.Self, State: StateCached})
		for u := range urls {
			if !c.announceWait(dsht.KeyID(u), value, c.cfg.CachedTTL) {
				return
			}
		}
	}
}

func (c *Coop) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}
