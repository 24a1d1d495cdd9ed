package dsht

import (
	"bytes"
	"slices"
	"time"
)

// storage is a node's soft-state value store: per level, per key, a few
// values with expiry times, plus the recent request times that make the node
// "loaded" for a key. Times are unix nanoseconds from the node's clock.
//
// Every value is charged to the node that stored it (its sender), so that
// one member cannot take the whole store: a sender holds at most
// maxPerSender values; a put from a sender under that quota into a full
// store evicts a value of the sender holding the most; a full key gives way
// to a sender under-represented in it; and get's answer takes one value per
// sender before any sender's second. The cost is a 32-byte sender ID per
// value, a per-sender index (one map entry per key the sender has values
// under) and each entry's own key: BenchmarkStorageFull measured 436 heap
// bytes per stored 64-byte referral against 254 without (44 MB against
// 25 MB for a full store; a 1 KiB value costs about 1.2 KB either way).
//
// What the quota does not stop: a member with many identities (node IDs are
// hashes of keys anyone in the network can generate) gets a quota per
// identity. It bounds what one identity, and so one careless or buggy
// node, can take; admission (the network secret) is what keeps strangers
// out.
type storage struct {
	levels       []map[kadID]*keyEntry
	full         int   // l
	beta         int   // β
	window       int64 // load window, ns
	maxPerKey    int
	maxValues    int
	maxPerSender int
	maxKeys      int // keys tracked per level for requests alone
	total        int // values stored, all levels

	senders   map[ID]*senderLoad
	byCount   countBuckets
	lastSweep int64 // when the store was last swept
	swept     bool  // lastSweep is set
}

type keyEntry struct {
	values []storedValue
	// reqs is a ring of the last β+1 request times (grown on demand): the
	// node is loaded when the oldest of them is inside the window.
	reqs   []int64
	reqPos int
	stores uint64 // stores accepted, for the status page and the simulator
	// level and key locate the entry, so an eviction that empties it can
	// drop it at once (a flood of puts for new keys would otherwise leave
	// an empty entry per put until the next sweep).
	level int
	key   kadID
}

type storedValue struct {
	data    []byte
	expires int64
	from    ID // the sender it is charged to
}

// senderLoad is what one sender has stored here.
type senderLoad struct {
	values int
	// entries counts its values per key entry, so an eviction finds one
	// without walking the store. An entry is only deleted (by sweep) once it
	// holds no values, so these pointers never outlive their entries.
	entries map[*keyEntry]int
	// settled: at its quota, none of its values expires before this time,
	// so refusing it needs no look at its values until then.
	settled int64
}

// newStorage: maxPerSender 0 means maxValues/16 (at least 1).
func newStorage(levels, full, beta int, window time.Duration, maxPerKey, maxValues, maxPerSender int) *storage {
	if maxPerSender <= 0 {
		maxPerSender = max(1, maxValues/16)
	}
	s := &storage{full: full, beta: beta, window: int64(window), maxPerKey: maxPerKey, maxValues: maxValues,
		maxPerSender: maxPerSender, maxKeys: maxValues, senders: map[ID]*senderLoad{}}
	for range levels {
		s.levels = append(s.levels, map[kadID]*keyEntry{})
	}
	return s
}

// entry finds the key's entry, creating it if asked and the level tracks
// fewer than maxKeys keys. A put may create one beyond that, up to twice
// maxKeys: values are bounded on their own (maxValues), and keys known
// only from requests (any member can send a find_value for a random key)
// must not be able to shut out every new value.
func (s *storage) entry(level int, key kadID, create bool) *keyEntry {
	return s.entryUpTo(level, key, create, s.maxKeys)
}

func (s *storage) entryUpTo(level int, key kadID, create bool, limit int) *keyEntry {
	m := s.levels[level]
	e := m[key]
	if e == nil && create && len(m) < limit {
		e = &keyEntry{level: level, key: key}
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
		} else {
			s.uncharge(v.from, e)
		}
	}
	s.total -= len(e.values) - len(kept)
	clear(e.values[len(kept):])
	e.values = kept
}

// charge and uncharge keep the per-sender counts; they do not touch
// e.values or total.
func (s *storage) charge(from ID, e *keyEntry) {
	l := s.senders[from]
	if l == nil {
		l = &senderLoad{entries: map[*keyEntry]int{}}
		s.senders[from] = l
	}
	l.entries[e]++
	l.values++
	s.byCount.move(from, l.values-1, l.values)
}

