package node

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/test/testkit"
)

func dnsTestLogger() *slog.Logger {
	if os.Getenv("CORAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNode runs an in-process node on loopback with its proxy on httpListen.
func startDNSNode(t *testing.T, secret, httpListen string, bootstrap ...string) *Node {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = httpListen
	cfg.Control.Listen = "127.0.0.1:0"
	cfg.DNS.Listen = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.P2P.Bootstrap = bootstrap
	cfg.P2P.SecretFile = secret
	cfg.P2P.MDNS = false
	cfg.P2P.NATPortMap = false
	cfg.P2P.Reachability = "public"
	n, err := New(cfg, Options{Logger: dnsTestLogger()})
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

func proxyByID(ps []dnsserver.Proxy, id string) (dnsserver.Proxy, bool) {
	for _, p := range ps {
		if p.ID == id {
			return p, true
		}
	}
	return dnsserver.Proxy{}, false
}

// Two in-process nodes learn each other's proxy address over /coral/info,
// and a node that shuts down leaves the other's directory.
func TestDirectoryLearnsPeersOverInfo(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "network.key")
	a := startDNSNode(t, secret, "127.0.0.21:0")
	boot := a.Addrs().P2P
	b := startDNSNode(t, secret, "127.0.0.22:0", boot...)

	testkit.Eventually(t, 10*time.Second, "a lists b's proxy at 127.0.0.22", func() bool {
		p, ok := proxyByID(a.loc.Directory().Proxies(), b.nodeID)
		return ok && slices.Equal(p.Addrs, []netip.Addr{netip.MustParseAddr("127.0.0.22")}) &&
			!p.LastHeard.IsZero() && p.Public
	})
	self, ok := proxyByID(a.loc.Directory().Proxies(), a.nodeID)
	if !ok || !slices.Equal(self.Addrs, []netip.Addr{netip.MustParseAddr("127.0.0.21")}) || self.LastHeard.IsZero() {
		t.Errorf("a's own entry: %+v %v", self, ok)
	}
	// The synchronous probe reaches b and counts as hearing from it.
	if err := a.loc.Ping(context.Background(), b.nodeID); err != nil {
		t.Errorf("probe b: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "b leaves a's directory", func() bool {
		_, ok := proxyByID(a.loc.Directory().Proxies(), b.nodeID)
		return !ok
	})
	if err := a.loc.Ping(context.Background(), b.nodeID); err == nil {
		t.Error("probe of a stopped node succeeded")
	}
}

// A proxy listening on every address announces the machine's addresses
// and lets peers add where they see it; one bound to an address announces
// only that.
func TestAnnouncementFollowsListener(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "network.key")
	cases := []struct {
		listen  string
		anyAddr bool
		has     string
		hasNot  string
	}{
		{"127.0.0.23:0", false, "127.0.0.23", "127.0.0.1"},
		{"0.0.0.0:0", true, "127.0.0.1", "::1"},
		{":0", true, "127.0.0.1", ""},
	}
	for _, c := range cases {
		n := startDNSNode(t, secret, c.listen)
		a := n.loc.SelfAnnouncement()
		if a.AnyAddr != c.anyAddr || !slices.Contains(a.Addrs, netip.MustParseAddr(c.has)) ||
			(c.hasNot != "" && slices.Contains(a.Addrs, netip.MustParseAddr(c.hasNot))) {
			t.Errorf("listen %s: announcement %+v", c.listen, a)
		}
		if !a.Public || a.Nameserver {
			t.Errorf("listen %s: public %v nameserver %v (DNS is not on port 53)", c.listen, a.Public, a.Nameserver)
		}
		n.Close()
	}
}

// The [dns] rrl_* keys reach the limiter; 0 means off (rate) and never
// (slip) in the config, where dnsserver reads 0 as "default".
func TestRateLimitFromConfig(t *testing.T) {
	cases := []struct {
		rate, burst, slip, table int
		want                     dnsserver.RateLimit
	}{
		{20, 40, 2, 65536, dnsserver.RateLimit{PerSecond: 20, Burst: 40, Slip: 2, MaxEntries: 65536}},
		{0, 40, 2, 65536, dnsserver.RateLimit{PerSecond: -1, Burst: 40, Slip: 2, MaxEntries: 65536}},
		{5, 7, 0, 2048, dnsserver.RateLimit{PerSecond: 5, Burst: 7, Slip: -1, MaxEntries: 2048}},
	}
	for _, c := range cases {
		d := config.DNS{RRLResponsesPerSecond: c.rate, RRLBurst: c.burst, RRLSlip: c.slip, RRLTableSize: c.table}
		if got := rateLimit(d); got != c.want {
			t.Errorf("%+v: got %+v, want %+v", d, got, c.want)
		}
	}
	if d := config.Default().DNS; rateLimit(d) != dnsserver.DefaultRateLimit() {
		t.Errorf("config defaults %+v differ from the limiter as shipped %+v", rateLimit(d), dnsserver.DefaultRateLimit())
	}
}

// An idle peer is not re-asked every sweep: after the first exchange, two
// heartbeat sweeps pass without a /coral/info request to it (its
// connection's liveness is the link watch's job). A change it makes —
// pausing — still reaches the other node's directory at once, well before
// the periodic refresh, because it tells its peers.
func TestIdlePeerIsNotPolledButItsChangeArrives(t *testing.T) {
	const sweep, refresh = 5 * time.Second, 30 * time.Second // core/locality's heartbeat
	secret := filepath.Join(t.TempDir(), "network.key")
	a := startDNSNode(t, secret, "127.0.0.24:0")
	b := startDNSNode(t, secret, "127.0.0.25:0", a.Addrs().P2P...)
	// Both list each other's address: the exchanges a start-up needs
	// (asked again while the peer's listener was not bound) are over.
	testkit.Eventually(t, 10*time.Second, "a and b list each other's proxy", func() bool {
		p, ok := proxyByID(a.loc.Directory().Proxies(), b.nodeID)
		q, ok2 := proxyByID(b.loc.Directory().Proxies(), a.nodeID)
		return ok && ok2 && len(p.Addrs) > 0 && len(q.Addrs) > 0 && !p.Full
	})
	// Stream reads of a protocol on both nodes: requests and replies.
	reads := func(proto string) (total uint64) {
		for _, n := range []*Node{a, b} {
			for _, c := range n.host.StreamCounts() {
				if strings.HasPrefix(c.Protocol, proto) {
					total += c.Reads
				}
			}
		}
		return total
	}
	asked, told := reads("/coral/info/"), reads("/coral/info-changed/")
	// An observation window, not synchronisation: two sweeps must pass.
	time.Sleep(2*sweep + time.Second)
	asked, told = reads("/coral/info/")-asked, reads("/coral/info-changed/")-told
	if asked > 2*told {
		t.Errorf("%d info reads in two idle heartbeat sweeps after %d change notices; want at most a request and a reply per notice (re-asked only after %v)",
			asked, told, refresh)
	}
	t.Logf("idle for two sweeps: %d info reads, %d change notice reads", asked, told)

	paused := time.Now()
	if _, err := b.UpdateSettings(context.Background(), []byte(`{"paused": true}`)); err != nil {
		t.Fatal(err)
	}
	// Within a heartbeat or two (issue 12): the settings change refreshes
	// b's announcement and sends the notice at once (12 ms measured); a
	// notice that did not get through goes again at b's next sweep.
	testkit.Eventually(t, 2*sweep, "a sees b as full after b paused", func() bool {
		p, ok := proxyByID(a.loc.Directory().Proxies(), b.nodeID)
		return ok && p.Full
	})
	t.Logf("b's pause reached a's directory after %v", time.Since(paused).Round(time.Millisecond))
}
