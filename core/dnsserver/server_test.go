package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

func TestNameForms(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(6)...)
	ts := startServer(t, Config{StaticNS: []NameServer{{Name: "ns1." + testZone, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.53")}}}}, dir)

	cases := []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int // number of answer records
		aa      bool
	}{
		{"www.example.com." + testZone, dns.TypeA, dns.RcodeSuccess, 3, true},
		{"WWW.Example.COM." + strings.ToUpper(testZone), dns.TypeA, dns.RcodeSuccess, 3, true},
		{"www.example.com." + testZone, dns.TypeAAAA, dns.RcodeSuccess, 3, true},
		{"www.example.com.8080." + testZone, dns.TypeA, dns.RcodeSuccess, 3, true},
		{"127.0.0.1.8000." + testZone, dns.TypeA, dns.RcodeSuccess, 3, true},
		{"example.com.https." + testZone, dns.TypeA, dns.RcodeSuccess, 3, true},
		{"example.com.8443.https." + testZone, dns.TypeA, dns.RcodeSuccess, 3, true},
		{"www.example.com." + testZone, dns.TypeMX, dns.RcodeSuccess, 0, true},                   // NODATA
		{"www.example.com." + testZone, dns.TypeANY, dns.RcodeSuccess, 3, true},                  // RFC 8482: the A set
		{"ns1." + testZone, dns.TypeA, dns.RcodeSuccess, 1, true},                                // static glue
		{testZone, dns.TypeSOA, dns.RcodeSuccess, 1, true},                                       // apex
		{testZone, dns.TypeNS, dns.RcodeSuccess, 1, true},                                        // static NS (no volunteer nameservers)
		{testZone, dns.TypeA, dns.RcodeSuccess, 0, true},                                         // NODATA at the apex
		{"8000." + testZone, dns.TypeA, dns.RcodeSuccess, 0, true},                               // suffix of a port form
		{"https." + testZone, dns.TypeA, dns.RcodeSuccess, 0, true},                              // suffix of an https form
		{"0.1.8000." + testZone, dns.TypeA, dns.RcodeSuccess, 0, true},                           // suffix of 0.0.0.1.8000
		{"ns." + testZone, dns.TypeA, dns.RcodeSuccess, 0, true},                                 // the nameserver zone
		{"l0." + "ns." + testZone, dns.TypeA, dns.RcodeSuccess, 0, true},                         // minimised query toward an NS name
		{"-bad-.example." + testZone, dns.TypeA, dns.RcodeNameError, 0, true},                    // bad label
		{"a.b.99999." + testZone, dns.TypeA, dns.RcodeNameError, 0, true},                        // port out of range
		{"www.example.com." + testZone + "." + testZone, dns.TypeA, dns.RcodeNameError, 0, true}, // origin inside the zone
		{"x\\.y.example." + testZone, dns.TypeA, dns.RcodeNameError, 0, true},                    // a dot inside a label
		{"n0.a.b.c.d.ns." + testZone, dns.TypeA, dns.RcodeNameError, 0, true},                    // too deep for a nameserver name
		{"n0.a.b.c.ns." + testZone, dns.TypeA, dns.RcodeNameError, 0, true},                      // unknown nameserver
		{"www.example.com", dns.TypeA, dns.RcodeRefused, 0, false},
		{"x" + testZone, dns.TypeA, dns.RcodeRefused, 0, false}, // look-alike, not a subdomain
		{"coral\\.test", dns.TypeA, dns.RcodeRefused, 0, false}, // one label "coral.test"
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, c := range cases {
			t.Run(network+"/"+c.name+"/"+dns.TypeToString[c.qtype], func(t *testing.T) {
				r := ts.exchange(t, network, c.name, c.qtype, 0)
				if r.Rcode != c.rcode {
					t.Fatalf("rcode %s, want %s\n%v", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode], r)
				}
				if len(r.Answer) != c.answers {
					t.Fatalf("%d answers, want %d\n%v", len(r.Answer), c.answers, r)
				}
				if r.Authoritative != c.aa {
					t.Fatalf("AA=%v, want %v", r.Authoritative, c.aa)
				}
				for _, rr := range r.Answer {
					if rr.Header().Name != dns.Fqdn(c.name) {
						t.Errorf("owner %q, want the question's spelling %q", rr.Header().Name, dns.Fqdn(c.name))
					}
					switch rr.Header().Rrtype {
					case dns.TypeA, dns.TypeAAAA:
						if !strings.HasPrefix(c.name, "ns1.") && rr.Header().Ttl != 30 {
							t.Errorf("TTL %d, want 30", rr.Header().Ttl)
						}
						if rr.Header().Rrtype != c.qtype && c.qtype != dns.TypeANY {
							t.Errorf("record type %s for a %s query", dns.TypeToString[rr.Header().Rrtype], dns.TypeToString[c.qtype])
						}
					}
				}
				if c.rcode != dns.RcodeRefused && len(r.Answer) == 0 {
					if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA {
						t.Fatalf("negative answer without SOA: %v", r.Ns)
					}
					if soa := r.Ns[0].(*dns.SOA); soa.Minttl != 30 || soa.Hdr.Ttl != 30 {
						t.Errorf("negative TTL %d/%d, want 30", soa.Hdr.Ttl, soa.Minttl)
					}
				}
			})
		}
	}
}

func TestAnswersRotateOverProxies(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(6)...)
	ts := startServer(t, Config{}, dir)
	seen := map[netip.Addr]int{}
	firsts := map[netip.Addr]bool{}
	for range 6 {
		r := ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)
		as := answerAddrs(r)
		if len(as) != 3 || len(addrSet(as)) != 3 {
			t.Fatalf("want 3 distinct addresses, got %v", as)
		}
		firsts[as[0]] = true
		for _, a := range as {
			seen[a]++
		}
	}
	if len(seen) != 6 {
		t.Fatalf("6 equal proxies, 6 queries: only %d of them handed out: %v", len(seen), seen)
	}
	for a, n := range seen {
		if n != 3 {
			t.Errorf("%v handed out %d times, want 3 (even load)", a, n)
		}
	}
	if len(firsts) < 6 {
		t.Errorf("first record should rotate; firsts %v", firsts)
	}
}

