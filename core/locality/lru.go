package locality

import "github.com/hashicorp/golang-lru/v2/simplelru"

// newLRU returns a map bounded to n entries (at least one) that forgets the
// least recently used. Not safe for concurrent use; callers hold their own
// lock, as they do for the rest of their state.
func newLRU[K comparable, V any](n int) *simplelru.LRU[K, V] {
	c, err := simplelru.NewLRU[K, V](max(n, 1), nil)
	if err != nil { // only for a size below one, excluded above
		panic("locality: " + err.Error())
	}
	return c
}
