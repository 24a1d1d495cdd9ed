package dsht

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

func testStorage() *storage {
	return newStorage(3, 4, 12, time.Minute, 8, 100, 0)
}

var keyA = kadOf(ID{1})

// Senders are the nodes values are stored on behalf of.
var senderA, senderB = ID{0xa}, ID{0xb}

func senderN(i int) ID { return ID{0x5e, byte(i >> 16), byte(i >> 8), byte(i)} }

const sec = int64(time.Second)

func TestStorageFull(t *testing.T) {
	tests := []struct {
		name   string
		ttls   []time.Duration // values stored at t=0
		at     int64           // when fullness is asked
		newTTL time.Duration
		want   bool
	}{
		{"empty", nil, 0, time.Hour, false},
		{"three long values", []time.Duration{time.Hour, time.Hour, time.Hour}, 0, time.Hour, false},
		{"four long values", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, 0, time.Hour, true},
		{"four long values from one sender", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, -1, time.Hour, false},
		{"four values, one too short for the new TTL", []time.Duration{time.Hour, time.Hour, time.Hour, 29 * time.Minute}, 0, time.Hour, false},
		{"exactly half counts", []time.Duration{30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute}, 0, time.Hour, true},
		{"short new value: short old ones suffice", []time.Duration{20 * time.Second, 20 * time.Second, 20 * time.Second, 20 * time.Second}, 0, 20 * time.Second, true},
		{"aged below half", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, 31 * 60 * sec, time.Hour, false},
		{"expired values do not count", []time.Duration{time.Second, time.Second, time.Second, time.Second}, 2 * sec, time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testStorage()
			oneSender := tt.at < 0 // the case's values all come from one sender
			for i, ttl := range tt.ttls {
				from := senderN(i)
				if oneSender {
					from = senderA
				}
				if !s.put(0, keyA, from, []byte(fmt.Sprint("v", i)), ttl, 0) {
					t.Fatalf("put %d refused", i)
				}
			}
			if got := s.isFull(0, keyA, tt.newTTL, max(tt.at, 0)); got != tt.want {
				t.Errorf("isFull = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStorageLoaded(t *testing.T) {
	tests := []struct {
		name     string
		requests []int64 // request times
		at       int64
		want     bool
	}{
		{"none", nil, 0, false},
		{"β requests are not more than β", times(12, 0, sec), 12 * sec, false},
		{"β+1 within the minute", times(13, 0, sec), 13 * sec, true},
		{"β+1 spread over more than a minute", times(13, 0, 5*sec), 60 * sec, false},
		{"loaded wears off", times(13, 0, sec), 13*sec + 60*sec, false},
		{"only the last β+1 matter", append(times(100, 0, sec), times(13, 200*sec, sec)...), 213 * sec, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testStorage()
			for _, r := range tt.requests {
				s.request(0, keyA, r)
			}
			if got := s.loaded(0, keyA, tt.at); got != tt.want {
				t.Errorf("loaded = %v, want %v", got, tt.want)
			}
		})
	}
}

func times(n int, start, step int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = start + int64(i)*step
	}
	return out
}

func TestStorageExpiryAndRenewal(t *testing.T) {
	s := testStorage()
	s.put(1, keyA, senderA, []byte("a"), 10*time.Second, 0)
	s.put(1, keyA, senderA, []byte("b"), 20*time.Second, 0)
	if got := s.get(1, keyA, 5*sec, 10, nil); len(got) != 2 || string(got[0].Data) != "b" || got[0].TTLMs != 15000 {
		t.Fatalf("at 5s got %+v, want b (15s left) then a", got)
	}
	if got := s.get(1, keyA, 11*sec, 10, nil); len(got) != 1 || string(got[0].Data) != "b" {
		t.Fatalf("at 11s got %+v, want only b", got)
	}
	// The owner renews a: it comes back as one value, not two.
	s.put(1, keyA, senderA, []byte("b"), time.Minute, 11*sec)
	if got := s.get(1, keyA, 30*sec, 10, nil); len(got) != 1 || got[0].TTLMs != 41000 {
		t.Fatalf("after renewal got %+v, want b with 41s left", got)
	}
	if got := s.get(0, keyA, 0, 10, nil); got != nil {
		t.Fatalf("level 0 got %+v; levels are separate", got)
	}
	if got := s.get(1, keyA, 30*sec, 10, []byte("b")); got != nil {
		t.Fatalf("excluding b got %+v", got)
	}
	s.sweep(120 * sec)
	if k, v := s.counts(1, 120*sec); k != 0 || v != 0 || s.total != 0 {
		t.Fatalf("after expiry: %d keys %d values total %d", k, v, s.total)
	}
	if len(s.levels[1]) != 0 {
		t.Fatalf("swept storage still tracks %d keys", len(s.levels[1]))
	}
}

func TestStorageBounds(t *testing.T) {
	s := newStorage(1, 4, 12, time.Minute, 3, 5, 4)
	for i := range 3 {
		s.put(0, keyA, senderA, []byte{byte(i)}, time.Duration(i+1)*time.Minute, 0)
	}
	// A fourth value for the key evicts the one expiring first...
	if !s.put(0, keyA, senderA, []byte{9}, time.Hour, 0) {
		t.Fatal("longer-lived value refused")
	}
	got := s.get(0, keyA, 0, 10, nil)
	if len(got) != 3 || bytes.Equal(got[2].Data, []byte{0}) {
		t.Fatalf("got %+v; the 1-minute value should be gone", got)
	}
	// ...but not for a value that would expire first itself.
	if s.put(0, keyA, senderA, []byte{8}, time.Second, 0) {
		t.Fatal("short value displaced a longer one")
	}
	// The sender's quota (4) refuses its fifth value, not renewals.
	keyB, keyC := kadOf(ID{2}), kadOf(ID{3})
	if !s.put(0, keyB, senderA, []byte{1}, time.Hour, 0) {
		t.Fatal("fourth value of the sender refused")
	}
	if s.put(0, keyB, senderA, []byte{2}, time.Hour, 0) {
		t.Fatal("value stored beyond the sender's quota")
	}
	if !s.put(0, keyB, senderA, []byte{1}, 2*time.Hour, 0) {
		t.Fatal("renewal refused at the quota")
	}
	// The store (5) fills; a new sender evicts one of the heaviest's values.
	if !s.put(0, keyB, senderB, []byte{2}, time.Hour, 0) || s.total != 5 {
		t.Fatalf("fifth value refused (total %d)", s.total)
	}
	if !s.put(0, keyC, ID{0xc}, []byte{1}, time.Hour, 0) {
		t.Fatal("a sender under its quota was refused by a full store")
	}
	if s.total != 5 || s.senders[senderA].values != 3 || s.senders[senderB].values != 1 {
		t.Fatalf("total %d, A holds %d, B %d; want 5, 3 (the heaviest gave one up), 1",
			s.total, s.senders[senderA].values, s.senders[senderB].values)
	}
	checkAccounts(t, s)
}

// checkAccounts checks the per-sender books against the values stored: the
// counts, the entries they point at, the buckets, and every quota.
func checkAccounts(t *testing.T, s *storage) {
	t.Helper()
	held := map[ID]map[*keyEntry]int{}
	total := 0
	for _, m := range s.levels {
		for _, e := range m {
			for _, v := range e.values {
				if held[v.from] == nil {
					held[v.from] = map[*keyEntry]int{}
				}
				held[v.from][e]++
				total++
			}
		}
	}
	if total != s.total {
		t.Fatalf("%d values stored, total says %d", total, s.total)
	}
	if len(held) != len(s.senders) {
		t.Fatalf("%d senders hold values, the books name %d", len(held), len(s.senders))
	}
	top := 0
	for id, entries := range held {
		l := s.senders[id]
		n := 0
		for e, c := range entries {
			n += c
			if l == nil || l.entries[e] != c {
				t.Fatalf("sender %x: books disagree with an entry holding %d of its values", id[:4], c)
			}
		}
		if l.values != n || len(l.entries) != len(entries) {
			t.Fatalf("sender %x holds %d values in %d keys, books say %d in %d", id[:4], n, len(entries), l.values, len(l.entries))
		}
		if n > s.maxPerSender {
			t.Fatalf("sender %x holds %d values, quota %d", id[:4], n, s.maxPerSender)
		}
		if _, ok := s.byCount.byCount[n][id]; !ok {
			t.Fatalf("sender %x (%d values) missing from its bucket", id[:4], n)
		}
		top = max(top, n)
	}
	if s.byCount.top != top {
		t.Fatalf("top bucket %d, heaviest sender holds %d", s.byCount.top, top)
	}
}

// TestStorageFlood: members storing as many day-long values as they can
// (the reviewer's repro and variations) leave room for another node's put
// an hour later, and none gets more than its quota.
func TestStorageFlood(t *testing.T) {
	const maxValues = 100000
	const quota = maxValues / 16
	tests := []struct {
		name      string
		flooders  int // senders flooding
		perSender int // distinct keys each tries to store
		wantTotal int // values held after the flood
	}{
		{"one sender, 100,000 keys (the reviewer's repro)", 1, maxValues, quota},
		{"sixteen senders at their quota fill the store", 16, quota, maxValues},
		{"seventeen senders: the store full, each under its quota", 17, quota, maxValues},
		{"100,000 senders of one value each", maxValues, 1, maxValues},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorage(3, 4, 8, time.Minute, 16, maxValues, 0)
			for f := range tt.flooders {
				for k := range tt.perSender {
					key := kadOf(ID{0xf1, byte(f >> 16), byte(f >> 8), byte(f), byte(k >> 16), byte(k >> 8), byte(k)})
					s.put(k%3, key, senderN(f), []byte("junk"), 24*time.Hour, 0)
				}
			}
			if s.total != tt.wantTotal {
				t.Fatalf("flood left %d values, want %d", s.total, tt.wantTotal)
			}
			checkAccounts(t, s)
			hour := int64(time.Hour)
			referral := []byte("proxy-1 has it")
			if !s.put(2, keyA, senderA, referral, time.Hour, hour) {
				t.Fatal("a legitimate put an hour after the flood was refused")
			}
			got := s.get(2, keyA, hour, 8, nil)
			if len(got) != 1 || !bytes.Equal(got[0].Data, referral) {
				t.Fatalf("get after the put = %+v", got)
			}
			if s.total > maxValues {
				t.Fatalf("%d values stored, bound %d", s.total, maxValues)
			}
			keys := 0
			for l := range s.levels {
				keys += len(s.levels[l])
			}
			if keys != s.total { // every key holds one value; none was requested
				t.Fatalf("%d keys tracked for %d values: evicted or refused keys left behind", keys, s.total)
			}
			checkAccounts(t, s)
		})
	}
}