func TestDeadProxyLeavesWithinLiveWindow(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{Answers: 3, LiveWindow: time.Minute}, dir)
	ask := func() map[netip.Addr]bool {
		return addrSet(answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)))
	}
	if got := ask(); !got[v4(0)] || len(got) != 3 {
		t.Fatalf("all three proxies are live, got %v", got)
	}
	// p0 stops; the others keep heartbeating.
	for step := range 6 {
		ts.clock.Advance(15 * time.Second)
		now := ts.clock.Now()
		dir.heard(now, "p1", "p2")
		got := ask()
		silent := now.Sub(t0)
		switch {
		case silent <= time.Minute && !got[v4(0)]:
			t.Fatalf("step %d: p0 silent for %v (within the window) was dropped: %v", step, silent, got)
		case silent > time.Minute && got[v4(0)]:
			t.Fatalf("step %d: p0 silent for %v (beyond the 1m window) still handed out: %v", step, silent, got)
		}
		if !got[v4(1)] || !got[v4(2)] {
			t.Fatalf("live proxies missing: %v", got)
		}
	}
	// Everyone silent: no live proxy, SERVFAIL so the resolver asks another nameserver.
	ts.clock.Advance(2 * time.Minute)
	r := ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("no live proxies: rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
}

type fakeProber struct {
	mu    sync.Mutex
	alive map[string]bool
	calls map[string]int
}

func (p *fakeProber) Ping(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls[id]++
	if p.alive[id] {
		return nil
	}
	return errors.New("no answer")
}

