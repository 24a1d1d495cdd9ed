package group

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPercentile95(t *testing.T) {
	w := 5 * time.Minute
	ramp := make([]int64, 100)
	for i := range ramp {
		ramp[i] = int64(i+1) * 300 // bucket i sends (i+1) B/s
	}
	cases := []struct {
		name    string
		sent    []int64
		buckets int
		want    int64
	}{
		{"nothing", nil, 288, 0},
		{"no period", []int64{300}, 0, 0},
		{"ramp of 100: the 95th", ramp, 100, 95},
		{"a spike in under 5 % of the day is free", []int64{300 * 1000, 300 * 1000, 300}, 288, 0},
		{"a spike in over 5 % of the day counts", repeat(300*1000, 20), 288, 1000},
		{"steady", repeat(300*10, 288), 288, 10},
	}
	for _, c := range cases {
		if got := Percentile95(c.sent, c.buckets, w); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

func repeat(v int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func figuresJSON(t testing.TB, f Figures) []byte {
	b, _ := json.Marshal(f)
	return b
}

func TestParseFiguresRejects(t *testing.T) {
	m := fixture(t)
	alice, bob := m.Members[0].Peer, m.Members[1].Peer
	good := Figures{Peer: alice, Day: "2026-12-06", Month: "2026-12", P95Day: 10, Sites: map[string]int64{"blog.bob.net": 5}}
	if _, err := ParseFigures(figuresJSON(t, good), m); err != nil {
		t.Fatal(err)
	}
	mod := func(f func(*Figures)) []byte { g := good; f(&g); return figuresJSON(t, g) }
	for name, raw := range map[string][]byte{
		"not a member":   mod(func(f *Figures) { f.Peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo" }),
		"unknown site":   mod(func(f *Figures) { f.Sites = map[string]int64{"www.eve.org": 1} }),
		"negative bytes": mod(func(f *Figures) { f.Sites = map[string]int64{"www.alice.org": -1} }),
		"negative p95":   mod(func(f *Figures) { f.P95Month = -1 }),
		"bad day":        mod(func(f *Figures) { f.Day = "yesterday" }),
		"bad month":      mod(func(f *Figures) { f.Month = "2026-13" }),
		"unknown field":  []byte(`{"peer":"` + bob + `","x":1}`),
		"garbage":        []byte("\x00garbage"),
		"truncated":      figuresJSON(t, good)[:20],
		"too large":      []byte(`{"peer":"` + strings.Repeat("a", MaxFiguresBytes) + `"}`),
	} {
		if _, err := ParseFigures(raw, m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Alice's node served 300 bytes of Bob's site and 1000 of her own; Bob's
// served 50 of Alice's: Alice contributed 300 and received 50, Bob the
// reverse. A member without figures has a zero row.
func TestLedger(t *testing.T) {
	m := fixture(t)
	alice, bob := m.Members[0].Peer, m.Members[1].Peer
	m.Members = append(m.Members, Member{Peer: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", UploadMbps: 5})
	rows := Ledger(m, map[string]Figures{
		alice: {Peer: alice, P95Day: 7, Sites: map[string]int64{"www.alice.org": 1000, "blog.bob.net": 300}},
		bob:   {Peer: bob, Sites: map[string]int64{"www.alice.org": 50}},
	})
	if len(rows) != 3 || rows[0].Contributed != 300 || rows[0].Received != 50 || rows[1].Contributed != 50 || rows[1].Received != 300 || rows[0].P95Day != 7 {
		t.Errorf("ledger: %+v", rows)
	}
	if rows[2].Contributed != 0 || !rows[2].At.IsZero() {
		t.Errorf("member without figures: %+v", rows[2])
	}
}

// FuzzParseFigures: figures from any member give a valid record or an
// error, never a panic.
func FuzzParseFigures(f *testing.F) {
	m := fixture(f)
	f.Add(figuresJSON(f, Figures{Peer: m.Members[0].Peer, Day: "2026-12-06", Month: "2026-12", Sites: map[string]int64{"www.alice.org": 1}}))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, err := ParseFigures(b, m); err == nil {
			if _, ok := m.Member(got.Peer); !ok {
				t.Fatalf("accepted figures of a stranger %q", got.Peer)
			}
		}
	})
}
