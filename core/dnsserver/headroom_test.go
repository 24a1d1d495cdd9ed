package dnsserver

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

// Proxies without headroom (paused, over quota, saturated) are left out of
// answers while others are alive, and handed out when nothing else is; a
// paused one (it would answer 503) only when every one is paused.
func TestFullProxiesLeftOutUnlessAlone(t *testing.T) {
	for _, tc := range []struct {
		name         string
		full, paused []int
		want         []int
	}{
		{"none full", nil, nil, []int{0, 1, 2}},
		{"one full", []int{1}, nil, []int{0, 2}},
		{"all but one full", []int{0, 2}, nil, []int{1}},
		{"all full", []int{0, 1, 2}, nil, []int{0, 1, 2}},
		{"one paused", nil, []int{1}, []int{0, 2}},
		{"all full, one paused", []int{0, 2}, []int{1}, []int{0, 2}},
		{"all paused", nil, []int{0, 1, 2}, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := publicProxies(3)
			for _, i := range tc.full {
				ps[i].Full = true
			}
			for _, i := range tc.paused {
				ps[i].Full, ps[i].Paused = true, true // paused: no room
			}
			dir := &fakeDir{}
			dir.set(ps...)
			ts := startServer(t, Config{Answers: 3}, dir)
			for range 3 { // every rotation
				got := addrSet(answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)))
				if len(got) != len(tc.want) {
					t.Fatalf("answer %v, want proxies %v", got, tc.want)
				}
				for _, i := range tc.want {
					if !got[v4(i)] {
						t.Fatalf("answer %v lacks proxy %d", got, i)
					}
				}
			}
		})
	}
}

// Every answer is counted for the volunteer's usage record.
func TestTrafficCounted(t *testing.T) {
	var sent, received atomic.Int64
	dir := &fakeDir{}
	dir.set(publicProxies(2)...)
	ts := startServer(t, Config{Traffic: func(s, r int) { sent.Add(int64(s)); received.Add(int64(r)) }}, dir)
	r := ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)
	if len(answerAddrs(r)) == 0 {
		t.Fatal("no answer")
	}
	testkit.Eventually(t, 10*time.Second, "the answer counted", func() bool { return sent.Load() > 0 && received.Load() > 0 })
}

// A Full proxy that is alive is answered when the only other candidates
// are stale and fail their pings: the very first A query gets it, never
// NOERROR without records (resolvers would cache "no A" for the TTL).
func TestFullProxyAnsweredWhenOthersFailPings(t *testing.T) {
	ps := publicProxies(3)
	ps[0].LastHeard, ps[1].LastHeard = time.Time{}, time.Time{} // last exchange failed: pinged before use
	ps[2].Full = true                                           // e.g. this node while its upload cap is in use
	dir := &fakeDir{}
	dir.set(ps...)
	pr := &fakeProber{alive: map[string]bool{}, calls: map[string]int{}}
	ts := startServer(t, Config{Answers: 3}, dir, WithProber(pr))
	for i := range 3 {
		r := ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)
		got := answerAddrs(r)
		if r.Rcode != dns.RcodeSuccess || len(got) != 1 || got[0] != v4(2) {
			t.Fatalf("query %d: %s %v, want NOERROR with the live Full proxy %v", i, dns.RcodeToString[r.Rcode], got, v4(2))
		}
	}
	// Once a stale proxy answers its ping again, the Full one is left out.
	pr.mu.Lock()
	pr.alive["p0"] = true
	pr.mu.Unlock()
	ts.clock.Advance(2 * time.Minute) // past LiveWindow: cached ping results expire
	dir.heard(ts.clock.Now(), "p2")
	got := answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0))
	if len(got) != 1 || got[0] != v4(0) {
		t.Fatalf("answer %v, want only the non-Full proxy %v that answers pings", got, v4(0))
	}
}

// A paused proxy is no spare: when the only other proxies fail their pings
// the answer names none of them rather than a node that would answer every
// visitor 503 (its volunteer asked to be left out).
func TestPausedProxyIsNoSpare(t *testing.T) {
	ps := publicProxies(3)
	ps[0].LastHeard, ps[1].LastHeard = time.Time{}, time.Time{} // pinged before use
	ps[2].Full, ps[2].Paused = true, true
	dir := &fakeDir{}
	dir.set(ps...)
	pr := &fakeProber{alive: map[string]bool{}, calls: map[string]int{}}
	ts := startServer(t, Config{Answers: 3}, dir, WithProber(pr))
	r := ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)
	if got := answerAddrs(r); slices.Contains(got, v4(2)) {
		t.Fatalf("%s %v: the paused proxy %v was named", dns.RcodeToString[r.Rcode], got, v4(2))
	}
}
