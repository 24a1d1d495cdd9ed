package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// TestHotCacheFollowsStore: a hit answered from memory is never older than
// the store: whatever changes the stored object (deleted, revalidated,
// replaced) is what the next visitor gets.
func TestHotCacheFollowsStore(t *testing.T) {
	for _, size := range []int{2, 100 << 10} { // in memory; header only, body from its file
		v1 := "v1" + strings.Repeat("x", size-2)
		tests := []struct {
			name   string
			change func(e *env, key string)
			cache  string // X-Coral-Cache after the change
			body   string
			xv     string
		}{
			{"deleted", func(e *env, key string) { _ = e.st.Delete(key) }, CacheMiss, v1, "1"},
			{"meta updated", func(e *env, key string) {
				_ = e.st.UpdateMeta(key, func(m *store.Meta) error { m.Header.Set("X-V", "2"); return nil })
			}, CacheHit, v1, "2"},
			{"replaced", func(e *env, key string) {
				old, _ := e.st.Stat(key)
				w := e.st.Create(key, 0)
				_, _ = w.Write([]byte("v2"))
				old.Size = 2
				if _, err := w.Commit(old); err != nil {
					panic(err)
				}
			}, CacheHit, "v2", "1"},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%d/%s", size, tt.name), func(t *testing.T) {
				e := newEnv(t, nil)
				o := newOrigin(t, e.clock, static(v1, "Cache-Control", "max-age=600", "X-V", "1"))
				expect(t, "miss", e.get(o, "/h"), 200, CacheMiss, v1)
				expect(t, "first hit (fills the hot cache)", e.get(o, "/h"), 200, CacheHit, v1)
				expect(t, "hot hit", e.get(o, "/h"), 200, CacheHit, v1)
				// A handler records its trace after the response is out.
				testkit.Eventually(t, 10*time.Second, "a hit from the hot cache among the traces", func() bool {
					for _, tr := range e.p.RecentTraces() {
						if strings.Contains(tr.Path, "hot") {
							return true
						}
					}
					return false
				})
				tt.change(e, object.KeyOf(o.canon("/h")).String())
				r := e.get(o, "/h")
				expect(t, "after the change", r, 200, tt.cache, tt.body)
				if r.header.Get("X-V") != tt.xv {
					t.Errorf("X-V = %q, want %q", r.header.Get("X-V"), tt.xv)
				}
				if tt.cache == CacheHit && r.header.Get("Content-Length") != fmt.Sprint(len(tt.body)) {
					t.Errorf("Content-Length = %q, want %d", r.header.Get("Content-Length"), len(tt.body))
				}
			})
		}
	}
}

// TestHotCacheBudget: with room for a few objects only, every visitor still
// gets the right object, and requests the hot cache must not answer (a
// Range, a conditional) get the full treatment.
func TestHotCacheBudget(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MemoryBytes = 3 * (1024 + hotOverhead) })
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Etag", `"`+r.URL.Path+`"`)
		fmt.Fprintf(w, "%-1024s", r.URL.Path)
	})
	for round := range 3 {
		for i := range 10 {
			path := fmt.Sprintf("/o%d", i)
			want := fmt.Sprintf("%-1024s", path)
			cache := CacheHit
			if round == 0 {
				cache = CacheMiss
			}
			expect(t, path, e.get(o, path), 200, cache, want)
			expect(t, path+" again", e.get(o, path), 200, CacheHit, want)
			expect(t, path+" range", e.get(o, path, "Range", "bytes=1-2"), 206, CacheHit, want[1:3])
			if r := e.get(o, path, "If-None-Match", `"`+path+`"`); r.status != http.StatusNotModified {
				t.Fatalf("%s conditional: %d", path, r.status)
			}
		}
	}
	if e.p.hot.bytes > e.p.hot.max {
		t.Errorf("hot cache holds %d bytes, budget %d", e.p.hot.bytes, e.p.hot.max)
	}
	if n := o.hits.Load(); n != 10 {
		t.Errorf("origin hits = %d, want 10", n)
	}
}

// TestHotCacheRing: under puts, replacements and removals the budget holds
// and every entry in the map sits in its ring slot.
func TestHotCacheRing(t *testing.T) {
	c := newHotCache(10 * 100)
	entry := func(i int) *hotEntry { return &hotEntry{key: hotKey{"h", fmt.Sprint(i % 37)}, size: 100} }
	for i := range 500 {
		e := entry(i)
		c.put(e)
		if i%3 == 0 {
			if got := c.get(e.key); got != nil {
				got.used.Store(true)
			}
		}
		if i%7 == 0 {
			c.remove(e)
		}
		var sum int64
		for slot, v := range c.ring {
			if v.slot != slot || c.m[v.key] != v {
				t.Fatalf("step %d: ring slot %d holds an entry claiming slot %d (in map: %v)", i, slot, v.slot, c.m[v.key] == v)
			}
			sum += v.size
		}
		if len(c.m) != len(c.ring) || sum != c.bytes || c.bytes > c.max {
			t.Fatalf("step %d: %d in map, %d in ring, %d bytes counted, %d summed, budget %d", i, len(c.m), len(c.ring), c.bytes, sum, c.max)
		}
	}
}