func TestStaleProxiesArePingedBeforeUse(t *testing.T) {
	dir := &fakeDir{}
	ps := publicProxies(4)
	for i := range ps {
		ps[i].LastHeard = t0.Add(-time.Hour) // all stale
	}
	dir.set(ps...)
	pr := &fakeProber{alive: map[string]bool{"p1": true, "p3": true}, calls: map[string]int{}}
	ts := startServer(t, Config{Answers: 4}, dir, WithProber(pr))
	for range 3 {
		got := addrSet(answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)))
		if len(got) != 2 || !got[v4(1)] || !got[v4(3)] {
			t.Fatalf("want exactly the two proxies that answer pings, got %v", got)
		}
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for id, n := range pr.calls {
		if n != 1 {
			t.Errorf("%s pinged %d times in one live window, want 1 (results are cached)", id, n)
		}
	}
	if len(pr.calls) != 4 {
		t.Errorf("pinged %v, want all four stale proxies once", pr.calls)
	}
}

type fakeHints struct {
	mu    sync.Mutex
	rtts  map[netip.Prefix]map[string]time.Duration
	asked []netip.Prefix
}

func (h *fakeHints) RTTs(_ context.Context, n netip.Prefix) map[string]time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, n)
	return h.rtts[n]
}

func TestRTTHintsChooseNearest(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(10)...)
	loop := netip.MustParsePrefix("127.0.0.0/24") // the test resolver's network
	h := &fakeHints{rtts: map[netip.Prefix]map[string]time.Duration{loop: {
		"p7": 4 * time.Millisecond, "p2": 6 * time.Millisecond, "p5": 8 * time.Millisecond,
		"p0": 120 * time.Millisecond, "p1": 90 * time.Millisecond, "p9": 45 * time.Millisecond,
	}}}
	ts := startServer(t, Config{Answers: 3}, dir, WithHints(h))
	want := addrSet([]netip.Addr{v4(7), v4(2), v4(5)})
	for range 5 {
		got := answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0))
		if len(got) != 3 {
			t.Fatalf("got %v", got)
		}
		for _, a := range got {
			if !want[a] {
				t.Fatalf("answer %v contains %v, not one of the three nearest", got, a)
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.asked) != 1 || h.asked[0] != loop {
		t.Errorf("hints asked for %v, want once for %v (then cached)", h.asked, loop)
	}
}

func TestOwnClusterWithoutHints(t *testing.T) {
	dir := &fakeDir{}
	ps := publicProxies(8)
	for i := range ps {
		ps[i].Cluster = [3]string{fmt.Sprintf("far%d", i), "l1-b", "g"}
	}
	ps[3].Cluster = [3]string{"near", "l1-a", "g"}
	ps[6].Cluster = [3]string{"near", "l1-a", "g"}
	ps[1].Cluster = [3]string{"other", "l1-a", "g"} // same L1 only
	dir.set(append(ps, Proxy{ID: "me", Cluster: [3]string{"near", "l1-a", "g"}})...)
	ts := startServer(t, Config{Answers: 3, Self: "me"}, dir)
	for range 4 {
		got := addrSet(answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)))
		if len(got) != 3 || !got[v4(3)] || !got[v4(6)] || !got[v4(1)] {
			t.Fatalf("want the two same-L2 proxies and the same-L1 one, got %v", got)
		}
	}
}