// TestStorageQuotaRelease: a sender at its quota is refused until values of
// its expire (with or without a sweep) or are evicted.
func TestStorageQuotaRelease(t *testing.T) {
	const quota = 4
	tests := []struct {
		name  string
		ttls  []time.Duration // the sender's values, stored at t=0
		then  func(s *storage)
		at    int64 // when the sender puts again
		want  bool
		holds int // values the sender holds after that put
	}{
		{"at the quota", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, nil, 30 * 60 * sec, false, 4},
		{"expired values free it without a sweep", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, nil, 61 * 60 * sec, true, 1},
		{"the first expiry frees one place", []time.Duration{time.Minute, time.Hour, time.Hour, time.Hour}, nil, 61 * sec, true, 4},
		{"not before it", []time.Duration{time.Minute, time.Hour, time.Hour, time.Hour}, nil, 59 * sec, false, 4},
		{"a sweep frees it", []time.Duration{time.Minute, time.Minute, time.Hour, time.Hour},
			func(s *storage) { s.sweep(2 * 60 * sec) }, 2 * 60 * sec, true, 3},
		{"eviction by a full key frees it", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour},
			func(s *storage) { s.put(0, keyA, senderB, []byte("b"), time.Minute, 0) }, 0, true, 4},
		{"a renewal is not a new value", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour},
			func(s *storage) { s.put(0, keyA, senderA, []byte("v0"), 2*time.Hour, 0) }, 30 * 60 * sec, false, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorage(1, 4, 12, time.Minute, 4, 100, quota)
			for i, ttl := range tt.ttls {
				if !s.put(0, keyA, senderA, []byte(fmt.Sprint("v", i)), ttl, 0) {
					t.Fatalf("put %d refused", i)
				}
			}
			// A refusal before the case's action, to settle the refused
			// sender's books at its quota.
			if s.put(0, kadOf(ID{7}), senderA, []byte("early"), time.Hour, 0) {
				t.Fatal("value beyond the quota stored")
			}
			if tt.then != nil {
				tt.then(s)
			}
			got := s.put(0, kadOf(ID{9}), senderA, []byte("new"), time.Hour, tt.at)
			if got != tt.want {
				t.Fatalf("put at %v: %v, want %v", time.Duration(tt.at), got, tt.want)
			}
			if l := s.senders[senderA]; l == nil || l.values != tt.holds {
				t.Fatalf("sender holds %+v, want %d values", l, tt.holds)
			}
			checkAccounts(t, s)
		})
	}
}

