package dnstest

import (
	"slices"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

// liveWindow is dnsserver's default LiveWindow, the promise a dead proxy
// leaves the answers within. The directory is much quicker (heartbeats every
// 5 s, 2 s timeout); the test logs the figures.
const liveWindow = 60 * time.Second

// Four real nodes: node 0's nameserver hands out every live proxy (each at
// its own 127.0.0.N, learnt over /coral/info), a hung proxy (SIGSTOP) and a
// crashed one (SIGKILL) leave its answers within the liveness window, and
// the hung one comes back when it resumes.
func TestAnswersTrackLiveProxies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coral processes")
	}
	c := startCluster(t, 4, nil)
	ns := c.Nodes[0].DNS
	name := "www.example.com.localhost"
	all := []string{proxyIP(0), proxyIP(1), proxyIP(2), proxyIP(3)}

	took := testkit.Eventually(t, 30*time.Second, "node 0's answers cover all four proxies", func() bool {
		return slices.Equal(union(t, ns, name, 8), all)
	})
	t.Logf("all proxies in answers %v after the cluster formed", took.Round(time.Millisecond))

	// The answer itself: authoritative, 2-4 records, 30-60 s TTL, and the
	// same over UDP; the port form and another node's nameserver agree.
	got, r := lookup(t, ns, name, nil)
	if !r.Authoritative || r.Rcode != mdns.RcodeSuccess || len(got) < 2 || len(got) > 4 {
		t.Fatalf("answer: rcode %s aa %v records %v", mdns.RcodeToString[r.Rcode], r.Authoritative, got)
	}
	for _, rr := range r.Answer {
		if ttl := rr.Header().Ttl; ttl < 30 || ttl > 60 {
			t.Errorf("TTL %d outside 30..60: %v", ttl, rr)
		}
	}
	if got, _ := exchange(t, "udp", ns, name, nil); len(got) < 2 {
		t.Errorf("UDP answer %v", got)
	}
	if got, _ := lookup(t, ns, "www.example.com.8080.localhost", nil); len(got) < 2 {
		t.Errorf("port form answer %v", got)
	}
	if got := union(t, c.Nodes[2].DNS, name, 8); !slices.Equal(got, all) {
		t.Errorf("node 2's answers cover %v, want %v", got, all)
	}

	// gone waits until n answers in a row leave out ip and cover want.
	gone := func(ip string, want []string) time.Duration {
		return testkit.Eventually(t, liveWindow, ip+" leaves node 0's answers", func() bool {
			u := union(t, ns, name, 8)
			return !slices.Contains(u, ip) && slices.Equal(u, want)
		})
	}

	// Hung: its connections stay open; only heartbeats notice.
	hung := pidOf(t, c.Nodes[3].Config)
	if err := syscall.Kill(hung, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			syscall.Kill(hung, syscall.SIGCONT)
		}
	})
	took = gone(proxyIP(3), all[:3])
	t.Logf("hung proxy left the answers after %v", took.Round(time.Millisecond))
	if err := syscall.Kill(hung, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	took = testkit.Eventually(t, liveWindow, "the resumed proxy is back in node 0's answers", func() bool {
		return slices.Equal(union(t, ns, name, 8), all)
	})
	t.Logf("resumed proxy back after %v", took.Round(time.Millisecond))

	// Crashed: the kernel closes its connections.
	c.Nodes[2].Kill()
	took = gone(proxyIP(2), []string{proxyIP(0), proxyIP(1), proxyIP(3)})
	t.Logf("killed proxy left the answers after %v", took.Round(time.Millisecond))
}
