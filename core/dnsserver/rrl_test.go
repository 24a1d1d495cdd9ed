package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

// A flood of one query from one network gets the burst, then every 2nd
// suppressed response slips out truncated; the same network's queries for
// the apex (a budget of its own) are answered in full; TCP is not limited.
func TestRateLimitIdenticalResponses(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	const burst, queries = 5, 40
	ts := startServer(t, Config{RateLimit: RateLimit{PerSecond: 1, Burst: burst, Slip: 2}}, dir)
	// The clock does not move, so the bucket never refills.
	conn, err := (&dns.Client{Net: "udp"}).Dial(ts.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for range queries {
		m := new(dns.Msg)
		m.SetQuestion("www.example.com."+testZone+".", dns.TypeA)
		if err := conn.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	wantSlips := (queries - burst) / 2
	full, slipped := 0, 0
	for full+slipped < burst+wantSlips {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		r, err := conn.ReadMsg()
		if err != nil {
			t.Fatalf("after %d full and %d truncated replies: %v", full, slipped, err)
		}
		switch {
		case r.Truncated && len(r.Answer) == 0:
			slipped++
		case len(r.Answer) > 0:
			full++
		default:
			t.Fatalf("unexpected response %v", r)
		}
	}
	testkit.Eventually(t, 10*time.Second, "all queries handled", func() bool { return ts.Stats().RateDropped == uint64(queries-burst-wantSlips) })
	if full != burst || slipped != wantSlips {
		t.Errorf("%d full answers and %d slips for one name, want the burst %d and %d (every 2nd suppressed)", full, slipped, burst, wantSlips)
	}
	// The apex from the same network has its own budget, and the query
	// name's case does not make a new one.
	for i := range burst {
		if r := ts.exchange(t, "udp", testZone, dns.TypeSOA, 0); len(r.Answer) == 0 {
			t.Fatalf("apex SOA %d from the same network: %v", i, r)
		}
	}
	if r := ts.exchange(t, "udp", "WWW.Example.COM."+testZone, dns.TypeA, 0); !r.Truncated && len(r.Answer) > 0 {
		t.Errorf("the flooded name in other case got a full answer: RRL keys must ignore case")
	}
	if r := ts.exchange(t, "tcp", "www.example.com."+testZone, dns.TypeA, 0); len(r.Answer) != 3 {
		t.Fatalf("TCP answer %v", r)
	}
}

// What counts as the same response, decided on packed responses.
func TestRateLimitKeys(t *testing.T) {
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 1, Slip: -1, MaxEntries: 1 << 16}, "a.test.", "ns1.a.test.")
	pack := func(name string, qtype uint16, rcode, answers int) []byte {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		m.Response, m.Rcode = true, rcode
		for range answers {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: dns.Fqdn(name), Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.IPv4(192, 0, 2, 1)})
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := func(client string, b []byte) uint64 {
		k, ok := l.responseKey(netip.MustParseAddr(client), b)
		if !ok {
			t.Fatalf("no key for %x", b)
		}
		return k
	}
	www := pack("www.a.test", dns.TypeA, dns.RcodeSuccess, 1)
	cases := []struct {
		what   string
		a, b   uint64
		shared bool
	}{
		{"same /24", key("192.0.2.1", www), key("192.0.2.200", www), true},
		{"other /24", key("192.0.2.1", www), key("192.0.3.1", www), false},
		{"same /56", key("2001:db8:0:1::1", www), key("2001:db8:0:1:ffff::1", www), true},
		{"other /56", key("2001:db8:0:1::1", www), key("2001:db8:0:100::1", www), false},
		{"case", key("192.0.2.1", www), key("192.0.2.1", pack("WWW.A.test", dns.TypeA, dns.RcodeSuccess, 1)), true},
		{"other synthesised name", key("192.0.2.1", www), key("192.0.2.1", pack("xyz.a.test", dns.TypeA, dns.RcodeSuccess, 1)), true},
		{"synthesised no data, any name", key("192.0.2.1", pack("x.a.test", dns.TypeMX, dns.RcodeSuccess, 0)),
			key("192.0.2.1", pack("y.a.test", dns.TypeMX, dns.RcodeSuccess, 0)), true},
		{"apex vs synthesised", key("192.0.2.1", pack("a.test", dns.TypeA, dns.RcodeSuccess, 1)), key("192.0.2.1", www), false},
		{"apex vs nameserver", key("192.0.2.1", pack("a.test", dns.TypeA, dns.RcodeSuccess, 1)),
			key("192.0.2.1", pack("ns1.a.test", dns.TypeA, dns.RcodeSuccess, 1)), false},
		{"apex, case", key("192.0.2.1", pack("a.test", dns.TypeNS, dns.RcodeSuccess, 1)),
			key("192.0.2.1", pack("A.Test", dns.TypeNS, dns.RcodeSuccess, 1)), true},
		{"other type", key("192.0.2.1", www), key("192.0.2.1", pack("www.a.test", dns.TypeAAAA, dns.RcodeSuccess, 1)), false},
		{"answer vs no data", key("192.0.2.1", www), key("192.0.2.1", pack("www.a.test", dns.TypeA, dns.RcodeSuccess, 0)), false},
		{"NXDOMAIN, any name", key("192.0.2.1", pack("a.a.test", dns.TypeA, dns.RcodeNameError, 0)),
			key("192.0.2.1", pack("b.a.test", dns.TypeMX, dns.RcodeNameError, 0)), true},
		{"errors, any name", key("192.0.2.1", pack("a.other", dns.TypeA, dns.RcodeRefused, 0)),
			key("192.0.2.1", pack("b.other", dns.TypeA, dns.RcodeServerFailure, 0)), true},
	}
	notimp := make([]byte, 12) // miekg's reply to a question-less message: the header only
	notimp[2], notimp[3] = 0x80|dns.OpcodeStatus<<3, dns.RcodeNotImplemented
	cases = append(cases, struct {
		what   string
		a, b   uint64
		shared bool
	}{"question-less error with the errors", key("192.0.2.1", notimp), key("192.0.2.1", pack("b.other", dns.TypeA, dns.RcodeRefused, 0)), true})
	for _, c := range cases {
		if (c.a == c.b) != c.shared {
			t.Errorf("%s: shared budget %v, want %v", c.what, c.a == c.b, c.shared)
		}
	}
	if _, ok := l.responseKey(netip.MustParseAddr("192.0.2.1"), []byte{1, 2, 3}); ok {
		t.Error("a key for a 3-byte packet")
	}
	k := key("192.0.2.1", www)
	if l.decide(k, t0) != rrlSend || l.decide(k, t0) != rrlDrop || l.decide(k, t0.Add(time.Second)) != rrlSend {
		t.Error("burst 1 at 1/s: want send, drop, and send again a second later")
	}
}

