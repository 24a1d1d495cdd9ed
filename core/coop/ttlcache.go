package coop

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// ttlLRU is a size-bounded LRU whose entries expire ttl after they were
// added, checked when an entry is read. golang-lru's expirable LRU does the
// same with a goroutine that wakes every ttl/100 to purge: the Coop's three
// were 10 of the ~56 wakeups a second of an idle node with no peers, each
// costing the scheduler more than the purge itself (issue 17). Expired
// entries left unread only hold their slot until the size bound evicts
// them.
type ttlLRU[K comparable, V any] struct {
	c   *lru.Cache[K, ttlEntry[V]] // safe for concurrent use
	ttl time.Duration
	now func() time.Time
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

// newTTLLRU holds at most size entries, each for ttl on now's clock.
func newTTLLRU[K comparable, V any](size int, ttl time.Duration, now func() time.Time) *ttlLRU[K, V] {
	c, err := lru.New[K, ttlEntry[V]](size)
	if err != nil {
		panic(err) // size <= 0: a programming error
	}
	return &ttlLRU[K, V]{c: c, ttl: ttl, now: now}
}

// Add stores v under k for ttl from now, replacing any earlier entry.
func (t *ttlLRU[K, V]) Add(k K, v V) {
	t.c.Add(k, ttlEntry[V]{v: v, expires: t.now().Add(t.ttl)})
}

// Get returns k's live entry and marks it recently used.
func (t *ttlLRU[K, V]) Get(k K) (V, bool) {
	e, ok := t.c.Get(k)
	return t.live(k, e, ok)
}

// Peek returns k's live entry without marking it used.
func (t *ttlLRU[K, V]) Peek(k K) (V, bool) {
	e, ok := t.c.Peek(k)
	return t.live(k, e, ok)
}

// Contains reports whether k has a live entry.
func (t *ttlLRU[K, V]) Contains(k K) bool {
	_, ok := t.Peek(k)
	return ok
}

// Remove drops k's entry.
func (t *ttlLRU[K, V]) Remove(k K) { t.c.Remove(k) }

// live drops an expired entry and reports it missing.
func (t *ttlLRU[K, V]) live(k K, e ttlEntry[V], ok bool) (V, bool) {
	if ok && t.now().Before(e.expires) {
		return e.v, true
	}
	if ok {
		t.c.Remove(k)
	}
	var zero V
	return zero, false
}
