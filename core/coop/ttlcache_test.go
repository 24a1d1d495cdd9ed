package coop

import (
	"testing"
	"time"
)

// Entries live for the TTL from when they were added (re-adding renews),
// Peek and Contains do not change what Get sees, and the size bound
// evicts the least recently used.
func TestTTLLRU(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTTLLRU[string, int](2, 10*time.Second, func() time.Time { return now })
	c.Add("a", 1)
	now = now.Add(5 * time.Second)
	c.Add("b", 2)
	steps := []struct {
		advance time.Duration
		key     string
		want    int
		ok      bool
	}{
		{0, "a", 1, true},
		{4 * time.Second, "a", 1, true},  // 9 s old
		{time.Second, "a", 0, false},     // 10 s old: expired
		{0, "b", 2, true},                // 5 s old
		{5 * time.Second, "b", 0, false}, // 10 s old
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if c.Contains(s.key) != s.ok {
			t.Errorf("step %d: Contains(%q) = %v, want %v", i, s.key, !s.ok, s.ok)
		}
		if v, ok := c.Peek(s.key); v != s.want || ok != s.ok {
			t.Errorf("step %d: Peek(%q) = %d, %v; want %d, %v", i, s.key, v, ok, s.want, s.ok)
		}
		if v, ok := c.Get(s.key); v != s.want || ok != s.ok {
			t.Errorf("step %d: Get(%q) = %d, %v; want %d, %v", i, s.key, v, ok, s.want, s.ok)
		}
	}
	c.Add("a", 3)
	c.Add("b", 4)
	c.Get("a")
	c.Add("c", 5) // evicts b, the least recently used
	if c.Contains("b") || !c.Contains("a") || !c.Contains("c") {
		t.Errorf("size bound: a %v b %v c %v; want a and c kept", c.Contains("a"), c.Contains("b"), c.Contains("c"))
	}
	now = now.Add(9 * time.Second)
	c.Add("a", 6) // renewed
	now = now.Add(5 * time.Second)
	if v, ok := c.Get("a"); !ok || v != 6 {
		t.Errorf("renewed entry: %d, %v; want 6, true", v, ok)
	}
	if c.Contains("c") {
		t.Error("c outlived its TTL")
	}
	c.Remove("a")
	if c.Contains("a") {
		t.Error("a still there after Remove")
	}
}
