package dsht

import (
	"bytes"
	"slices"
	"time"
)

// storage is a node's soft-state value store: per level, per key, a few
// values with expiry times, plus the recent request times that make the node
// "loaded" for a key. Times are unix nanoseconds from the node's clock.
type storage struct {
	levels    []map[kadID]*keyEntry
	full      int   // l
	beta      int   // β
	window    int64 // load window, ns
	maxPerKey int
	maxValues int
	maxKeys   int // keys tracked per level, with values or only requests
	total     int // values stored, all levels
}

type keyEntry struct {
	values []storedValue
	// reqs is a ring of the last β+1 request times (grown on demand): the
	// node is loaded when the oldest of them is inside the window.
	reqs   []int64
	reqPos int
	stores uint64 // stores accepted, for the status page and the simulator
}

type storedValue struct {
	data    []byte
	expires int64
}

func newStorage(levels, full, beta int, window time.Duration, maxPerKey, maxValues int) *storage {
	s := &storage{full: full, beta: beta, window: int64(window), maxPerKey: maxPerKey, maxValues: maxValues,
		maxKeys: maxValues}
	for range levels {
		s.levels = append(s.levels, map[kadID]*keyEntry{})
	}
	return s
}

func (s *storage) entry(level int, key kadID, create bool) *keyEntry {
	m := s.levels[level]
	e := m[key]
	if e == nil && create && len(m) < s.maxKeys {
		e = &keyEntry{}
		m[key] = e
	}
	return e
}

// expire drops the key's expired values.
func (s *storage) expire(e *keyEntry, now int64) {
	kept := e.values[:0]
	for _, v := range e.values {
		if v.expires > now {
			kept = append(kept, v)
		}
	}
	s.total -= len(e.values) - len(kept)
	clear(e.values[len(kept):])
	e.values = kept
}

// request counts one request for the key (get, probe or store).
func (s *storage) request(level int, key kadID, now int64) {
	e := s.entry(level, key, true)
	if e == nil {
		return
	}
	if len(e.reqs) <= s.beta {
		e.reqs = append(e.reqs, now)
		return
	}
	e.reqs[e.reqPos] = now
	e.reqPos = (e.reqPos + 1) % len(e.reqs)
}

func (e *keyEntry) lastRequest() int64 {
	if len(e.reqs) == 0 {
		return 0
	}
	return e.reqs[(e.reqPos+len(e.reqs)-1)%len(e.reqs)]
}

// loaded: more than β requests for the key within the window.
func (s *storage) loaded(level int, key kadID, now int64) bool {
	e := s.entry(level, key, false)
	if e == nil || len(e.reqs) <= s.beta {
		return false
	}
	oldest := e.reqs[e.reqPos] // the ring is full, so reqPos is the oldest
	return now-oldest < s.window
}

// isFull: at least l values whose remaining TTLs are each at least half of
// ttl.
func (s *storage) isFull(level int, key kadID, ttl time.Duration, now int64) bool {
	e := s.entry(level, key, false)
	if e == nil {
		return false
	}
	s.expire(e, now)
	n := 0
	for _, v := range e.values {
		if v.expires-now >= int64(ttl)/2 {
			n++
		}
	}
	return n >= s.full
}

// put stores or renews a value. It refuses a new value when the node is out
// of room; renewing a value it holds always works.
func (s *storage) put(level int, key kadID, data []byte, ttl time.Duration, now int64) bool {
	e := s.entry(level, key, true)
	if e == nil {
		return false
	}
	s.expire(e, now)
	exp := now + int64(ttl)
	for i := range e.values {
		if bytes.Equal(e.values[i].data, data) {
			e.values[i].expires = max(e.values[i].expires, exp)
			e.stores++
			return true
		}
	}
	if len(e.values) >= s.maxPerKey {
		// Drop the value that expires first, unless the new one does.
		i := 0
		for j := range e.values {
			if e.values[j].expires < e.values[i].expires {
				i = j
			}
		}
		if e.values[i].expires >= exp {
			return false
		}
		e.values[i] = storedValue{data: bytes.Clone(data), expires: exp}
		e.stores++
		return true
	}
	if s.total >= s.maxValues {
		return false
	}
	e.values = append(e.values, storedValue{data: bytes.Clone(data), expires: exp})
	s.total++
	e.stores++
	return true
}

// get returns up to max live values for the key, longest-lived first,
// leaving out exclude (a put+get's own value).
func (s *storage) get(level int, key kadID, now int64, limit int, exclude []byte) []WireValue {
	e := s.entry(level, key, false)
	if e == nil {
		return nil
	}
	s.expire(e, now)
	vals := slices.Clone(e.values)
	slices.SortFunc(vals, func(a, b storedValue) int {
		if a.expires != b.expires {
			if a.expires > b.expires {
				return -1
			}
			return 1
		}
		return bytes.Compare(a.data, b.data)
	})
	var out []WireValue
	for _, v := range vals {
		if len(out) == limit {
			break
		}
		if exclude != nil && bytes.Equal(v.data, exclude) {
			continue
		}
		ms := (v.expires - now) / int64(time.Millisecond)
		if ms <= 0 {
			continue
		}
		out = append(out, WireValue{Data: bytes.Clone(v.data), TTLMs: ms})
	}
	return out
}

// sweep drops expired values and keys with neither values nor recent
// requests.
func (s *storage) sweep(now int64) {
	for _, m := range s.levels {
		for k, e := range m {
			s.expire(e, now)
			if len(e.values) > 0 {
				continue
			}
			if len(e.reqs) == 0 || now-e.lastRequest() >= s.window {
				delete(m, k)
			}
		}
	}
}

// stores returns how many stores the node accepted for the key.
func (s *storage) stores(level int, key kadID) uint64 {
	if e := s.entry(level, key, false); e != nil {
		return e.stores
	}
	return 0
}

// counts returns keys holding values and values, per level.
func (s *storage) counts(level int, now int64) (keys, values int) {
	for _, e := range s.levels[level] {
		s.expire(e, now)
		if len(e.values) > 0 {
			keys++
			values += len(e.values)
		}
	}
	return keys, values
}
