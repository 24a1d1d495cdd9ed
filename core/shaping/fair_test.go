package shaping

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// crowd runs senders per site, each sending chunk-sized pieces through s,
// until ctx ends, and returns the bytes each site got through.
func crowd(ctx context.Context, s *Shaper, senders map[string]int, chunk int) map[string]int64 {
	var mu sync.Mutex
	got := map[string]int64{}
	var wg sync.WaitGroup
	for site, n := range senders {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s.Wait(ctx, site, chunk) == nil {
					mu.Lock()
					got[site] += int64(chunk)
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return got
}

func jain(xs ...float64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += x
		sq += x * x
	}
	return sum * sum / (float64(len(xs)) * sq)
}

func TestFairShareEqualWeightsUnderCrowd(t *testing.T) {
	s := NewShaper(512 << 10)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got := crowd(ctx, s, map[string]int{"crowd.example": 40, "calm.example": 4}, 8<<10)
	if j := jain(float64(got["crowd.example"]), float64(got["calm.example"])); j < 0.95 {
		t.Fatalf("Jain index %.3f < 0.95 (bytes %v): the crowd starves the calm site", j, got)
	}
}

func TestFairShareByWeight(t *testing.T) {
	s := NewShaper(512 << 10)
	defer s.Close()
	s.SetWeights(map[string]float64{"heavy.example": 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got := crowd(ctx, s, map[string]int{"heavy.example": 5, "light.example": 5}, 8<<10)
	ratio := float64(got["heavy.example"]) / float64(got["light.example"])
	if math.Abs(ratio-2)/2 > 0.10 {
		t.Fatalf("weights 2:1 gave %.2f:1 (bytes %v)", ratio, got)
	}
}

// A quiet site that asks while a crowd has a long backlog queued is
// served next, not after the crowd's backlog: it keeps its fair share.
func TestQuietSiteIsServedAheadOfACrowdsBacklog(t *testing.T) {
	s := NewShaper(1 << 20) // 8 KiB pieces: 128 grants a second
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.Wait(ctx, "crowd.example", 8<<10)
			granted.Add(1)
		}()
	}
	queued := func() int { s.mu.Lock(); defer s.mu.Unlock(); return s.queue.Len() }
	testkit.Eventually(t, 10*time.Second, "30 crowd pieces queued", func() bool { return queued() >= 30 })
	before := granted.Load()
	if err := s.Wait(ctx, "quiet.example", 8<<10); err != nil {
		t.Fatal(err)
	}
	// The quiet piece's start tag is the current virtual time; the crowd's
	// queued pieces are stacked behind each other: only a few go first.
	if ahead := granted.Load() - before; ahead > 10 {
		t.Errorf("%d crowd pieces were granted before the quiet site's one", ahead)
	}
	wg.Wait()
}

func TestOneSecondWindowStaysNearCap(t *testing.T) {
	const cap = 256 << 10
	s := NewShaper(cap)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	got := crowd(ctx, s, map[string]int{"a": 20}, 32<<10)
	if got["a"] > cap*110/100 {
		t.Fatalf("%d bytes in the first second, cap %d: burst too large", got["a"], cap)
	}
}

func TestSetCapLive(t *testing.T) {
	s := NewShaper(1 << 10) // 1 KiB/s: a 64 KiB piece would take a minute
	defer s.Close()
	done := make(chan error, 1)
	go func() { done <- s.Wait(context.Background(), "a", 64<<10) }()
	s.SetCap(Unlimited)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lifting the cap did not release a waiting sender")
	}
}

func TestWaitGivesUpWithContext(t *testing.T) {
	s := NewShaper(1 << 10)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx, "a", 1<<20); err == nil {
		t.Fatal("1 MiB passed a 1 KiB/s cap at once")
	}
}
