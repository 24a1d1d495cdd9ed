package proxy

import (
	"testing"
	"time"
)

// Zero in an Options field means its default; Off turns an off-able
// feature off; a value given is kept. HeuristicTTL follows the same rule
// as the others (zero no longer means off for it alone).
func TestOptionsDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Options
		want Options
	}{
		{"zero means default", Options{},
			Options{HeuristicTTL: 12 * time.Hour, MaxStale: 24 * time.Hour, NegativeTTL: time.Minute, MemoryBytes: defaultHotBytes,
				MaxObjectBytes: 50 << 20, OriginTimeout: 30 * time.Second, MaxOriginFetches: 64, MaxFetchesPerSite: 16}},
		{"Off means off", Options{HeuristicTTL: Off, MaxStale: Off, NegativeTTL: Off, MemoryBytes: Off},
			Options{HeuristicTTL: 0, MaxStale: 0, NegativeTTL: Off, MemoryBytes: Off,
				MaxObjectBytes: 50 << 20, OriginTimeout: 30 * time.Second, MaxOriginFetches: 64, MaxFetchesPerSite: 16}},
		{"values kept", Options{HeuristicTTL: time.Hour, MaxStale: 2 * time.Hour, NegativeTTL: time.Second, MemoryBytes: 1 << 20,
			MaxObjectBytes: 1 << 20, OriginTimeout: time.Second, MaxOriginFetches: 8, MaxFetchesPerSite: 100},
			Options{HeuristicTTL: time.Hour, MaxStale: 2 * time.Hour, NegativeTTL: time.Second, MemoryBytes: 1 << 20,
				MaxObjectBytes: 1 << 20, OriginTimeout: time.Second, MaxOriginFetches: 8, MaxFetchesPerSite: 8}},
		{"negative where off means nothing", Options{MaxObjectBytes: -1, OriginTimeout: -1, MaxOriginFetches: -1},
			Options{HeuristicTTL: 12 * time.Hour, MaxStale: 24 * time.Hour, NegativeTTL: time.Minute, MemoryBytes: defaultHotBytes,
				MaxObjectBytes: 50 << 20, OriginTimeout: 30 * time.Second, MaxOriginFetches: 64, MaxFetchesPerSite: 16}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.in
			if err := o.setDefaults(); err != nil {
				t.Fatal(err)
			}
			got := [8]int64{int64(o.HeuristicTTL), int64(o.MaxStale), int64(o.NegativeTTL), o.MemoryBytes,
				o.MaxObjectBytes, int64(o.OriginTimeout), int64(o.MaxOriginFetches), int64(o.MaxFetchesPerSite)}
			w := tc.want
			want := [8]int64{int64(w.HeuristicTTL), int64(w.MaxStale), int64(w.NegativeTTL), w.MemoryBytes,
				w.MaxObjectBytes, int64(w.OriginTimeout), int64(w.MaxOriginFetches), int64(w.MaxFetchesPerSite)}
			if got != want {
				t.Errorf("setDefaults(%s):\n got %v\nwant %v", tc.name, got, want)
			}
		})
	}
}
