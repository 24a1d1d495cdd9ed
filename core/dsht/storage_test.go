package dsht

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func testStorage() *storage {
	return newStorage(3, 4, 12, time.Minute, 8, 100)
}

var keyA = kadOf(ID{1})

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
		{"four values, one too short for the new TTL", []time.Duration{time.Hour, time.Hour, time.Hour, 29 * time.Minute}, 0, time.Hour, false},
		{"exactly half counts", []time.Duration{30 * time.Minute, 30 * time.Minute, 30 * time.Minute, 30 * time.Minute}, 0, time.Hour, true},
		{"short new value: short old ones suffice", []time.Duration{20 * time.Second, 20 * time.Second, 20 * time.Second, 20 * time.Second}, 0, 20 * time.Second, true},
		{"aged below half", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, 31 * 60 * sec, time.Hour, false},
		{"expired values do not count", []time.Duration{time.Second, time.Second, time.Second, time.Second}, 2 * sec, time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testStorage()
			for i, ttl := range tt.ttls {
				if !s.put(0, keyA, []byte(fmt.Sprint("v", i)), ttl, 0) {
					t.Fatalf("put %d refused", i)
				}
			}
			if got := s.isFull(0, keyA, tt.newTTL, tt.at); got != tt.want {
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
	s.put(1, keyA, []byte("a"), 10*time.Second, 0)
	s.put(1, keyA, []byte("b"), 20*time.Second, 0)
	if got := s.get(1, keyA, 5*sec, 10, nil); len(got) != 2 || string(got[0].Data) != "b" || got[0].TTLMs != 15000 {
		t.Fatalf("at 5s got %+v, want b (15s left) then a", got)
	}
	if got := s.get(1, keyA, 11*sec, 10, nil); len(got) != 1 || string(got[0].Data) != "b" {
		t.Fatalf("at 11s got %+v, want only b", got)
	}
	// The owner renews a: it comes back as one value, not two.
	s.put(1, keyA, []byte("b"), time.Minute, 11*sec)
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
	s := newStorage(1, 4, 12, time.Minute, 3, 5)
	for i := range 3 {
		s.put(0, keyA, []byte{byte(i)}, time.Duration(i+1)*time.Minute, 0)
	}
	// A fourth value for the key evicts the one expiring first...
	if !s.put(0, keyA, []byte{9}, time.Hour, 0) {
		t.Fatal("longer-lived value refused")
	}
	got := s.get(0, keyA, 0, 10, nil)
	if len(got) != 3 || bytes.Equal(got[2].Data, []byte{0}) {
		t.Fatalf("got %+v; the 1-minute value should be gone", got)
	}
	// ...but not for a value that would expire first itself.
	if s.put(0, keyA, []byte{8}, time.Second, 0) {
		t.Fatal("short value displaced a longer one")
	}
	// The node-wide bound refuses new values, not renewals.
	keyB, keyC := kadOf(ID{2}), kadOf(ID{3})
	s.put(0, keyB, []byte{1}, time.Hour, 0)
	s.put(0, keyB, []byte{2}, time.Hour, 0)
	if s.put(0, keyC, []byte{1}, time.Hour, 0) {
		t.Fatal("value stored beyond MaxStoredValues")
	}
	if !s.put(0, keyB, []byte{1}, 2*time.Hour, 0) {
		t.Fatal("renewal refused at the bound")
	}
}