// TestStorageKeyShare: a key one sender filled with day-long values still
// takes, keeps and returns the other senders' referrals.
func TestStorageKeyShare(t *testing.T) {
	flooder := ID{0xf1}
	flood := func(s *storage, n int) {
		for i := range n {
			s.put(0, keyA, flooder, []byte(fmt.Sprint("junk", i)), 24*time.Hour, 0)
		}
	}
	legit := func(s *storage, n int) {
		for i := range n {
			if !s.put(0, keyA, senderN(i), []byte(fmt.Sprint("proxy", i)), time.Hour, 0) {
				t.Fatalf("referral %d refused", i)
			}
		}
	}
	tests := []struct {
		name    string
		fill    func(s *storage)
		limit   int
		flooded int // the flooder's values in the answer
	}{
		{"flood first", func(s *storage) { flood(s, 16); legit(s, 3) }, 8, 5},
		{"referrals first", func(s *storage) { legit(s, 3); flood(s, 40) }, 8, 5},
		{"answer of three", func(s *storage) { flood(s, 16); legit(s, 3) }, 3, 1},
		{"eight referrals", func(s *storage) { flood(s, 16); legit(s, 8) }, 8, 1},
		{"a full key of referrals: the flooder gets one place, as any proxy would", func(s *storage) { legit(s, 16); flood(s, 16) }, 8, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorage(1, 4, 12, time.Minute, 16, 1000, 0)
			tt.fill(s)
			checkAccounts(t, s)
			got := s.get(0, keyA, 0, tt.limit, nil)
			junk := 0
			for _, v := range got {
				if bytes.HasPrefix(v.Data, []byte("junk")) {
					junk++
				}
			}
			if len(got) != tt.limit || junk != tt.flooded {
				t.Fatalf("answer of %d holds %d of the flooder's values, want %d of %d: %+v", len(got), junk, tt.flooded, tt.limit, got)
			}
		})
	}
}

