package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/publicsuffix"
	"golang.org/x/sync/semaphore"

	"github.com/coralcdn/coral/core/coralurl"
)

// Origin download slots. A fetch holds one of MaxOriginFetches slots for
// the whole node and one of MaxFetchesPerSite for its site while it talks
// to the origin, so a site whose downloads never finish (a slow drip, a
// crowd for one huge file) fills its own share and leaves the rest to other
// sites' misses. A site is a registrable domain (www.example.com and
// img.example.com are both example.com), so a wildcard DNS name cannot mint
// a fresh share per host name; an IP address is its own site.

// siteOf is the slot-sharing site of an origin.
func siteOf(o coralurl.Origin) string {
	if a, err := netip.ParseAddr(o.Host); err == nil {
		return a.String()
	}
	if d, err := publicsuffix.EffectiveTLDPlusOne(o.Host); err == nil {
		return d
	}
	return o.Host
}

// siteLimiter caps the slots one site holds.
type siteLimiter struct {
	per int64

	mu sync.Mutex
	m  map[string]*siteSlots
}

type siteSlots struct {
	sem   *semaphore.Weighted
	users int // holders and waiters; the entry goes when it drops to 0
}

func newSiteLimiter(per int) *siteLimiter {
	return &siteLimiter{per: int64(per), m: map[string]*siteSlots{}}
}

// acquire takes one of site's slots, waiting until ctx ends unless wait
// is false; release is nil when no slot was taken.
func (l *siteLimiter) acquire(ctx context.Context, site string, wait bool) (release func(), err error) {
	l.mu.Lock()
	s := l.m[site]
	if s == nil {
		s = &siteSlots{sem: semaphore.NewWeighted(l.per)}
		l.m[site] = s
	}
	s.users++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if s.users--; s.users == 0 {
			delete(l.m, site)
		}
		l.mu.Unlock()
	}
	switch {
	case !wait && !s.sem.TryAcquire(1):
		done()
		return nil, nil
	case wait:
		if err := s.sem.Acquire(ctx, 1); err != nil {
			done()
			return nil, err
		}
	}
	return func() { s.sem.Release(1); done() }, nil
}

// errSiteBusy: the site's share of origin slots stayed full.
var errSiteBusy = errors.New("proxy: this site's origin fetch slots are all in use")

// acquireSlot waits (at most OriginTimeout in all) for one of o's site's
// slots and one of the node's; release gives both back.
func (p *Proxy) acquireSlot(ctx context.Context, o coralurl.Origin) (release func(), err error) {
	wctx, cancel := context.WithTimeout(ctx, p.opts.OriginTimeout)
	defer cancel()
	queued := false
	defer func() {
		if queued {
			p.stats.queued.Add(-1)
		}
	}()
	site := siteOf(o)
	relSite, _ := p.sites.acquire(ctx, site, false)
	if relSite == nil {
		queued = true
		p.stats.queued.Add(1)
		if relSite, err = p.sites.acquire(wctx, site, true); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			return nil, errSiteBusy
		}
	}
	if !p.sem.TryAcquire(1) {
		if !queued {
			queued = true
			p.stats.queued.Add(1)
		}
		if err := p.sem.Acquire(wctx, 1); err != nil {
			relSite()
			return nil, err
		}
	}
	return func() { p.sem.Release(1); relSite() }, nil
}

// transferGuard ends a body transfer that delivers nothing for a while (a
// stall) or that takes longer than its size warrants: OriginTimeout plus
// the time the bytes take at minRate, counting the announced length or the
// bytes seen so far, whichever is more. The stall timer alone restarts at
// every byte, so an origin dripping one byte just inside it would hold a
// slot forever.
type transferGuard struct {
	*stallGuard
	start   time.Time
	grace   time.Duration
	minRate int64 // bytes per second
	length  int64 // announced, -1 unknown
	seen    int64
	cancel  context.CancelFunc
}

// errTooSlow: the transfer went past its total deadline.
var errTooSlow = errors.New("proxy: transfer slower than the minimum origin rate allows")

func newTransferGuard(timeout time.Duration, minRate, length int64, cancel context.CancelFunc) *transferGuard {
	return &transferGuard{stallGuard: newStallGuard(timeout, cancel), start: time.Now(),
		grace: timeout, minRate: minRate, length: length, cancel: cancel}
}

// deadline is when a transfer of the bytes expected so far must be over.
func (g *transferGuard) deadline() time.Time {
	n := max(g.length, g.seen)
	return g.start.Add(g.grace + time.Duration(float64(n)/float64(g.minRate)*float64(time.Second)))
}

// read is one Read of r under both limits.
func (g *transferGuard) read(r io.Reader, buf []byte) (int, error) {
	n, err := g.stallGuard.read(r, buf)
	g.seen += int64(n)
	if err == nil && time.Now().After(g.deadline()) {
		g.cancel()
		return n, errTooSlow
	}
	return n, err
}

// busyFailure is the answer when no origin slot could be had.
func busyFailure(err error) originFailure {
	if errors.Is(err, errSiteBusy) {
		return originFailure{http.StatusServiceUnavailable, "Coral is busy with this site",
			"This node is already downloading as much from this site as it lets one site take; try again shortly.", false}
	}
	return originFailure{http.StatusServiceUnavailable, "Coral is busy",
		"Too many origin fetches are in progress on this node; try again shortly.", false}
}