// The table of buckets stays bounded under a flood of distinct responses.
func TestRateLimitTableBounded(t *testing.T) {
	const max = 64 * 8
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 1, Slip: 2, MaxEntries: max})
	for i := range 100 * max {
		l.decide(uint64(i)*0x9E3779B97F4A7C15, t0)
	}
	if n := l.len(); n > max {
		t.Fatalf("%d buckets, want at most %d", n, max)
	}
}

// On the real server and the real clock, with the limiter as shipped: a
// flood with a new synthesised name in every query (each one answered with
// addresses if unlimited), sent "from" a victim network (on loopback any
// 127/8 address is ours to bind), is cut to the configured rate, as a flood
// of one name is; meanwhile a resolver in another network asking for a few
// dozen names at a resolver's pace gets every one answered in full.
func TestRateLimitResolverVersusFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 4,000 queries; skipped with -short")
	}
	dir := &fakeDir{}
	dir.set(publicProxies(4)...)
	rl := DefaultRateLimit()
	ts := startServer(t, Config{Clock: time.Now, LiveWindow: time.Hour, RateLimit: rl}, dir)
	dir.heard(time.Now().Add(time.Hour), "p0", "p1", "p2", "p3")

	resolver := newUDPClient(t, "127.0.0.1", ts.udp)
	victim := newUDPClient(t, "127.0.1.7", ts.udp)
	const names, floodN = 45, 4000
	name := func(i int) string { return fmt.Sprintf("h%d.example.com.%s", i, testZone) }
	all := make([]int, names)
	for i := range all {
		all[i] = i
	}
	start := time.Now()
	go victim.send([]int{floodN}, 8000, func(i int) string { return fmt.Sprintf("r%d.example%d.com.%s", i, i, testZone) })
	go resolver.send(all, 15, name)
	answered := resolver.collect(all)
	vFull := len(victim.collect(make([]int, floodN)))
	elapsed := time.Since(start).Seconds()
	// A query the kernel dropped (socket buffers on a busy machine) is
	// asked again, as a resolver would; the limiter must not be why.
	for round := 0; round < 3 && len(answered) < names; round++ {
		var missing []int
		for _, i := range all {
			if !answered[uint16(i)] {
				missing = append(missing, i)
			}
		}
		t.Logf("asking again for %d names lost in transit", len(missing))
		go resolver.send(missing, 15, name)
		for id := range resolver.collect(missing) {
			answered[id] = true
		}
	}
	if len(answered) != names || resolver.slipped.Load() > 0 {
		t.Fatalf("the resolver network got %d of %d names answered, %d truncated by the limiter (server: %+v)",
			len(answered), names, resolver.slipped.Load(), ts.Stats())
	}
	allowed := float64(rl.Burst) + rl.PerSecond*elapsed
	t.Logf("resolver: %d/%d names answered; victim: %d full answers, %d slipped, of %d random names in %.2fs (allowed %.0f); "+
		"victim bytes out per byte in: %.2f", len(answered), names, vFull, victim.slipped.Load(), floodN, elapsed, allowed,
		float64(victim.received.Load())/float64(victim.sent.Load()))
	if float64(vFull) > allowed || vFull < rl.Burst || victim.slipped.Load() == 0 {
		t.Fatalf("victim network got %d full answers to random names and %d slipped, want the burst %d plus %v/s (at most %.0f), and slips",
			vFull, victim.slipped.Load(), rl.Burst, rl.PerSecond, allowed)
	}
}

