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
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/wire"
	"github.com/fxamacker/cbor/v2"
)

// DSHT is the part of *dsht.Node cooperation needs.
type DSHT interface {
	Get(ctx context.Context, key dsht.ID, opts ...dsht.Option) ([]dsht.Value, error)
	Put(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) error
	PutGet(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, opts ...dsht.Option) ([]dsht.Value, error)
}

var _ DSHT = (*dsht.Node)(nil)

// clusterView is what the put+get needs to pick its level; *dsht.Node has
// it. A DSHT without it is taken to have every level populated.
type clusterView interface {
	Status() dsht.Status
}

var _ clusterView = (*dsht.Node)(nil)

// nearTestAndSet is the one-round put+get used when lookups time out;
// *dsht.Node has it. A DSHT without it goes straight to the spread-out
// origin fallback.
type nearTestAndSet interface {
	PutGetNearAt(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, level int, opts ...dsht.Option) ([]dsht.Value, error)
}

var _ nearTestAndSet = (*dsht.Node)(nil)

// Fetcher transfers an object from another proxy (peer: its ID as text, as
// referrals carry it), streaming as it arrives; p2p.Host implements it.
// The body must return io.EOF only after the length and hash were checked.
type Fetcher interface {
	FetchObject(ctx context.Context, peer string, key string) (object.Meta, io.ReadCloser, error)
}

