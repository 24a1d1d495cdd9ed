package shaping

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// ErrOff is returned to a sender while its direction is off: paused, in an
// "off" window, or over the quota.
var ErrOff = errors.New("shaping: not serving (paused, off window or quota reached)")

// Burst bounds: the bucket holds 1/20 s of the cap, so any 1-second window
// carries at most 5 % more than the cap, and never less than one packet's
// worth so tiny caps still make progress.
const (
	minBurst = 1 << 10
	maxBurst = 256 << 10
)

// BurstFor is the token-bucket depth used for cap r.
func BurstFor(r Rate) int {
	b := int(r / 20)
	return min(max(b, minBurst), maxBurst)
}

// Shaper is one direction's cap shared by sites in max-min fair shares by
// weight. While the cap binds, grants go out in start-time fair queueing
// order (each site's virtual clock advances by bytes/weight), so a site
// with a crowd cannot starve a quiet one and a site alone gets the whole
// cap. Without a cap it only passes bytes through.
type Shaper struct {
	mu      sync.Mutex
	lim     *rate.Limiter
	cap     Rate
	capped  atomic.Bool // cap.Capped(), read without mu on every write
	weights map[string]float64
	sites   map[string]*siteClock
	queue   waitQueue
	vclock  float64
	kick    chan struct{}
	done    chan struct{}
	closed  sync.Once
}

type siteClock struct {
	finish float64 // virtual finish tag of the site's last queued grant
	last   time.Time
}

type waiter struct {
	site  string
	n     int
	start float64
	ready chan struct{}
	gone  bool // the sender gave up; skip it
	index int
}

// NewShaper starts a shaper with cap r (Unlimited: pass-through).
func NewShaper(r Rate) *Shaper {
	s := &Shaper{
		lim:     rate.NewLimiter(rate.Inf, maxBurst),
		weights: map[string]float64{},
		sites:   map[string]*siteClock{},
		kick:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.SetCap(r)
	go s.dispatch()
	return s
}

// Close stops the dispatcher; waiting senders get ErrOff.
func (s *Shaper) Close() { s.closed.Do(func() { close(s.done) }) }

// SetCap changes the cap live.
func (s *Shaper) SetCap(r Rate) {
	s.mu.Lock()
	s.cap = r
	s.capped.Store(r.Capped() || r == Off)
	if r.Capped() {
		s.lim.SetLimit(rate.Limit(r))
		s.lim.SetBurst(BurstFor(r))
	} else {
		s.lim.SetLimit(rate.Inf)
	}
	s.mu.Unlock()
	s.poke()
}

// Cap is the cap in force.
func (s *Shaper) Cap() Rate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cap
}

// SetWeights replaces the sites' weights (missing sites weigh 1).
func (s *Shaper) SetWeights(w map[string]float64) {
	s.mu.Lock()
	s.weights = make(map[string]float64, len(w))
	for k, v := range w {
		if v > 0 {
			s.weights[k] = v
		}
	}
	s.mu.Unlock()
}

func (s *Shaper) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Wait blocks until n bytes of site may pass. Large n is taken in
// burst-sized pieces so other sites interleave.
func (s *Shaper) Wait(ctx context.Context, site string, n int) error {
	if !s.capped.Load() {
		return nil
	}
	for n > 0 {
		s.mu.Lock()
		c := s.cap
		s.mu.Unlock()
		switch {
		case c == Off:
			return ErrOff
		case !c.Capped():
			return nil
		}
		piece := min(n, BurstFor(c))
		if err := s.waitPiece(ctx, site, piece); err != nil {
			return err
		}
		n -= piece
	}
	return nil
}

func (s *Shaper) waitPiece(ctx context.Context, site string, n int) error {
	w := &waiter{site: site, n: n, ready: make(chan struct{})}
	s.mu.Lock()
	sc := s.sites[site]
	if sc == nil {
		sc = &siteClock{}
		s.sites[site] = sc
	}
	weight := s.weights[site]
	if weight <= 0 {
		weight = 1
	}
	// A site that was idle starts at the current virtual time: no credit
	// saved up while it had no demand.
	w.start = max(sc.finish, s.vclock)
	sc.finish = w.start + float64(n)/weight
	sc.last = time.Now()
	heap.Push(&s.queue, w)
	s.gcSites()
	s.mu.Unlock()
	s.poke()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		w.gone = true
		s.mu.Unlock()
		return ctx.Err()
	case <-s.done:
		return ErrOff
	}
}

// gcSites forgets clocks of sites idle for a minute so the map stays small.
func (s *Shaper) gcSites() {
	if len(s.sites) < 1024 {
		return
	}
	for k, sc := range s.sites {
		if time.Since(sc.last) > time.Minute && sc.finish <= s.vclock {
			delete(s.sites, k)
		}
	}
}

// dispatch hands out tokens to the queued piece with the smallest start tag.
func (s *Shaper) dispatch() {
	for {
		s.mu.Lock()
		for s.queue.Len() > 0 && s.queue[0].gone {
			heap.Pop(&s.queue)
		}
		if s.queue.Len() == 0 {
			s.mu.Unlock()
			select {
			case <-s.kick:
				continue
			case <-s.done:
				return
			}
		}
		w := heap.Pop(&s.queue).(*waiter)
		s.vclock = max(s.vclock, w.start)
		var delay time.Duration
		if s.cap.Capped() {
			// The piece is at most one burst; if the cap shrank below it
			// since, take what the bucket holds rather than stall.
			r := s.lim.ReserveN(time.Now(), min(w.n, s.lim.Burst()))
			delay = r.Delay()
		}
		s.mu.Unlock()
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return
			}
		}
		close(w.ready)
	}
}

// waitQueue is a min-heap of waiters by start tag.
type waitQueue []*waiter

func (q waitQueue) Len() int           { return len(q) }
func (q waitQueue) Less(i, j int) bool { return q[i].start < q[j].start }
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	w := old[len(old)-1]
	*q = old[:len(old)-1]
	return w
}