func TestClientSubnet(t *testing.T) {
	dir := &fakeDir{}
	ps := publicProxies(6)
	// A proxy behind NAT: reachable only from its own network.
	ps = append(ps, Proxy{ID: "home", Addrs: []netip.Addr{netip.MustParseAddr("203.0.113.77")}, LastHeard: t0})
	// A proxy known only by its LAN address.
	ps = append(ps, Proxy{ID: "lan", Addrs: []netip.Addr{netip.MustParseAddr("10.1.2.3")}, LastHeard: t0, Public: true})
	dir.set(ps...)
	clientNet := netip.MustParsePrefix("203.0.113.0/24")
	h := &fakeHints{rtts: map[netip.Prefix]map[string]time.Duration{
		clientNet:                             {"p4": 3 * time.Millisecond, "p5": 5 * time.Millisecond},
		netip.MustParsePrefix("127.0.0.0/24"): {"p0": time.Millisecond, "p1": time.Millisecond},
	}}
	ts := startServer(t, Config{Answers: 3}, dir, WithHints(h))

	ecs := func(addr string, bits uint8) *dns.EDNS0_SUBNET {
		return &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: bits, Address: net.ParseIP(addr)}
	}
	r := ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 1232, ecs("203.0.113.0", 24))
	got := answerAddrs(r)
	if len(got) != 3 || got[0] != netip.MustParseAddr("203.0.113.77") || !addrSet(got)[v4(4)] || !addrSet(got)[v4(5)] {
		t.Fatalf("with client subnet 203.0.113.0/24: want the proxy on that network first, then the hinted p4, p5; got %v", got)
	}
	opt := r.IsEdns0()
	if opt == nil || len(opt.Option) != 1 {
		t.Fatalf("response must echo the client subnet option: %v", opt)
	}
	if e := opt.Option[0].(*dns.EDNS0_SUBNET); e.SourceScope != 24 || e.SourceNetmask != 24 {
		t.Errorf("echoed subnet %v, want source 24 scope 24", e)
	}

	// Without ECS the resolver (loopback) is the visitor: its own hints, the
	// LAN proxy is reachable, the NATed one is not.
	got = answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 1232))
	gs := addrSet(got)
	if len(got) != 3 || got[0] != netip.MustParseAddr("10.1.2.3") || !gs[v4(0)] || !gs[v4(1)] {
		t.Fatalf("without client subnet: want the LAN proxy, then hinted p0, p1; got %v", got)
	}
	// A private client subnet is ignored: answers as without it, scope 0.
	r = ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 1232, ecs("10.9.0.0", 16))
	if got := answerAddrs(r); got[0] != netip.MustParseAddr("10.1.2.3") {
		t.Fatalf("private client subnet must be ignored, got %v", got)
	}
	if e := r.IsEdns0().Option[0].(*dns.EDNS0_SUBNET); e.SourceScope != 0 {
		t.Errorf("ignored subnet echoed with scope %d, want 0", e.SourceScope)
	}
	// So is a special-purpose one: a /24 of 198.18.0.0/15 would be handed
	// volunteers' proxy-tool TUN addresses there.
	r = ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 1232, ecs("198.18.0.0", 24))
	if e := r.IsEdns0().Option[0].(*dns.EDNS0_SUBNET); e.SourceScope != 0 {
		t.Errorf("special-purpose subnet echoed with scope %d, want 0", e.SourceScope)
	}
	// A public client subnet elsewhere: neither the NATed nor the LAN proxy.
	got = answerAddrs(ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 1232, ecs("198.51.100.0", 24)))
	for _, a := range got {
		if a == netip.MustParseAddr("203.0.113.77") || a.IsPrivate() {
			t.Fatalf("client elsewhere on the Internet got unreachable proxy %v in %v", a, got)
		}
	}
}