func (s *storage) uncharge(from ID, e *keyEntry) {
	l := s.senders[from]
	if l == nil {
		return
	}
	if l.entries[e]--; l.entries[e] <= 0 {
		delete(l.entries, e)
	}
	l.values--
	s.byCount.move(from, l.values+1, l.values)
	if l.values <= 0 {
		delete(s.senders, from)
	}
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

// isFull: values from at least l distinct senders whose remaining TTLs are
// each at least half of ttl. Counting senders, not values, keeps the
// hot-key rule what CoralCDN meant (l proxies already announced there)
// while one member's many values cannot make a key's root look full and
// so push everyone else's referrals off it.
func (s *storage) isFull(level int, key kadID, ttl time.Duration, now int64) bool {
	e := s.entry(level, key, false)
	if e == nil {
		return false
	}
	s.expire(e, now)
	var senders []ID
	for _, v := range e.values {
		if v.expires-now >= int64(ttl)/2 && !slices.Contains(senders, v.from) {
			senders = append(senders, v.from)
		}
	}
	return len(senders) >= s.full
}

// put stores or renews a value on behalf of from, the node that sent it.
// Renewing a value it holds (the same bytes, whoever sends them) always
// works and leaves it charged to whoever stored it first. A new value is
// refused when from is at its quota, or when the key is full of values that
// outlive it and no other sender holds more than its share of them; a full
// store makes room by evicting (makeRoom).
func (s *storage) put(level int, key kadID, from ID, data []byte, ttl time.Duration, now int64) bool {
	if s.total >= s.maxValues || len(s.levels[level]) >= 2*s.maxKeys {
		// Before e is taken: a sweep may delete an entry with no values.
		s.sweepUnderPressure(now)
	}
	e := s.entryUpTo(level, key, true, 2*s.maxKeys)
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
	ok := s.underQuota(from, now) && s.makeRoom(e, from, exp, now)
	if ok {
		e.values = append(e.values, storedValue{data: bytes.Clone(data), expires: exp, from: from})
		s.total++
		s.charge(from, e)
		e.stores++
	}
	if len(e.values) == 0 && len(e.reqs) == 0 {
		delete(s.levels[level], key) // created for a refused put
	}
	return ok
}

// underQuota: from holds fewer than maxPerSender values. At the quota, its
// expired values (which sweep would only drop later) are dropped first, at
// most once per expiry: the flooder this refuses costs one walk over its
// own values per value of its that expires.
func (s *storage) underQuota(from ID, now int64) bool {
	l := s.senders[from]
	if l == nil || l.values < s.maxPerSender {
		return true
	}
	if now < l.settled {
		return false
	}
	next := int64(0)
	for e := range l.entries {
		s.expire(e, now)
		for _, v := range e.values {
			if v.from == from && (next == 0 || v.expires < next) {
				next = v.expires
			}
		}
	}
	if l = s.senders[from]; l == nil || l.values < s.maxPerSender {
		return true
	}
	l.settled = next
	return false
}

// makeRoom frees a place for a new value of from expiring at exp in e, or
// says there is none.
//
// A full key gives up a value (keyVictim) so that its places are shared
// between senders: one member's sixteen day-long values under a popular key
// must not keep out the other proxies' referrals, nor push them out.
//
// A full store evicts one of the values of the sender holding the most,
// not the value expiring first: a flooder's values are the day-long ones,
// so expiring-first would throw out exactly the short-lived "downloading"
// and fresh referrals the store is for, while a legitimate proxy holds few
// values at any one node (its keys spread over the whole network). Which of
// the heaviest sender's values goes is arbitrary: they are all its own.
func (s *storage) makeRoom(e *keyEntry, from ID, exp, now int64) bool {
	if len(e.values) >= s.maxPerKey {
		i, forced := s.keyVictim(e, from)
		if i < 0 || !forced && e.values[i].expires >= exp {
			return false
		}
		s.remove(e, i)
		return true
	}
	if s.total < s.maxValues {
		return true
	}
	heaviest, ok := s.byCount.heaviest()
	if !ok {
		return false
	}
	for victim := range s.senders[heaviest].entries {
		s.remove(victim, victim.firstExpiring(heaviest))
		if victim != e && len(victim.values) == 0 && (len(victim.reqs) == 0 || now-victim.lastRequest() >= s.window) {
			delete(s.levels[victim.level], victim.key)
		}
		return true
	}
	return false
}

// keyVictim picks the value a full key would give up for from's, which
// holds c values in it. When another sender holds at least c+2, it is that
// sender's first-expiring value, forced out whatever its lifetime
// (afterwards the two are at most one apart, so two senders never take
// turns evicting each other). Otherwise it is the first-expiring value of
// from's own or of a sender holding more than c, which goes only if the
// new value outlives it: a sender may swap its own values for longer-lived
// ones, but never push out those of a sender holding fewer.
func (s *storage) keyVictim(e *keyEntry, from ID) (i int, forced bool) {
	c := e.countFrom(from)
	heavy, n := ID{}, 0
	for _, v := range e.values {
		if k := e.countFrom(v.from); v.from != from && k > n {
			heavy, n = v.from, k
		}
	}
	if n >= c+2 {
		return e.firstExpiring(heavy), true
	}
	i = -1
	for j, v := range e.values {
		if v.from != from && e.countFrom(v.from) <= c {
			continue
		}
		if i < 0 || v.expires < e.values[i].expires {
			i = j
		}
	}
	return i, false
}

func (e *keyEntry) countFrom(from ID) int {
	n := 0
	for _, v := range e.values {
		if v.from == from {
			n++
		}
	}
	return n
}

// firstExpiring is the index of from's value in e that expires first, or
// -1.
func (e *keyEntry) firstExpiring(from ID) int {
	i := -1
	for j, v := range e.values {
		if v.from == from && (i < 0 || v.expires < e.values[i].expires) {
			i = j
		}
	}
	return i
}

// remove drops value i of e (order is not kept).
func (s *storage) remove(e *keyEntry, i int) {
	s.uncharge(e.values[i].from, e)
	last := len(e.values) - 1
	e.values[i] = e.values[last]
	e.values[last] = storedValue{}
	e.values = e.values[:last]
	s.total--
}

// sweepUnderPressure sweeps a store that is out of room, at most once per
// load window (a sweep walks every key: milliseconds for 100,000), so
// expired values and stale request-only keys make room before live values
// are evicted or new keys refused.
func (s *storage) sweepUnderPressure(now int64) {
	if s.swept && now-s.lastSweep < s.window {
		return
	}
	s.sweep(now)
}

// get returns up to limit live values for the key, leaving out exclude (a
// put+get's own value). Each sender's longest-lived value comes first
// (longest-lived first among them), then each one's second, and so on: one
// sender's many long-lived values cannot crowd the other proxies' referrals
// out of an answer.
func (s *storage) get(level int, key kadID, now int64, limit int, exclude []byte) []WireValue {
	e := s.entry(level, key, false)
	if e == nil {
		return nil
	}
	s.expire(e, now)
	vals := slices.Clone(e.values)
	slices.SortFunc(vals, byExpiryDesc)
	rank := make(map[ID]int, len(vals))
	ranked := make([]rankedValue, len(vals))
	for i, v := range vals {
		ranked[i] = rankedValue{v, rank[v.from]}
		rank[v.from]++
	}
	slices.SortStableFunc(ranked, func(a, b rankedValue) int { return a.rank - b.rank })
	var out []WireValue
	for _, r := range ranked {
		if len(out) == limit {
			break
		}
		v := r.storedValue
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

type rankedValue struct {
	storedValue
	rank int // how many of the same sender's values come before it
}

func byExpiryDesc(a, b storedValue) int {
	if a.expires != b.expires {
		if a.expires > b.expires {
			return -1
		}
		return 1
	}
	return bytes.Compare(a.data, b.data)
}

// sweep drops expired values and keys with neither values nor recent
// requests.
func (s *storage) sweep(now int64) {
	s.lastSweep, s.swept = now, true
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

// countBuckets finds a sender holding the most values in O(1) however many
// senders there are (a full store may hold 100,000 of one value each):
// senders are bucketed by how many values they hold.
type countBuckets struct {
	byCount []map[ID]struct{} // byCount[c]: the senders holding c values, c ≥ 1
	top     int               // the highest non-empty bucket, 0 when none
}

// move records that id went from holding from values to holding to.
func (b *countBuckets) move(id ID, from, to int) {
	if from > 0 {
		delete(b.byCount[from], id)
	}
	if to > 0 {
		for len(b.byCount) <= to {
			b.byCount = append(b.byCount, nil)
		}
		if b.byCount[to] == nil {
			b.byCount[to] = map[ID]struct{}{}
		}
		b.byCount[to][id] = struct{}{}
	}
	b.top = max(b.top, to)
	for b.top > 0 && len(b.byCount[b.top]) == 0 {
		b.top--
	}
}

// heaviest returns a sender holding the most values.
func (b *countBuckets) heaviest() (ID, bool) {
	if b.top == 0 {
		return ID{}, false
	}
	for id := range b.byCount[b.top] {
		return id, true
	}
	return ID{}, false
}
