package dnsserver

import (
	"context"
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