func TestReachability(t *testing.T) {
	for _, c := range []struct {
		addr      string
		public    bool
		visitor   string
		bits      int
		ok, local bool
	}{
		{"192.0.2.1", true, "198.51.100.1", 32, true, false},
		{"192.0.2.1", false, "198.51.100.1", 32, false, false},
		{"192.0.2.1", false, "192.0.2.200", 32, true, true},
		{"192.0.2.1", false, "192.0.2.200", 16, false, false}, // a /16 subnet says too little
		{"2001:db8:1:2::1", false, "2001:db8:1:ff::9", 128, true, true},
		{"2001:db8:1:2::1", false, "2001:db8:2::9", 128, false, false},
		{"10.0.0.5", true, "198.51.100.1", 32, false, false},
		{"10.0.0.5", true, "192.168.1.1", 32, true, true},
		{"100.64.3.4", true, "127.0.0.1", 32, true, true},
		{"127.0.0.1", true, "127.0.0.1", 32, true, true},
		{"127.0.0.1", true, "10.0.0.1", 32, false, false},
		{"fe80::1", true, "fe80::2", 128, false, false},
		{"0.0.0.0", true, "127.0.0.1", 32, false, false},
		// Special-purpose blocks are not reachable from elsewhere,
		// public or not, only from their own network.
		{"198.18.0.1", true, "198.51.100.1", 32, false, false},
		{"198.19.255.1", true, "198.51.100.1", 32, false, false},
		{"198.18.0.1", true, "198.18.0.200", 32, true, true},
		{"240.0.0.1", true, "198.51.100.1", 32, false, false},
		{"255.255.255.255", true, "198.51.100.1", 32, false, false},
		{"0.1.2.3", true, "198.51.100.1", 32, false, false},
		{"192.0.0.8", true, "198.51.100.1", 32, false, false},
		{"192.88.99.1", true, "198.51.100.1", 32, false, false},
		{"fec0::1", true, "2001:db8:1::9", 128, false, false},
		{"100::1", true, "2001:db8:1::9", 128, false, false},
		{"2001:2::1", true, "2001:db8:1::9", 128, false, false},
		{"5f00::1", true, "2001:db8:1::9", 128, false, false},
		{"64:ff9b:1::1", true, "2001:db8:1::9", 128, false, false},
		// The documentation ranges count as public (tests use them), and
		// so do ordinary global addresses and NAT64's well-known prefix.
		{"203.0.113.5", true, "198.51.100.1", 32, true, false},
		{"198.51.100.9", true, "192.0.2.1", 32, true, false},
		{"2001:db8::1", true, "2001:db8:1::9", 128, true, false},
		{"8.8.8.8", true, "198.51.100.1", 32, true, false},
		{"2606:4700::1", true, "2001:db8:1::9", 128, true, false},
		{"64:ff9b::808:808", true, "2001:db8:1::9", 128, true, false},
		// A NAT64 address is what its IPv4 address is (10.0.0.1 here).
		{"64:ff9b::a00:1", true, "2001:db8:1::9", 128, false, false},
		{"64:ff9b::a00:1", true, "10.0.0.9", 32, true, true},
	} {
		ok, local := reachable(netip.MustParseAddr(c.addr), c.public, newVisitor(netip.MustParseAddr(c.visitor), c.bits))
		if ok != c.ok || local != c.local {
			t.Errorf("reachable(%s public=%v, visitor %s/%d) = %v,%v, want %v,%v", c.addr, c.public, c.visitor, c.bits, ok, local, c.ok, c.local)
		}
	}
}

// nameservers returns n volunteer nameservers, each in its own L2 and L1
// cluster except those listed in near, which share this node's clusters.
func nameservers(n int, near ...int) []Proxy {
	ps := make([]Proxy, n)
	for i := range ps {
		ps[i] = Proxy{
			ID:         fmt.Sprintf("ns-%d", i),
			Addrs:      []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), netip.MustParseAddr(fmt.Sprintf("2001:db8:53::%x", i+1))},
			LastHeard:  t0,
			Public:     true,
			Nameserver: true,
			Cluster:    [3]string{fmt.Sprintf("regional-cluster-%02d", i), fmt.Sprintf("continent-%02d", i), "world"},
		}
	}
	for _, i := range near {
		ps[i].Cluster = [3]string{"paris", "europe", "world"}
	}
	return ps
}

