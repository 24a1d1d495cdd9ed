package dnsserver

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// hungProber never answers: its pings end at the deadline.
type hungProber struct{ calls atomic.Int64 }

func (h *hungProber) Ping(ctx context.Context, _ string) error {
	h.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// A proxy whose ping times out (hung, connections still open) is
// remembered as dead: later queries neither hand it out nor wait for it.
func TestTimedOutPingIsRemembered(t *testing.T) {
	dir := &fakeDir{}
	ps := publicProxies(4)
	ps[3].LastHeard = t0.Add(-time.Hour) // not heard from: pinged before use
	dir.set(ps...)
	pr := &hungProber{}
	ts := startServer(t, Config{Answers: 4, ProbeTimeout: 50 * time.Millisecond}, dir, WithProber(pr))
	for range 5 {
		got := addrSet(answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)))
		if len(got) != 3 || got[v4(3)] {
			t.Fatalf("want the three live proxies without the hung one, got %v", got)
		}
	}
	if n := pr.calls.Load(); n != 1 {
		t.Fatalf("hung proxy pinged %d times in one live window, want 1", n)
	}
}

// The handout hook hears of every proxy the answers name, once per fresh
// ranking rather than per query.
func TestHandoutNamesAnsweredProxies(t *testing.T) {
	dir := snapshotDir(publicProxies(6))
	var calls atomic.Int64
	var last atomic.Pointer[[]string]
	ts := startServer(t, Config{Answers: 2}, dir, WithHandout(func(ids []string) {
		calls.Add(1)
		last.Store(&ids)
	}))
	for range 10 {
		ans := answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0))
		ids := last.Load()
		if ids == nil {
			t.Fatal("no handout reported")
		}
		for _, a := range ans {
			if !slices.Contains(*ids, fmt.Sprintf("p%d", a.As4()[3]-10)) {
				t.Errorf("answer %v names a proxy not in the handout %v", a, *ids)
			}
		}
	}
	if n := calls.Load(); n > 2 {
		t.Errorf("%d handout reports for 10 queries within a second; want one per ranking", n)
	}
}

// snapshotDir serves one unchanging snapshot, as the real directory does
// between changes (fakeDir copies its list on every call).
type snapshotDir []Proxy

func (d snapshotDir) Proxies() []Proxy { return d }

func TestRankingHandedOut(t *testing.T) {
	cands := func(n int) []pick {
		out := make([]pick, n)
		for i := range out {
			out[i].p = &Proxy{ID: fmt.Sprintf("p%d", i)}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		groups []int
		n      int
		want   int
	}{
		{"first group fills the answer", []int{4, 6}, 2, 4},
		{"two groups needed", []int{2, 5, 6}, 4, 5},
		{"exactly one group", []int{2, 5, 6}, 2, 2},
		{"fewer candidates than asked", []int{1, 3}, 4, 3},
		{"no candidates", nil, 4, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := 0
			if len(tc.groups) > 0 {
				total = tc.groups[len(tc.groups)-1]
			}
			rk := &ranking{cands: cands(total), groups: tc.groups}
			if got := rk.handedOut(tc.n); len(got) != tc.want {
				t.Errorf("handedOut(%d) = %v, want the first %d", tc.n, got, tc.want)
			}
		})
	}
}
