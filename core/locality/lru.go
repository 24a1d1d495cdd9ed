package locality

import "container/list"

// lru is a map bounded to n entries that forgets the least recently used.
// Not safe for concurrent use; callers hold their own lock.
type lru[K comparable, V any] struct {
	n     int
	ll    *list.List // front: most recent
	items map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	k K
	v V
}

func newLRU[K comparable, V any](n int) *lru[K, V] {
	return &lru[K, V]{n: max(n, 1), ll: list.New(), items: map[K]*list.Element{}}
}

// get returns the value for k and marks it used.
func (c *lru[K, V]) get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

// peek returns the value for k without marking it used.
func (c *lru[K, V]) peek(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		return e.Value.(*lruEntry[K, V]).v, true
	}
	var zero V
	return zero, false
}

// put sets k, evicting the least recently used entry when full.
func (c *lru[K, V]) put(k K, v V) {
	if e, ok := c.items[k]; ok {
		e.Value.(*lruEntry[K, V]).v = v
		c.ll.MoveToFront(e)
		return
	}
	if c.ll.Len() >= c.n {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.items, old.Value.(*lruEntry[K, V]).k)
	}
	c.items[k] = c.ll.PushFront(&lruEntry[K, V]{k: k, v: v})
}

func (c *lru[K, V]) len() int { return c.ll.Len() }

// each calls fn for every entry, most recent first, without reordering.
func (c *lru[K, V]) each(fn func(K, V)) {
	for e := c.ll.Front(); e != nil; e = e.Next() {
		le := e.Value.(*lruEntry[K, V])
		fn(le.k, le.v)
	}
}