func TestLevelNameservers(t *testing.T) {
	dir := &fakeDir{}
	ps := nameservers(8, 2, 5)
	self := ps[2]
	dir.set(append(ps, publicProxies(3)...)...)
	ts := startServer(t, Config{NSCount: 2, Self: self.ID}, dir)

	r := ts.exchange(t, "tcp", testZone, dns.TypeNS, 1232)
	if len(r.Answer) != 2 {
		t.Fatalf("NS answer %v", r.Answer)
	}
	if len(r.Extra) != 1 {
		t.Errorf("additional section %v, want only OPT (minimal responses: no glue)", r.Extra)
	}
	byName := map[string]netip.Addr{}
	for _, p := range ps {
		byName[ts.nsName(&p)] = p.Addrs[0]
	}
	wantSuffix := ".paris.europe.world.ns." + testZone + "."
	for _, rr := range r.Answer {
		ns := rr.(*dns.NS)
		if ns.Hdr.Ttl != 300 {
			t.Errorf("NS TTL %d, want 300", ns.Hdr.Ttl)
		}
		if !strings.HasSuffix(ns.Ns, wantSuffix) {
			t.Fatalf("nameserver %q is not under this node's cluster %q", ns.Ns, wantSuffix)
		}
		node := strings.TrimSuffix(ns.Ns, wantSuffix)
		if len(node) != 9 || node[0] != 'n' {
			t.Errorf("node label %q, want n + 8 base32hex characters", node)
		}
		// The name resolves to the nameserver's address.
		a := ts.exchange(t, "udp", ns.Ns, dns.TypeA, 0)
		if got := answerAddrs(a); len(got) != 1 || got[0] != byName[ns.Ns] {
			t.Errorf("A %s = %v, want %v", ns.Ns, got, byName[ns.Ns])
		}
	}
	// Long cluster IDs become hashed labels, and the name still resolves.
	far := ts.nsName(&ps[0])
	labels := dns.SplitDomainName(far)
	if len(labels) != 4+1+len(strings.Split(testZone, ".")) || labels[1][0] != 'h' || labels[3] != "world" {
		t.Errorf("nameserver name %q: want <node>.<hashed L2>.<hashed L1>.world.ns.<zone>", far)
	}
	if got := answerAddrs(ts.exchange(t, "tcp", far, dns.TypeAAAA, 0)); len(got) != 1 || got[0] != ps[0].Addrs[1] {
		t.Errorf("AAAA %s = %v, want %v", far, got, ps[0].Addrs[1])
	}
	// Positive answers are minimal: the addresses and nothing else.
	r = ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 1232)
	if len(r.Answer) == 0 || len(r.Ns) != 0 || len(r.Extra) != 1 {
		t.Fatalf("answer %v authority %v additional %v: want addresses only", r.Answer, r.Ns, r.Extra)
	}
	// A nameserver that falls silent leaves the NS set.
	ts.clock.Advance(2 * time.Minute)
	ids := []string{}
	for _, p := range ps {
		if p.ID != ps[5].ID {
			ids = append(ids, p.ID)
		}
	}
	dir.heard(ts.clock.Now(), ids...)
	r = ts.exchange(t, "udp", testZone, dns.TypeNS, 1232)
	for _, rr := range r.Answer {
		if strings.HasPrefix(rr.(*dns.NS).Ns, ts.nodeLabel(ps[5].ID)+".") {
			t.Fatalf("silent nameserver still in the NS set: %v", r.Answer)
		}
	}
}