// TestStorageKeyTable: keys known only from requests (a member sending
// find_value for random keys) do not shut out new values, and a refused put
// leaves no key behind.
func TestStorageKeyTable(t *testing.T) {
	const maxValues = 1000
	tests := []struct {
		name     string
		requests int // random keys requested first
		quota    int
		stored   int // values the putter stored before, under keyA
		want     bool
		keys     int // keys tracked afterwards
	}{
		{"requests for as many keys as tracked", maxValues, 0, 0, true, maxValues + 1},
		{"a put refused by the quota", 10, 1, 1, false, 10 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStorage(1, 4, 12, time.Minute, 16, maxValues, tt.quota)
			for i := range tt.requests {
				s.request(0, kadOf(senderN(i)), 0)
			}
			for i := range tt.stored {
				s.put(0, keyA, senderA, []byte(fmt.Sprint("v", i)), time.Hour, 0)
			}
			if got := s.put(0, kadOf(ID{0x99}), senderA, []byte("new"), time.Hour, 0); got != tt.want {
				t.Fatalf("put: %v, want %v", got, tt.want)
			}
			if n := len(s.levels[0]); n != tt.keys {
				t.Fatalf("%d keys tracked, want %d", n, tt.keys)
			}
		})
	}
}

// BenchmarkStorageFull fills a store (default sizes: 100,000 values of 64
// bytes, referral-sized, from 16 senders at their quota) and prints the heap
// it takes per value, then measures a put from another sender into the full
// store (an eviction: senders of one value each, under their quota) and a
// sweep of it.
func BenchmarkStorageFull(b *testing.B) {
	const maxValues = 100000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newStorage(3, 4, 12, time.Minute, 16, maxValues, 0)
	val := make([]byte, 64)
	for i := range maxValues {
		binary.BigEndian.PutUint32(val, uint32(i))
		s.put(i%3, kadOf(ID{0xf1, byte(i >> 16), byte(i >> 8), byte(i)}), senderN(i%16), val, 24*time.Hour, 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s.total != maxValues {
		b.Fatalf("filled %d values", s.total)
	}
	heap := float64(after.HeapAlloc-before.HeapAlloc) / maxValues
	start := time.Now()
	s.sweep(2)
	sweep := time.Since(start)
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		binary.BigEndian.PutUint32(val, uint32(i))
		key := kadOf(ID{0x17, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
		if !s.put(0, key, ID{0x17, byte(i >> 16), byte(i >> 8), byte(i)}, val, time.Hour, 2) {
			b.Fatal("put into the full store refused")
		}
	}
	// After the loop: ResetTimer drops metrics reported before it.
	b.ReportMetric(heap, "heapB/value")
	b.ReportMetric(float64(sweep.Microseconds()), "sweep-µs")
}

// unreachable is a Network that reaches nobody: the node under test only
// answers.
type unreachable struct{}

func (unreachable) Call(context.Context, NodeInfo, *Request) (*Response, error) {
	return nil, ErrTimeout
}

// TestStoreRPCQuota: stores that reach a node as RPCs are charged to the
// sender the transport names (a request carries no sender field to forge),
// so a flooding member is refused beyond its quota while another member's
// store for the same key is taken and answered.
func TestStoreRPCQuota(t *testing.T) {
	cfg := DefaultConfig(NodeInfo{ID: NodeID([]byte("victim")), Addr: "victim"})
	cfg.MaxStoredValues, cfg.MaxValuesPerSender = 160, 10
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := New(cfg, unreachable{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx := context.Background()
	flooder := NodeInfo{ID: NodeID([]byte("flooder")), Addr: "flooder"}
	proxy := NodeInfo{ID: NodeID([]byte("proxy")), Addr: "proxy"}
	hot := kadOf(ID{0x40})
	store := func(from NodeInfo, target kadID, value string) Code {
		t.Helper()
		resp, err := n.HandleRPC(ctx, from, &Request{Op: OpStore, Target: ID(target), Value: []byte(value),
			TTLMs: (24 * time.Hour).Milliseconds()})
		if err != nil {
			t.Fatalf("store %q: %v", value, err)
		}
		return resp.Code
	}
	type step struct {
		name   string
		from   NodeInfo
		target kadID
		value  string
		want   Code
	}
	tests := []step{{"the flooder's first value", flooder, hot, "junk", CodeOK}}
	for i := range 9 {
		tests = append(tests, step{fmt.Sprint("the flooder's value ", i+2), flooder, kadOf(ID{0x41, byte(i)}), fmt.Sprint("junk", i), CodeOK})
	}
	tests = append(tests,
		step{"beyond the flooder's quota", flooder, kadOf(ID{0x42}), "junk-more", CodeRefused},
		step{"the flooder renews", flooder, hot, "junk", CodeOK},
		step{"another member, the same key", proxy, hot, "proxy has it", CodeOK},
	)
	for _, tt := range tests {
		if got := store(tt.from, tt.target, tt.value); got != tt.want {
			t.Fatalf("%s: code %d, want %d", tt.name, got, tt.want)
		}
	}
	resp, err := n.HandleRPC(ctx, NodeInfo{ID: NodeID([]byte("getter")), Addr: "getter"},
		&Request{Op: OpFindValue, Target: ID(hot)})
	if err != nil || len(resp.Values) != 2 {
		t.Fatalf("find_value: %v %+v, want the flooder's and the proxy's values", err, resp)
	}
}
