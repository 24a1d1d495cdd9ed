package dnsserver

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

func fastServer(t testing.TB) *Server {
	t.Helper()
	dir := &stableDir{}
	ps := publicProxies(6)
	ps[5].Addrs = ps[4].Addrs // two IDs at one address
	dir.set(ps)
	s, err := New(Config{Zone: testZone, Clock: testkit.NewClock(t0).Now, Logger: slog.New(slog.DiscardHandler), Answers: 4}, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type fastCase struct {
	what  string
	query func() *dns.Msg
}

func plainQuery(name string, qtype uint16) func() *dns.Msg {
	return func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
}

func ednsQuery(name string, qtype, size uint16, do bool, opts ...dns.EDNS0) func() *dns.Msg {
	return func() *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(size, do)
		m.IsEdns0().Option = opts
		return m
	}
}

// The fast path answers plain A/AAAA queries for Coralized names with the
// very bytes the full handler sends, and leaves everything else to it.
func TestFastPathMatchesHandler(t *testing.T) {
	s := fastServer(t)
	client := netip.MustParseAddr("198.51.100.7")
	origin := "www.Example.com." + testZone + "."
	fast := []fastCase{
		{"A", plainQuery(origin, dns.TypeA)},
		{"AAAA", plainQuery(origin, dns.TypeAAAA)},
		{"EDNS", ednsQuery(origin, dns.TypeA, 1232, false)},
		{"EDNS DO", ednsQuery(origin, dns.TypeAAAA, 4096, true)},
		{"RD and CD", func() *dns.Msg {
			m := plainQuery(origin, dns.TypeA)()
			m.RecursionDesired, m.CheckingDisabled = true, true
			return m
		}},
		{"AD and Z", func() *dns.Msg {
			m := plainQuery(origin, dns.TypeA)()
			m.AuthenticatedData, m.Zero = true, true
			return m
		}},
		{"port form", plainQuery("a.b.8080."+testZone+".", dns.TypeA)},
	}
	for _, c := range fast {
		q := c.query()
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		rot := s.rotA.Load()
		got, ok := s.fastAnswer(nil, wire, client)
		if !ok {
			t.Errorf("%s: not answered on the fast path", c.what)
			continue
		}
		s.rotA.Store(rot)
		var parsed dns.Msg
		if err := parsed.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		m := s.respond(&parsed, client, false)
		want, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: fast path sent\n%x\nthe handler sends\n%x\n%v", c.what, got, want, m)
		}
	}
	slow := []fastCase{
		{"apex", plainQuery(testZone+".", dns.TypeA)},
		{"TXT", plainQuery(origin, dns.TypeTXT)},
		{"not a Coralized name", plainQuery("-."+testZone+".", dns.TypeA)},
		{"outside the zone", plainQuery("www.example.com.", dns.TypeA)},
		{"client subnet", ednsQuery(origin, dns.TypeA, 1232, false, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(203, 0, 113, 0)})},
		{"cookie", ednsQuery(origin, dns.TypeA, 1232, false, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})},
		{"EDNS version 1", func() *dns.Msg { m := ednsQuery(origin, dns.TypeA, 1232, false)(); m.IsEdns0().SetVersion(1); return m }},
		{"escaped dot", plainQuery(`a\.b.`+testZone+".", dns.TypeA)},
		{"class CH", func() *dns.Msg { m := plainQuery(origin, dns.TypeA)(); m.Question[0].Qclass = dns.ClassCHAOS; return m }},
		{"a response", func() *dns.Msg { m := plainQuery(origin, dns.TypeA)(); m.Response = true; return m }},
		{"opcode notify", func() *dns.Msg { m := plainQuery(origin, dns.TypeA)(); m.Opcode = dns.OpcodeNotify; return m }},
	}
	for _, c := range slow {
		wire, err := c.query().Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := s.fastAnswer(nil, wire, client); ok {
			t.Errorf("%s: answered on the fast path", c.what)
		}
	}
	wire, _ := plainQuery(origin, dns.TypeA)().Pack()
	if _, ok := s.fastAnswer(nil, append(wire, 0), client); ok {
		t.Error("trailing byte: answered on the fast path")
	}
}

// parseFast reads raw packets from anyone: it never panics, and what it
// accepts, miekg/dns parses to the same question.
func FuzzParseFast(f *testing.F) {
	for _, q := range []func() *dns.Msg{
		plainQuery("www.example.com."+testZone+".", dns.TypeA),
		ednsQuery("A.b."+testZone+".", dns.TypeAAAA, 1232, true),
		ednsQuery("a."+testZone+".", dns.TypeA, 512, false, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}),
	} {
		b, _ := q().Pack()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, ok := parseFast(b)
		if !ok {
			return
		}
		var m dns.Msg
		if err := m.Unpack(b); err != nil {
			t.Fatalf("fast path accepted what miekg/dns rejects: %v", err)
		}
		if len(m.Question) != 1 || m.Question[0].Qtype != q.qtype || dns.CanonicalName(m.Question[0].Name) != q.name {
			t.Fatalf("fast path read %q %d, miekg/dns %v", q.name, q.qtype, m.Question)
		}
		if (m.IsEdns0() != nil) != q.edns {
			t.Fatalf("EDNS %v, miekg/dns sees %v", q.edns, m.IsEdns0())
		}
	})
}

// On a wildcard listener the fast path replies from the address the query
// was sent to (a connected client socket drops anything else).
func TestFastPathOnWildcardListener(t *testing.T) {
	dir := &stableDir{}
	dir.set(publicProxies(3))
	s, err := New(Config{Zone: testZone, Listen: ":0", Clock: testkit.NewClock(t0).Now, Logger: slog.New(slog.DiscardHandler), RateLimit: RateLimit{PerSecond: -1}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	udp, _ := s.Addr()
	_, port, _ := net.SplitHostPort(udp.String())
	for _, host := range []string{"127.0.0.1", "127.0.0.2"} {
		c := &dns.Client{Net: "udp"}
		r, _, err := c.Exchange(plainQuery("www.example.com."+testZone+".", dns.TypeA)(), net.JoinHostPort(host, port))
		if err != nil || len(r.Answer) != 3 {
			t.Fatalf("query to %s on a wildcard listener: %v %v", host, r, err)
		}
	}
	if st := s.Stats(); st.Answers != 2 {
		t.Fatalf("stats %+v", st)
	}
}