func TestTruncationAndTCPRetry(t *testing.T) {
	dir := &fakeDir{}
	dir.set(nameservers(13)...)
	ts := startServer(t, Config{NSCount: 13}, dir)

	// Over UDP the NS set is cut to what fits MaxAmplification times the
	// query (the nearest first), never sent truncated: a subset of a
	// synthesised NS set is a valid answer.
	udp := ts.exchange(t, "udp", testZone, dns.TypeNS, 0)
	if udp.Truncated || len(udp.Answer) == 0 || len(udp.Answer) >= 13 {
		t.Fatalf("UDP: TC=%v %d NS, want some but not all 13", udp.Truncated, len(udp.Answer))
	}
	tcp := ts.exchange(t, "tcp", testZone, dns.TypeNS, 0)
	if tcp.Truncated || len(tcp.Answer) != 13 || len(tcp.Extra) != 0 {
		t.Fatalf("over TCP: TC=%v, %d NS, %d additional; want 13 NS and no glue", tcp.Truncated, len(tcp.Answer), len(tcp.Extra))
	}
	edns := ts.exchange(t, "udp", testZone, dns.TypeNS, 4096)
	if opt := edns.IsEdns0(); opt == nil || opt.UDPSize() != 1232 {
		t.Fatalf("OPT not echoed with the server's payload size: %v", opt)
	}
	// A response that cannot be cut goes out empty with TC: a static
	// nameserver outside the zone with a long name makes the SOA of a
	// negative answer bigger than the bound.
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example.net"
	ts2 := startServer(t, Config{StaticNS: []NameServer{{Name: long}}}, &fakeDir{})
	nx := ts2.exchange(t, "udp", "x."+testZone, dns.TypeTXT, 0)
	if !nx.Truncated || len(nx.Ns) != 0 {
		t.Fatalf("oversized negative answer: TC=%v authority %v, want TC and nothing", nx.Truncated, nx.Ns)
	}
	if full := ts2.exchange(t, "tcp", "x."+testZone, dns.TypeTXT, 0); len(full.Ns) != 1 {
		t.Fatalf("over TCP the SOA is there: %v", full.Ns)
	}
}

func TestEDNS(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{}, dir)

	m := new(dns.Msg)
	m.SetQuestion("example.com."+testZone+".", dns.TypeA)
	m.SetEdns0(1232, true)
	m.IsEdns0().SetVersion(1)
	r := ts.send(t, "udp", m)
	if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil {
		t.Fatalf("EDNS version 1: rcode %s, want BADVERS with OPT", dns.RcodeToString[r.Rcode])
	}

	m.IsEdns0().SetVersion(0)
	r = ts.send(t, "udp", m)
	if r.Rcode != dns.RcodeSuccess || r.IsEdns0() == nil || !r.IsEdns0().Do() {
		t.Fatalf("EDNS0 with DO: want success and the DO bit echoed, got %v", r)
	}

	r = ts.exchange(t, "udp", "example.com."+testZone, dns.TypeA, 0)
	if r.IsEdns0() != nil {
		t.Fatalf("OPT in a response to a query without EDNS")
	}
}

func TestMalformedPacketsDropped(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{}, dir)
	conn, err := net.Dial("udp", ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	good := new(dns.Msg)
	good.SetQuestion("example.com."+testZone+".", dns.TypeA)
	wire, _ := good.Pack()
	resp := append([]byte(nil), wire...)
	resp[2] |= 0x80 // QR: a response
	two := append([]byte(nil), wire...)
	two[5] = 2 // two questions announced
	cut := append([]byte(nil), wire[:len(wire)-3]...)
	loop := append(append([]byte(nil), wire[:12]...), 0xC0, 12, 0, 1, 0, 1) // name pointing at itself
	packets := [][]byte{{}, {1, 2, 3}, resp, two, cut, loop, make([]byte, 300)}
	for _, p := range packets {
		if len(p) == 0 {
			continue
		}
		if _, err := conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, "malformed packets counted", func() bool { return ts.Stats().Malformed >= uint64(len(packets)-1) })
	// The next datagram we read must be the answer to a good query: nothing
	// was sent back for the junk, and the server is still serving.
	good.Id = 4242
	wire, _ = good.Pack()
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil || r.Id != 4242 || len(r.Answer) != 3 {
		t.Fatalf("first reply after junk: %v (err %v), want the answer to query 4242", r, err)
	}
}