// Config tunes cooperation. Zero values take the defaults noted.
type Config struct {
	// Self is this proxy's peer ID, as it appears in referrals.
	Self string
	// HasRoom says whether a peer last reported headroom (its volunteer's
	// budget); peers with room are tried first. nil: all alike.
	HasRoom func(peer string) bool
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
	// TestAndSetTimeout bounds the put+get steps that follow a lookup that
	// found nothing (10s). It is longer than LookupTimeout because giving
	// up sends the request to the origin, and in a flash crowd the DSHT is
	// slowest exactly when the origin can least afford that.
	TestAndSetTimeout time.Duration
	// FetchTimeout bounds waiting for a peer's response header (5s). A
	// peer still downloading gets LookupTimeout, TestAndSetTimeout and its
	// longest yield (3 YieldWaits) on top: it has a header to send only
	// once its own lookup, put+get and upstream have answered, and under
	// load those are what take long.
	FetchTimeout time.Duration
	// MaxAnnouncements bounds concurrent background puts (16).
	MaxAnnouncements int
	// FallbackSpread: when the DSHT could not say whether anyone is
	// downloading an object (its operations timed out), the node waits a
	// random time up to this before going to the origin, so a crowd's
	// fallbacks do not hit it together (2s).
	FallbackSpread time.Duration
	// BusyWait bounds how long a node keeps asking peers that refused
	// for lack of a free slot (object.ErrBusy) or held a complete copy and
	// did not answer within FetchTimeout, and complete copies that
	// appear meanwhile, before it goes to the origin (20s). A refused
	// fetch means a copy exists: in a flash crowd the origin is the last
	// place to send the request.
	BusyWait time.Duration
	// YieldWait is how long a node already fetching objects from the
	// origin (or testing for them at the global level) waits, per such
	// fetch, before its global test for one more object, so that another
	// racer wins it (2s; each wait drawn from its upper half). In a flash
	// crowd the fastest node otherwise wins the test for several objects,
	// and if it dies mid-download each of them costs the origin a second
	// request for the bytes nobody else has.
	YieldWait time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// setDefaults fills zero (or negative) fields with their defaults.
func (c *Config) setDefaults() {
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
	if c.TestAndSetTimeout <= 0 {
		c.TestAndSetTimeout = 10 * time.Second
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 5 * time.Second
	}
	if c.MaxAnnouncements <= 0 {
		c.MaxAnnouncements = 16
	}
	if c.FallbackSpread <= 0 {
		c.FallbackSpread = 2 * time.Second
	}
	if c.BusyWait <= 0 {
		c.BusyWait = 20 * time.Second
	}
	if c.YieldWait <= 0 {
		c.YieldWait = 2 * time.Second
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
	if err := wire.Unmarshal(b, &r); err != nil {
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
	cached    map[string]object.Key      // store key -> its URL's key, for renewal
	announced *ttlLRU[string, time.Time] // cache key -> when put+get last announced a download
	// brokeOff holds peers whose transfer to this node broke off lately:
	// their "downloading" referrals promise no copy (FetchComplete).
	brokeOff *ttlLRU[string, struct{}]
	// earlier holds, per cache key, the referrals this node's own lookup
	// or put+get found before it fetched from a peer: copies announced
	// before its own announcement (fromEarlier).
	earlier *ttlLRU[string, []candidate]
	// awaiting counts, per (cache key, peer), the fetches waiting on that
	// peer's response header (AwaitsHeader).
	awaiting map[[2]string]int
	tasLevel int       // testAndSetLevel's last answer
	tasAt    time.Time // when tasLevel was chosen (zero: never)
	// originLoad counts this node's origin downloads under way
	// (Downloading until done) and its global tests in flight: the
	// objects it is, or may soon be, the crowd's only source of (yield).
	originLoad int

	// kick asks renewLoop for a pass now (Seed).
	kick chan struct{}
	// tick starts the tickers renewals run on (tests drive them by hand).
	tick tickerFunc

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats Stats
}

var (
	_ proxy.ResumePeers  = (*Coop)(nil)
	_ proxy.WaitingPeers = (*Coop)(nil)
)

// Stats counts cooperation since start.
type Stats struct {
	Lookups, LookupHits, PeerFetches, PeerFailures, Announcements uint64
	// NearTestAndSets counts one-round put+gets run because the DSHT timed
	// out; SpreadFallbacks the origin fallbacks delayed because even that
	// failed.
	NearTestAndSets, SpreadFallbacks uint64
	// Yields counts global tests delayed because this node was already
	// fetching other objects from the origin (YieldWait).
	Yields uint64
	// BusyRefusals counts peer fetches refused for lack of a slot;
	// BusyRetries the rounds of asking again that followed.
	BusyRefusals, BusyRetries uint64
	// FromLevel counts objects fetched from peers by the DSHT level whose
	// cluster held the referral (index = level).
	FromLevel [3]uint64
}

// tickerFunc starts a ticker: its channel and a stop function.
type tickerFunc func(d time.Duration) (<-chan time.Time, func())

func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// New starts cooperation; Close stops its background announcements.
func New(cfg Config, d DSHT, f Fetcher) *Coop {
	return newCoop(cfg, d, f, realTicker)
}

func newCoop(cfg Config, d DSHT, f Fetcher, tick tickerFunc) *Coop {
	cfg.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	c := &Coop{
		cfg: cfg, dht: d, fetch: f, log: cfg.Logger.With("component", "coop"),
		slots: make(chan struct{}, cfg.MaxAnnouncements), cached: map[string]object.Key{},
		announced: newTTLLRU[string, time.Time](maxAnnounced, cfg.DownloadingTTL, cfg.Now), ctx: ctx, cancel: cancel,
		brokeOff: newTTLLRU[string, struct{}](maxAnnounced, cfg.DownloadingTTL, cfg.Now),
		earlier:  newTTLLRU[string, []candidate](maxAnnounced, earlierTTL, cfg.Now),
		kick:     make(chan struct{}, 1), tick: tick, awaiting: map[[2]string]int{},
	}
	renew, stop := tick(cfg.CachedTTL / 2)
	c.wg.Add(1)
	go c.renewLoop(renew, stop)
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
// Parallel of them at once, return the first that delivers a response
// usable accepts. With no referral it announces this node's download
// (put+get, or a put when PutGet is off) before the caller goes to the
// origin.
func (c *Coop) Fetch(ctx context.Context, urlKey object.Key, canonicalURL string, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error) {
	tr := proxy.TraceFrom(ctx)
	key, id := urlKey.String(), dsht.ID(urlKey)
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LookupTimeout)
	var dt dsht.Trace
	vals, err := c.dht.Get(lctx, id, dsht.WithTrace(&dt))
	cancel()
	tr.Step("%s", lookupStep("lookup", &dt, vals, err))
	cands := c.candidates(vals)
	switch {
	case len(cands) > 0:
	case err != nil:
		// The DSHT is slow (in a flash crowd it is): a full test-and-set
		// would time out too, and every node of the crowd would then go
		// to the origin at once.
		vals, err = c.slowDSHT(ctx, id)
		cands = c.candidates(vals)
	case c.cfg.PutGet:
		vals, err = c.testAndSet(ctx, key, id)
		if err != nil {
			vals, err = c.slowDSHT(ctx, id)
		}
		cands = c.candidates(vals)
	default:
		// Without put+get, the "I am downloading" value still goes in
		// before the origin is asked, so that the rest of a crowd comes
		// here instead.
		c.putDownloading(ctx, key, id)
	}
	c.count(func(s *Stats) {
		s.Lookups++
		if len(cands) > 0 {
			s.LookupHits++
		}
	})
	if len(cands) == 0 {
		c.log.Debug("no referral, going to the origin", "url", canonicalURL, "values", len(vals), "err", err)
		return object.Meta{}, nil, fmt.Errorf("coop: no referral for %s: %w", canonicalURL, object.ErrNotFound)
	}
	c.earlier.Add(key, slices.Clone(cands))
	meta, body, err := c.fromPeers(ctx, key, id, cands, usable)
	if err == nil || ctx.Err() != nil {
		return meta, body, err
	}
	return c.referralsFailed(ctx, key, id, canonicalURL, usable, cands, err)
}

// referralsFailed runs when no referral delivered: the downloads they
// announced died or stalled (in a crowd, nodes die, and the nodes that
// streamed from them wait in turn), and every other node referred to them
// is in the same spot. Each going to the origin cost a 100-node crowd 28
// extra origin requests when 10 nodes were killed. Instead the node takes
// a complete copy the DSHT names now; else a download another cluster's
// first node announced at the global root (a near put+get there meets the
// downloads announced before this node's, so it waits on none that waits
// on it); else it joins the election that receivers of a dead downloader
// hold (FetchForResume): one of them goes to the origin and the others
// fetch its download.
func (c *Coop) referralsFailed(ctx context.Context, key string, id dsht.ID, canonicalURL string, usable func(object.Meta) error, failed []candidate, cause error) (object.Meta, io.ReadCloser, error) {
	near, ok := c.dht.(nearTestAndSet)
	if !ok {
		return object.Meta{}, nil, cause
	}
	proxy.TraceFrom(ctx).Step("every referral failed: a complete copy, a download at the global root, or else an election for the origin")
	meta, body, err := c.fetchComplete(ctx, key, id, canonicalURL, usable, 0)
	if err == nil || ctx.Err() != nil {
		return meta, body, err
	}
	meta, body, err = c.fromGlobalRoot(ctx, near, key, id, usable, failed)
	if err == nil || ctx.Err() != nil {
		return meta, body, err
	}
	return c.elect(ctx, near, key, canonicalURL, usable)
}

// fromGlobalRoot races the copies and downloads a near put+get at the
// object's global root meets: the downloads other clusters' first nodes
// announced there, before this node's value, so none of them waits on
// this node. Peers in failed and those whose transfers broke off are left
// out.
func (c *Coop) fromGlobalRoot(ctx context.Context, near nearTestAndSet, key string, id dsht.ID, usable func(object.Meta) error, failed []candidate) (object.Meta, io.ReadCloser, error) {
	vals, err := c.nearPutGet(ctx, near, id, 0)
	if err != nil {
		return object.Meta{}, nil, err
	}
	others := slices.DeleteFunc(c.candidates(vals), func(cd candidate) bool {
		return slices.ContainsFunc(failed, func(f candidate) bool { return f.Peer == cd.Peer }) ||
			cd.State == StateDownloading && c.brokeOff.Contains(cd.Peer)
	})
	if len(others) == 0 {
		return object.Meta{}, nil, fmt.Errorf("coop: no other download at the global root: %w", object.ErrNotFound)
	}
	meta, body, _, err := c.race(ctx, key, others, usable)
	return meta, body, err
}

// Backoff between rounds of asking busy peers again: it starts at
// busyBackoff and doubles up to busyBackoffMax, each wait drawn at random
// from its upper half so that refused nodes do not come back together.
const (
	busyBackoff    = 250 * time.Millisecond
	busyBackoffMax = 2 * time.Second
)

// fromPeers races the candidates. While a round fails and some peers in it
// refused for lack of a slot (or held a complete copy and answered too
// slowly: an overloaded holder), it waits (a growing, jittered backoff), looks
// the key up again for complete copies announced meanwhile, and races the
// busy peers and those copies, for up to BusyWait: the copy exists, so the
// origin is asked only when the wait runs out or no peer was busy.
func (c *Coop) fromPeers(ctx context.Context, key string, id dsht.ID, cands []candidate, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error) {
	tr := proxy.TraceFrom(ctx)
	deadline := c.cfg.Now().Add(c.cfg.BusyWait)
	backoff := busyBackoff
	for {
		meta, body, busy, err := c.race(ctx, key, cands, usable)
		left := deadline.Sub(c.cfg.Now())
		if err == nil || len(busy) == 0 || left <= 0 || ctx.Err() != nil {
			if len(busy) > 0 && err != nil {
				tr.Step("%d peer(s) still busy after %s: origin", len(busy), c.cfg.BusyWait)
			}
			return meta, body, err
		}
		wait := min(backoff/2+rand.N(backoff/2), left)
		backoff = min(2*backoff, busyBackoffMax)
		c.count(func(s *Stats) { s.BusyRetries++ })
		tr.Step("%d peer(s) busy: asking again in %s", len(busy), wait.Round(time.Millisecond))
		if !sleepCtx(ctx, wait) {
			return object.Meta{}, nil, ctx.Err()
		}
		cands = c.retryCandidates(ctx, id, busy)
	}
}

// FetchForResume implements proxy.ResumePeers: first the copies this
// node's fetch was referred to, but not the one that broke off
// (fromEarlier); then a complete copy (fetchComplete); then a download
// another cluster's first node announced at the global root
// (fromGlobalRoot: a large file's only complete copy may still be minutes
// away while it arrives there); with none, an election among the nodes whose transfers broke off: each does a near put+get at the global root of the object's
// resume key, the first to get there meets nobody and goes to the origin,
// and the others fetch its download (or a later one's, never an earlier
// one's: no cycle of waits). So a dead downloader's receivers cost the
// origin one request, not one each.
func (c *Coop) FetchForResume(ctx context.Context, urlKey object.Key, canonicalURL string, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error) {
	key, id := urlKey.String(), dsht.ID(urlKey)
	meta, body, err := c.fromEarlier(ctx, key, usable)
	if err == nil || ctx.Err() != nil {
		return meta, body, err
	}
	meta, body, err = c.fetchComplete(ctx, key, id, canonicalURL, usable, c.cfg.BusyWait)
	if err == nil || ctx.Err() != nil {
		return meta, body, err
	}
	near, ok := c.dht.(nearTestAndSet)
	if !ok {
		return meta, body, err
	}
	meta, body, err = c.fromGlobalRoot(ctx, near, key, id, usable, nil)
	if err == nil || ctx.Err() != nil {
		return meta, body, err
	}
	return c.elect(ctx, near, key, canonicalURL, usable)
}

// elect is the election of the nodes left without a source for
// canonicalURL: a near put+get at the global root of its resume key. The
// first to get there meets nobody and goes to the origin (an error); the
// others fetch its download, or a later one's, never an earlier one's.
func (c *Coop) elect(ctx context.Context, near nearTestAndSet, key, canonicalURL string, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error) {
	vals, nerr := c.nearPutGet(ctx, near, dsht.ID(object.KeyOf("resume "+canonicalURL)), 0)
	cands := c.candidates(vals)
	if nerr != nil || len(cands) == 0 {
		return object.Meta{}, nil, fmt.Errorf("coop: elected to fetch %s from the origin: %w", canonicalURL, object.ErrNotFound)
	}
	meta, body, _, err := c.race(ctx, key, cands, usable)
	return meta, body, err
}

// earlierTTL is how long the referrals of a fetch are kept for resuming
// it: about as long as a large transfer from a slow origin may run.
const earlierTTL = 10 * time.Minute

// fromEarlier races the referrals this node's own lookup found when it
// fetched key (earlier), less the peers whose transfers to it broke off.
// A download under way at one of them is as good a source as the origin
// and cannot be waiting on this node: it was announced before this node's
// put+get, or this node announced nothing. So a receiver whose upstream
// died or stalled continues from the first downloader's copy as it
// arrives, rather than wait for a complete copy or go to the origin.
func (c *Coop) fromEarlier(ctx context.Context, key string, usable func(object.Meta) error) (object.Meta, io.ReadCloser, error) {
	cands, _ := c.earlier.Get(key)
	cands = slices.DeleteFunc(slices.Clone(cands), func(cd candidate) bool { return c.brokeOff.Contains(cd.Peer) })
	if len(cands) == 0 {
		return object.Meta{}, nil, fmt.Errorf("coop: no earlier referral for %s: %w", key, object.ErrNotFound)
	}
	proxy.TraceFrom(ctx).Step("resuming from %d earlier referral(s)", len(cands))
	meta, body, _, err := c.race(ctx, key, cands, usable)
	return meta, body, err
}

// fetchComplete fetches a complete copy only. While none delivers and some
// other node announces it is downloading the object (a complete copy is
// coming; not one whose transfer to this node just broke off), or its
// lookup failed, it looks again with the busy backoff for up to wait; with
// no download under way it gives up at once.
func (c *Coop) fetchComplete(ctx context.Context, key string, id dsht.ID, canonicalURL string, usable func(object.Meta) error, wait time.Duration) (object.Meta, io.ReadCloser, error) {
	tr := proxy.TraceFrom(ctx)
	deadline := c.cfg.Now().Add(wait)
	backoff := busyBackoff
	for {
		lctx, cancel := context.WithTimeout(ctx, c.cfg.LookupTimeout)
		vals, lerr := c.dht.Get(lctx, id)
		cancel()
		all := slices.DeleteFunc(c.candidates(vals), func(cd candidate) bool {
			return cd.State == StateDownloading && c.brokeOff.Contains(cd.Peer)
		})
		complete := slices.DeleteFunc(slices.Clone(all), func(cd candidate) bool { return cd.State != StateCached })
		if len(complete) > 0 {
			if meta, body, _, err := c.race(ctx, key, complete, usable); err == nil {
				return meta, body, nil
			}
		}
		// A lookup that failed (under a crowd's load it times out) says
		// nothing about downloads under way: look again, as for one.
		underWay := len(all) > len(complete) || lerr != nil
		left := deadline.Sub(c.cfg.Now())
		if !underWay || left <= 0 || ctx.Err() != nil {
			return object.Meta{}, nil, fmt.Errorf("coop: no complete copy of %s: %w", canonicalURL, object.ErrNotFound)
		}
		wait := min(backoff/2+rand.N(backoff/2), left)
		backoff = min(2*backoff, busyBackoffMax)
		if lerr != nil {
			tr.Step("lookup for a complete copy failed: looking again in %s", wait.Round(time.Millisecond))
		} else {
			tr.Step("no complete copy yet, %d download(s) under way: looking again in %s", len(all)-len(complete), wait.Round(time.Millisecond))
		}
		if !sleepCtx(ctx, wait) {
			return object.Meta{}, nil, ctx.Err()
		}
	}
}

// retryCandidates is the next round after peers refused for lack of a
// slot: the busy peers and every complete copy a fresh lookup finds. Only
// complete copies are added: a download announced after this node's own
// announcement may be waiting for this node, and asking it would make a
// cycle of waits.
func (c *Coop) retryCandidates(ctx context.Context, id dsht.ID, busy []candidate) []candidate {
	lctx, cancel := context.WithTimeout(ctx, c.cfg.LookupTimeout)
	vals, _ := c.dht.Get(lctx, id)
	cancel()
	out := slices.DeleteFunc(c.candidates(vals), func(cd candidate) bool { return cd.State != StateCached })
	for _, b := range busy {
		if !slices.ContainsFunc(out, func(cd candidate) bool { return cd.Peer == b.Peer }) {
			out = append(out, b)
		}
	}
	c.order(out)
	return out
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// testAndSet announces this node's download with put+get (test-and-set)
// and returns the values of whoever announced first. It climbs the
// hierarchy in two steps. First within the most local cluster this node
// shares with others, storing at that level and the ones above it down to
// level 1, so that cluster-mates find each other there. Only a node that
// met nobody there (one per cluster) then tests at the global level, so
// that of the clusters' first nodes exactly one goes to the origin and the
// others fetch from it. Each step stores only at the levels it tests or
// above the tested one, never at level 0 before the global test: a node
// meets a level-0 value only of a node that stored there before it, so no
// two downloads can wait on each other in a cycle ("Experiences with
// CoralCDN", NSDI 2010, on the put+get test-and-set).
//
// A node already fetching other objects from the origin waits before the
// global test (yieldGlobal); the wait is added to TestAndSetTimeout.
func (c *Coop) testAndSet(ctx context.Context, key string, id dsht.ID) (vals []dsht.Value, err error) {
	tr := proxy.TraceFrom(ctx)
	deadline := time.Now().Add(c.cfg.TestAndSetTimeout)
	value := EncodeReferral(Referral{Peer: c.cfg.Self, State: StateDownloading})
	steps := [][2]int{{0, 0}}
	if l := c.testAndSetLevel(); l > 0 {
		steps = [][2]int{{l, 1}, {0, 0}}
	}
	for _, lv := range steps {
		if lv[0] == 0 {
			done, waited, ok := c.yieldGlobal(ctx)
			if !ok {
				return nil, ctx.Err()
			}
			defer done()
			deadline = deadline.Add(waited)
		}
		var dt dsht.Trace
		sctx, cancel := context.WithDeadline(ctx, deadline)
		vals, err = c.dht.PutGet(sctx, id, value, c.cfg.DownloadingTTL, dsht.Levels(lv[0], lv[1]), dsht.WithTrace(&dt))
		cancel()
		tr.Step("%s", lookupStep("put+get", &dt, vals, err))
		if err == nil && len(c.candidates(vals)) > 0 {
			break
		}
		// Nobody first in the cluster, or the cluster could not be
		// reached: the global test decides.
	}
	if err == nil {
		c.markAnnounced(key)
	}
	return vals, err
}

// slowDSHT decides, when DSHT lookups time out, whether someone else is
// already downloading: a one-round put+get at the root this node's routing
// table names in its most local cluster (a cluster's racing nodes meet
// there, and one of them meets nobody), and for that one a second at the
// global level's root, where the clusters' first nodes meet, so that one
// node of the whole crowd downloads. If the first fails, it waits a random
// time up to FallbackSpread, so the crowd's origin fallbacks are spread out
// rather than simultaneous, and returns the error.
func (c *Coop) slowDSHT(ctx context.Context, id dsht.ID) ([]dsht.Value, error) {
	tr := proxy.TraceFrom(ctx)
	err := errors.New("coop: DSHT has no near put+get")
	if near, ok := c.dht.(nearTestAndSet); ok {
		c.count(func(s *Stats) { s.NearTestAndSets++ })
		var vals []dsht.Value
		clustered := c.testAndSetLevel() > 0
		if vals, err = c.nearPutGetYielding(ctx, near, id, -1, !clustered); err == nil {
			if len(c.candidates(vals)) == 0 && clustered {
				if global, gerr := c.nearPutGetYielding(ctx, near, id, 0, true); gerr == nil {
					vals = global
				}
			}
			// Not marked announced: the value sits at one node per level
			// tested, so Downloading still announces at every level.
			return vals, nil
		}
	}
	c.count(func(s *Stats) { s.SpreadFallbacks++ })
	wait := rand.N(c.cfg.FallbackSpread)
	tr.Step("DSHT timed out: origin in %s", wait.Round(time.Millisecond))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, err
}

// nearPutGetYielding is nearPutGet, after yieldGlobal when global says
// the put+get decides between the clusters' first nodes.
func (c *Coop) nearPutGetYielding(ctx context.Context, near nearTestAndSet, id dsht.ID, level int, global bool) ([]dsht.Value, error) {
	if global {
		done, _, ok := c.yieldGlobal(ctx)
		if !ok {
			return nil, ctx.Err()
		}
		defer done()
	}
	return c.nearPutGet(ctx, near, id, level)
}

// maxYield bounds the fetches a global test yields for: the wait stays
// within a few YieldWaits however busy the node is.
const maxYield = 3

// yieldGlobal counts a global test in originLoad until done is called. A
// node that already had origin downloads or global tests under way first
// waits YieldWait per each (drawn from the upper half; at most maxYield),
// so that a racer with none stores at the object's global root first and
// downloads it: one node dying mid-download then costs the origin one
// resume, not one per object the fastest node won. ok is false when ctx
// ended during the wait (done already called).
func (c *Coop) yieldGlobal(ctx context.Context) (done func(), waited time.Duration, ok bool) {
	busy := c.addOriginLoad(1)
	var once sync.Once
	done = func() { once.Do(func() { c.addOriginLoad(-1) }) }
	if busy == 0 {
		return done, 0, true
	}
	d := time.Duration(min(busy, maxYield)) * c.cfg.YieldWait
	waited = d/2 + rand.N(d/2)
	c.count(func(s *Stats) { s.Yields++ })
	proxy.TraceFrom(ctx).Step("already fetching %d from the origin: global test in %s", busy, waited.Round(time.Millisecond))
	if !sleepCtx(ctx, waited) {
		done()
		return nil, 0, false
	}
	return done, waited, true
}

// addOriginLoad adds d to originLoad and returns its value before.
func (c *Coop) addOriginLoad(d int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.originLoad
	c.originLoad += d
	return before
}

// nearPutGet is one near put+get at level (negative: the most local),
// traced. It is bounded by TestAndSetTimeout, not LookupTimeout: it runs
// because lookups timed out, so the network is slow, and giving up sends
// the request to the origin.
func (c *Coop) nearPutGet(ctx context.Context, near nearTestAndSet, id dsht.ID, level int) ([]dsht.Value, error) {
	nctx, cancel := context.WithTimeout(ctx, c.cfg.TestAndSetTimeout)
	defer cancel()
	start := c.cfg.Now()
	var dt dsht.Trace
	vals, err := near.PutGetNearAt(nctx, id, EncodeReferral(Referral{Peer: c.cfg.Self, State: StateDownloading}), c.cfg.DownloadingTTL, level, dsht.WithTrace(&dt))
	took := c.cfg.Now().Sub(start).Round(time.Millisecond)
	where := ""
	if level >= 0 {
		where = fmt.Sprintf(" L%d", level)
	}
	if err != nil {
		tr := proxy.TraceFrom(ctx)
		tr.Step("near put+get%s (%s%s): failed", where, took, nearRoots(&dt))
		return nil, err
	}
	proxy.TraceFrom(ctx).Step("near put+get%s: %d values (%s%s)", where, len(vals), took, nearRoots(&dt))
	return vals, nil
}

// nearRoots names, for the trace, the nodes whose stores answered in a
// near put+get (the first 3 bytes of their DSHT IDs), so that two nodes'
// traces show whether their test-and-sets met at the same root.
func nearRoots(dt *dsht.Trace) string {
	if len(dt.Levels) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; %d RPCs, stored at", dt.RPCs)
	for _, id := range dt.Levels[0].Contacted {
		fmt.Fprintf(&b, " %x", id[:3])
	}
	return b.String()
}

// putDownloading stores this node's "I am downloading" value at every
// level and waits for it (bounded by TestAndSetTimeout): the get-then-put
// way of announcing a download, when put+get is off.
func (c *Coop) putDownloading(ctx context.Context, key string, id dsht.ID) {
	tr := proxy.TraceFrom(ctx)
	ctx, cancel := context.WithTimeout(ctx, c.cfg.TestAndSetTimeout)
	defer cancel()
	start := c.cfg.Now()
	err := c.dht.Put(ctx, id, EncodeReferral(Referral{Peer: c.cfg.Self, State: StateDownloading}), c.cfg.DownloadingTTL)
	took := c.cfg.Now().Sub(start).Round(time.Millisecond)
	if err != nil {
		tr.Step("put downloading (%s): failed", took)
		c.log.Debug("downloading announcement failed", "err", err)
		return
	}
	tr.Step("put downloading (%s)", took)
	c.count(func(s *Stats) { s.Announcements++ })
	c.markAnnounced(key)
}

// markAnnounced records that this node's download of key was just
// announced, so Downloading does not announce it again at once.
func (c *Coop) markAnnounced(key string) {
	// Entries no download followed (a peer delivered after all) expire
	// with the announcement itself.
	c.announced.Add(key, c.cfg.Now())
}

// testAndSetLevel is the most local level at which this node's cluster has
// other members; 0 when there is none or the DSHT cannot tell. The DSHT's
// put+get returns only values met at its start level (where every racing
// member of the cluster passes the same root); started at a level where
// this node is alone, as every node is at levels 1 and 2 until clusters
// form, and as an isolated node always is, it meets nobody, so every node
// of a flash crowd would "win" and go to the origin. The choice is cached
// for a second: a crowd misses many objects at once.
func (c *Coop) testAndSetLevel() int {
	cv, ok := c.dht.(clusterView)
	if !ok {
		return 0
	}
	now := c.cfg.Now()
	c.mu.Lock()
	if !c.tasAt.IsZero() && now.Sub(c.tasAt) < time.Second {
		l := c.tasLevel
		c.mu.Unlock()
		return l
	}
	c.mu.Unlock()
	st := cv.Status()
	level := 0
	for _, ls := range st.Levels {
		if ls.Level > level && ls.ClusterSize > 1 {
			level = ls.Level
		}
	}
	c.mu.Lock()
	c.tasLevel, c.tasAt = level, now
	c.mu.Unlock()
	return level
}

// maxAnnounced bounds Coop.announced: downloads announced and not yet
// started, a handful at a time in practice.
const maxAnnounced = 1024

// lookupStep describes a DSHT lookup for the trace: each level searched,
// most local first, with the values found there, e.g. "lookup L2:0 L1:0
// L0:2 (14ms)".
func lookupStep(op string, dt *dsht.Trace, vals []dsht.Value, err error) string {
	var b strings.Builder
	b.WriteString(op)
	perLevel := map[int]int{}
	for _, v := range vals {
		perLevel[v.Level]++
	}
	for _, lt := range dt.Levels {
		fmt.Fprintf(&b, " L%d:%d", lt.Level, perLevel[lt.Level])
	}
	if len(dt.Levels) == 0 {
		fmt.Fprintf(&b, ": %d values", len(vals))
	}
	if dt.Elapsed > 0 {
		fmt.Fprintf(&b, " (%s)", dt.Elapsed.Round(time.Millisecond))
	}
	switch {
	case errors.Is(err, dsht.ErrNoStore):
		// A node alone in the network, or the first to ask: normal.
		b.WriteString(": no other node yet")
	case err != nil:
		b.WriteString(": failed")
	}
	return b.String()
}

// candidates decodes values into referrals to other proxies, best first:
// complete copies before downloads, the most local level first. A proxy
// named several times counts once, at its best.
func (c *Coop) candidates(vals []dsht.Value) []candidate {
	at := map[string]int{}
	var out []candidate
	for _, v := range vals {
		r, err := DecodeReferral(v.Data)
		if err != nil || r.Peer == c.cfg.Self {
			continue
		}
		cd := candidate{Referral: r, level: v.Level}
		if i, dup := at[r.Peer]; dup {
			if better(cd, out[i]) {
				out[i] = cd
			}
			continue
		}
		at[r.Peer] = len(out)
		out = append(out, cd)
	}
	c.order(out)
	return out
}

// order sorts candidates best first (better), peers with headroom ahead
// of the rest.
func (c *Coop) order(out []candidate) {
	sort.SliceStable(out, func(i, j int) bool { return better(out[i], out[j]) })
	if c.cfg.HasRoom != nil {
		// Peers with headroom first: a paused or saturated volunteer is
		// asked only when no one else has the object.
		sort.SliceStable(out, func(i, j int) bool { return c.cfg.HasRoom(out[i].Peer) && !c.cfg.HasRoom(out[j].Peer) })
	}
}

// better orders referrals: a complete copy before a download in progress,
// then the more local level.
func better(a, b candidate) bool {
	if a.State != b.State {
		return a.State == StateCached
	}
	return a.level > b.level
}

func (cd candidate) String() string {
	state := "cached"
	if cd.State == StateDownloading {
		state = "downloading"
	}
	return fmt.Sprintf("%s L%d %s", proxy.ShortPeer(cd.Peer), cd.level, state)
}

type result struct {
	meta   object.Meta
	body   io.ReadCloser
	err    error
	idx    int // into the candidates
	cancel context.CancelFunc
}

// race fetches from the candidates, Parallel at a time, and returns the
// first response; the others are cancelled at once and their bodies
// closed. When an attempt fails the next candidate starts, so a dead
// referral costs one slot, not the request. busy lists the candidates
// that refused for lack of a slot (object.ErrBusy), or held a complete copy
// and did not answer in time, when none delivered.
func (c *Coop) race(ctx context.Context, key string, cands []candidate, usable func(object.Meta) error) (_ object.Meta, _ io.ReadCloser, busy []candidate, _ error) {
	tr := proxy.TraceFrom(ctx)
	results := make(chan result, len(cands))
	cancels := make([]context.CancelFunc, len(cands))
	finished := make([]bool, len(cands))
	start := func(i int) { cancels[i] = c.attempt(ctx, cands[i], key, i, results) }
	next, running := 0, 0
	for ; next < len(cands) && running < c.cfg.Parallel && !c.reserve(cands, next); next++ {
		start(next)
		running++
	}
	var errs []error
	for running > 0 {
		r := <-results
		running--
		finished[r.idx] = true
		cd := cands[r.idx]
		if r.err == nil && usable != nil {
			if err := usable(r.meta); err != nil {
				// Another referral may hold a copy this request can use.
				r.body.Close()
				r.err = fmt.Errorf("%w: %v", errUnusable, err)
			}
		}
		if r.err == nil {
			c.count(func(s *Stats) {
				s.PeerFetches++
				if cd.level >= 0 && cd.level < len(s.FromLevel) {
					s.FromLevel[cd.level]++
				}
			})
			tr.Step("try %s: ok", cd)
			tr.Source("peer %s L%d", proxy.ShortPeer(cd.Peer), cd.level)
			// Losers still running are cancelled now and drained in the
			// background (one may have delivered meanwhile: close it).
			for j := 0; j < next; j++ {
				if !finished[j] {
					cancels[j]()
				}
			}
			go drainLosers(tr, cands, results, running)
			return r.meta, &cancelOnClose{ReadCloser: r.body, cancel: r.cancel, brokeOff: func() { c.brokeOff.Add(cd.Peer, struct{}{}) }}, nil, nil
		}
		r.cancel()
		c.count(func(s *Stats) { s.PeerFailures++ })
		switch {
		case errors.Is(r.err, object.ErrBusy):
			busy = append(busy, cd)
			c.count(func(s *Stats) { s.BusyRefusals++ })
		case cd.State == StateCached && errors.Is(r.err, context.DeadlineExceeded):
			// A complete copy whose holder did not answer in time is
			// slow, not gone: in an overloaded crowd, ask again.
			busy = append(busy, cd)
		}
		tr.Step("try %s: %s", cd, outcome(r.err))
		errs = append(errs, r.err)
		// A peer without room waits until every peer with room is done.
		if next < len(cands) && (running == 0 || !c.reserve(cands, next)) {
			start(next)
			next++
			running++
		}
	}
	c.log.Debug("no peer delivered, going to the origin", "key", key, "tried", len(cands), "errs", errors.Join(errs...))
	return object.Meta{}, nil, busy, fmt.Errorf("coop: no peer delivered: %w (%w)", object.ErrNotFound, errors.Join(errs...))
}

// attempt asks one candidate for key in the background and sends the
// outcome on results; the returned cancel ends the attempt.
func (c *Coop) attempt(ctx context.Context, cd candidate, key string, idx int, results chan<- result) context.CancelFunc {
	actx, cancel := context.WithCancel(ctx)
	go func() {
		wait := c.cfg.FetchTimeout
		if cd.State == StateDownloading {
			// Its own lookup and test-and-set come first, and a
			// yield before its global test (yieldGlobal).
			wait += c.cfg.LookupTimeout + c.cfg.TestAndSetTimeout + maxYield*c.cfg.YieldWait
		}
		hctx, hcancel := context.WithTimeout(actx, wait)
		defer hcancel()
		type hdr struct {
			meta object.Meta
			body io.ReadCloser
			err  error
		}
		ch := make(chan hdr, 1)
		go func() {
			// This node's clock around its request: with the Age the
			// peer states, that is what the copy's age is reckoned from.
			sent := c.cfg.Now()
			done := c.await(key, cd.Peer)
			m, b, err := c.fetch.FetchObject(actx, cd.Peer, key)
			done()
			m.RequestTime, m.ResponseTime = sent, c.cfg.Now()
			ch <- hdr{m, b, err}
		}()
		select {
		case h := <-ch:
			results <- result{meta: h.meta, body: h.body, err: h.err, idx: idx, cancel: cancel}
		case <-hctx.Done():
			cancel()
			h := <-ch
			if h.body != nil {
				h.body.Close()
			}
			results <- result{err: fmt.Errorf("coop: peer %s: no response: %w", cd.Peer, hctx.Err()), idx: idx, cancel: cancel}
		}
	}()
	return cancel
}

// await records that a fetch of key waits on peer's response header until
// done is called (AwaitsHeader).
func (c *Coop) await(key, peer string) (done func()) {
	k := [2]string{key, peer}
	c.mu.Lock()
	c.awaiting[k]++
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.awaiting[k]--; c.awaiting[k] <= 0 {
			delete(c.awaiting, k)
		}
	}
}

// AwaitsHeader implements proxy.WaitingPeers: a fetch of key is waiting
// on peer's response header.
func (c *Coop) AwaitsHeader(key, peer string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.awaiting[[2]string{key, peer}] > 0
}

// drainLosers collects the n attempts still running after the race was
// won, closing any body one delivered meanwhile.
func drainLosers(tr *proxy.Trace, cands []candidate, results <-chan result, n int) {
	for ; n > 0; n-- {
		l := <-results
		if l.body != nil {
			l.body.Close()
		}
		l.cancel()
		tr.Step("try %s: cancelled", cands[l.idx])
	}
}

// reserve says whether cands[i] is kept back from the first round: a peer
// without headroom is asked only once those with room have failed
// (candidates are sorted with room first).
func (c *Coop) reserve(cands []candidate, i int) bool {
	return c.cfg.HasRoom != nil && i > 0 && c.cfg.HasRoom(cands[0].Peer) && !c.cfg.HasRoom(cands[i].Peer)
}

// errUnusable marks a delivered copy the caller's usable check refused.
var errUnusable = errors.New("copy not used")

// outcome names a failed attempt for the trace; other failures carry the
// innermost cause (a refused stream, a bad object), which is what tells an
// operator why a crowd went to the origin.
func outcome(err error) string {
	switch {
	case errors.Is(err, object.ErrNotFound):
		return "not found"
	case errors.Is(err, object.ErrBusy):
		return "busy"
	case errors.Is(err, context.DeadlineExceeded):
		return "no response"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, errUnusable):
		return err.Error()
	case err == nil:
		return "failed"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	msg = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == ';' {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return "failed (" + strings.TrimSpace(msg) + ")"
}

// cancelOnClose is a delivered peer body: closing it ends the attempt,
// and a read that fails (not by this node's cancelling) records the peer
// as broken off.
type cancelOnClose struct {
	io.ReadCloser
	cancel   context.CancelFunc
	brokeOff func()
}

func (c *cancelOnClose) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, context.Canceled) {
		c.brokeOff()
	}
	return n, err
}

// Hash passes on the peer body's own hash (object.HashingBody), so the
// proxy does not hash the body again.
func (c *cancelOnClose) Hash() hash.Hash { return object.HashOf(c.ReadCloser) }

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// Downloading implements proxy.Peers: announce the origin download and
// renew the announcement at half-life until done is called.
func (c *Coop) Downloading(urlKey object.Key, canonicalURL string) (done func()) {
	key, id := urlKey.String(), dsht.ID(urlKey)
	value := EncodeReferral(Referral{Peer: c.cfg.Self, State: StateDownloading})
	at, fresh := c.announced.Peek(key)
	c.announced.Remove(key)
	if !fresh || c.cfg.Now().Sub(at) > c.cfg.DownloadingTTL/2 {
		c.announce(id, value, c.cfg.DownloadingTTL)
	}
	c.addOriginLoad(1) // until done: later global tests yield (yieldGlobal)
	stop := make(chan struct{})
	var once sync.Once
	ticks, stopTicker := c.tick(c.cfg.DownloadingTTL / 2)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer stopTicker()
		for {
			select {
			case <-stop:
				return
			case <-c.ctx.Done():
				return
			case <-ticks:
				// A renewal waits for a slot: a dropped one would let the
				// value lapse mid-download and send the crowd elsewhere.
				if !c.announceWait(id, value, c.cfg.DownloadingTTL) {
					return
				}
			}
		}
	}()
	return func() {
		once.Do(func() {
			close(stop)
			c.addOriginLoad(-1)
		})
	}
}

// Cached implements proxy.Peers: announce the complete copy at every level.
func (c *Coop) Cached(urlKey object.Key, meta object.Meta) {
	if meta.URL == "" {
		return
	}
	c.mu.Lock()
	c.cached[meta.Key] = urlKey
	c.mu.Unlock()
	c.announce(dsht.ID(urlKey), EncodeReferral(Referral{Peer: c.cfg.Self, State: StateCached}), c.cfg.CachedTTL)
}

// Removed implements proxy.Peers: the copy is gone, so stop renewing its
// announcement; the value expires by itself (soft state).
func (c *Coop) Removed(key string) {
	c.mu.Lock()
	delete(c.cached, key)
	c.mu.Unlock()
}

// Seed registers copies already in the store at start-up and has renewLoop
// announce them right away rather than at its next tick.
func (c *Coop) Seed(metas []object.Meta) {
	c.mu.Lock()
	for _, m := range metas {
		if m.URL != "" {
			c.cached[m.Key] = object.KeyOf(m.URL) // once, at start-up
		}
	}
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default: // a pass is already due
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

// renewLoop re-announces every cached copy at half its TTL, and all of
// them at once when Seed asks.
func (c *Coop) renewLoop(ticks <-chan time.Time, stop func()) {
	defer c.wg.Done()
	defer stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		case <-ticks:
		}
		c.mu.Lock()
		urls := make(map[object.Key]bool, len(c.cached))
		for _, u := range c.cached {
			urls[u] = true
		}
		c.mu.Unlock()
		value := EncodeReferral(Referral{Peer: c.cfg.Self, State: StateCached})
		for u := range urls {
			if !c.announceWait(dsht.ID(u), value, c.cfg.CachedTTL) {
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
