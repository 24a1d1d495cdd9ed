package dnsserver

import (
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// stableDir hands out one snapshot until set replaces it, as the node's
// directory does, so the server's cached rankings are used.
type stableDir struct {
	mu sync.Mutex
	ps []Proxy
}

func (d *stableDir) Proxies() []Proxy {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ps
}

func (d *stableDir) set(ps []Proxy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ps = ps
}

// With a cached ranking, answers still rotate over every proxy; a new
// directory snapshot takes effect at the next query; a proxy whose live
// window ran out in an unchanged snapshot leaves within rankTTL.
func TestCachedRankingFollowsDirectory(t *testing.T) {
	dir := &stableDir{}
	ps := publicProxies(6)
	dir.set(ps)
	ts := startServer(t, Config{Answers: 2, LiveWindow: time.Minute}, dir)
	seen := map[string]bool{}
	for range 12 {
		for _, a := range answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)) {
			seen[a.String()] = true
		}
	}
	if len(seen) != 6 {
		t.Fatalf("answers named %d of 6 proxies: %v", len(seen), seen)
	}
	dir.set(ps[:1:1]) // a new snapshot with one proxy left
	if got := answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)); len(got) != 1 || got[0] != v4(0) {
		t.Fatalf("after the directory changed: %v, want only %v", got, v4(0))
	}
	stale := publicProxies(2)
	stale[1].LastHeard = t0.Add(-time.Minute + 500*time.Millisecond) // leaves the live window in 0.5 s
	dir.set(stale)
	if got := answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)); len(got) != 2 {
		t.Fatalf("both proxies live: %v", got)
	}
	ts.clock.Advance(rankTTL)
	if got := answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)); len(got) != 1 || got[0] != v4(0) {
		t.Fatalf("a proxy out of its live window for longer than rankTTL is still handed out: %v", got)
	}
}