func TestConfigValidation(t *testing.T) {
	dir := &fakeDir{}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "zone"},
		{Config{Zone: "bad_zone..x"}, "zone"},
		{Config{Zone: testZone, NSZone: "ns.other.test"}, "inside zone"},
		{Config{Zone: testZone, NSZone: testZone}, "inside zone"},
		{Config{Zone: testZone, TTL: 10 * time.Second}, "ttl"},
		{Config{Zone: testZone, TTL: 5 * time.Minute}, "ttl"},
		{Config{Zone: testZone, Answers: 5}, "answers"},
		{Config{Zone: testZone, Answers: 1}, "answers"},
		{Config{Zone: testZone, UDPSize: 100}, "udp_size"},
		{Config{Zone: testZone, StaticNS: []NameServer{{Name: "ns1." + testZone}}}, "glue"},
		{Config{Zone: testZone, StaticNS: []NameServer{{Name: "x.ns." + testZone, Addrs: []netip.Addr{v4(1)}}}}, "collides"},
	} {
		_, err := New(c.cfg, dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "dnsserver: ") {
			t.Errorf("New(%+v) error %v, want one mentioning %q", c.cfg, err, c.want)
		}
	}
	if _, err := New(Config{Zone: testZone}, nil); err == nil {
		t.Error("nil directory accepted")
	}
	s, err := New(Config{Zone: "Coral.Test."}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.zoneFQDN != "coral.test." || s.nsFQDN != "ns.coral.test." {
		t.Errorf("zone %q ns zone %q", s.zoneFQDN, s.nsFQDN)
	}
}

func TestStartCloseAndPortInUse(t *testing.T) {
	dir := &fakeDir{}
	ts := startServer(t, Config{}, dir)
	other, err := New(Config{Zone: testZone, Listen: ts.udp}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); err == nil {
		other.Close()
		t.Fatal("second server started on a port in use")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(Config{Zone: testZone, Listen: "127.0.0.1:0"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	udp, _ := s.Addr()
	cancel() // ending the context stops the server
	testkit.Eventually(t, 10*time.Second, "port released", func() bool {
		pc, err := net.ListenPacket("udp", udp.String())
		if err == nil {
			pc.Close()
		}
		return err == nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Addresses from special-purpose blocks (a desktop proxy tool's TUN
// 198.18.0.1, reserved, "this network", broadcast, IETF protocol
// assignments, site-local) are never handed to visitors elsewhere, even
// for a public proxy and a volunteer nameserver; the documentation ranges,
// which tests use as public addresses, still are.
func TestSpecialPurposeAddressesNotAnswered(t *testing.T) {
	special := []string{"198.18.0.1", "240.0.0.1", "0.1.2.3", "255.255.255.255", "192.0.0.8", "fec0::1", "100::1", "2001:2::1"}
	ps := publicProxies(1) // 192.0.2.10 and 2001:db8::a
	for i, a := range special {
		ps = append(ps, Proxy{ID: fmt.Sprintf("s%d", i), Addrs: []netip.Addr{netip.MustParseAddr(a)}, LastHeard: t0, Public: true})
	}
	ns := Proxy{ID: "ns-special", LastHeard: t0, Public: true, Nameserver: true}
	for _, a := range special {
		ns.Addrs = append(ns.Addrs, netip.MustParseAddr(a))
	}
	ps = append(ps, ns)
	dir := &fakeDir{}
	dir.set(ps...)
	ts := startServer(t, Config{Answers: 4}, dir)
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		want := v4(0)
		if qtype == dns.TypeAAAA {
			want = netip.MustParseAddr("2001:db8::a")
		}
		for range 3 { // every rotation
			for _, net := range []string{"udp", "tcp"} {
				got := answerAddrs(ts.exchange(t, net, "example.com."+testZone, qtype, 0))
				if len(got) != 1 || got[0] != want {
					t.Fatalf("%s over %s: %v, want only %v", dns.TypeToString[qtype], net, got, want)
				}
			}
		}
		if got := answerAddrs(ts.exchange(t, "udp", ts.nsName(&ps[len(ps)-1]), qtype, 0)); len(got) > 0 {
			t.Errorf("nameserver %s: addresses %v handed out", dns.TypeToString[qtype], got)
		}
	}
}
