// Package testkit is what Coral's tests share: waiting for a condition with
// a deadline (never a bare sleep as synchronisation), a settable clock and a
// log sink goroutines may write to while the test reads it.
// It links nothing of Coral, so any package's tests may import it.
package testkit

import (
	"sync"
	"testing"
	"time"
)

// pollEvery is how often Eventually re-checks: short enough that a test
// waits little past the moment its condition holds, long enough not to spin.
const pollEvery = 10 * time.Millisecond

// Eventually polls cond until it holds and returns how long that took; it
// fails the test, naming what it waited for, once timeout has passed. It is
// for background effects (an announcement stored, a cluster formed), never a
// timed assertion: pick a timeout far above the expected time.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
	return time.Since(start)
}

// Clock is a settable clock, safe for concurrent use. Its zero value reads
// a fixed instant in 2026; Now is what components take as their clock.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// epoch is the zero Clock's time: fixed, so runs repeat.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewClock returns a clock that reads at.
func NewClock(at time.Time) *Clock { return &Clock{t: at} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = epoch
	}
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		c.t = epoch
	}
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// LogBuffer collects log output (nodes', a component's) that goroutines
// write while the test reads it, to check or to print when it fails.
type LogBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (l *LogBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	return len(b), nil
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

// BenchGets runs get warm times (filling caches), then measures it in
// parallel, size bytes a call; the first error fails the benchmark.
func BenchGets(b *testing.B, get func() error, size, warm int) {
	b.Helper()
	for range warm {
		if err := get(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