// A resolver keeps one TCP connection open for many queries (RFC 7766);
// miekg/dns would close it after 128.
func TestManyQueriesOnOneTCPConnection(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{}, dir)
	conn, err := (&dns.Client{Net: "tcp"}).Dial(ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 1000 {
		m := new(dns.Msg)
		m.SetQuestion(fmt.Sprintf("h%d.example.com.%s.", i, testZone), dns.TypeA)
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := conn.WriteMsg(m); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		r, err := conn.ReadMsg()
		if err != nil || r.Id != m.Id || len(r.Answer) == 0 {
			t.Fatalf("query %d on one connection: %v %v", i, r, err)
		}
	}
}

// The limiter reads the question of any packed reply, whose name came from
// a stranger's query: no input makes it panic, and a name it spells for the
// per-name budgets is a plain lower-case FQDN.
func FuzzResponseKey(f *testing.F) {
	for _, name := range []string{"www.a.test.", "A.Test.", ".", "x\\.y.a.test."} {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		m.Response = true
		b, _ := m.Pack()
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0x80, 4, 0, 0, 0, 0, 0, 0, 0, 0})
	l := newLimiter(RateLimit{PerSecond: 1, Burst: 1, Slip: 2, MaxEntries: 1024}, "a.test.")
	f.Fuzz(func(t *testing.T, b []byte) {
		l.responseKey(netip.MustParseAddr("192.0.2.1"), b)
		if end := questionEnd(b); end >= 0 {
			name, ok := presentName(nil, b[12:end-4])
			if ok && (len(name) == 0 || name[len(name)-1] != '.' || strings.ToLower(string(name)) != string(name)) {
				t.Fatalf("name %q from %x", name, b)
			}
		}
	})
}
