package dnsserver

import (
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// recorder is a dns.ResponseWriter that keeps what the handler wrote.
type recorder struct {
	remote net.Addr
	msg    *dns.Msg
	writes int
}

func (r *recorder) LocalAddr() net.Addr       { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr      { return r.remote }
func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; r.writes++; return nil }
func (r *recorder) Write(b []byte) (int, error) {
	r.writes++
	return len(b), nil
}
func (r *recorder) Close() error        { return nil }
func (r *recorder) TsigStatus() error   { return nil }
func (r *recorder) TsigTimersOnly(bool) {}
func (r *recorder) Hijack()             {}

func fuzzSeed(name string, qtype uint16, edns uint16, opts ...dns.EDNS0) []byte {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, true)
		m.IsEdns0().Option = opts
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzServeDNS feeds arbitrary packets that parse as DNS messages through the
// handler: it must not panic, and whatever it answers must be a well-formed
// reply to that query that fits the client's limit.
func FuzzServeDNS(f *testing.F) {
	ecs := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("203.0.113.0")}
	for _, seed := range [][]byte{
		fuzzSeed("www.example.com.coral.test.", dns.TypeA, 0),
		fuzzSeed("www.example.com.8080.coral.test.", dns.TypeAAAA, 1232),
		fuzzSeed("127.0.0.1.8000.https.coral.test.", dns.TypeANY, 4096, ecs),
		fuzzSeed("coral.test.", dns.TypeNS, 0),
		fuzzSeed("coral.test.", dns.TypeSOA, 512),
		fuzzSeed("ns.coral.test.", dns.TypeA, 0),
		fuzzSeed("0.1.8000.coral.test.", dns.TypeA, 0),
		fuzzSeed("x\\.y.coral.test.", dns.TypeA, 0),
		fuzzSeed("example.org.", dns.TypeTXT, 0),
		{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1},
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	dir := &fakeDir{}
	ps := append(publicProxies(5), nameservers(14, 1, 3)...)
	ps = append(ps, Proxy{ID: "lan", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.9")}, LastHeard: t0})
	dir.set(ps...)
	known := map[netip.Addr]bool{}
	for _, p := range ps {
		for _, a := range p.Addrs {
			known[a] = true
		}
	}
	known[netip.MustParseAddr("198.51.100.53")] = true
	h := &fakeHints{rtts: map[netip.Prefix]map[string]time.Duration{
		netip.MustParsePrefix("203.0.113.0/24"): {"p3": time.Millisecond},
	}}
	s, err := New(Config{
		Zone: testZone, Self: "ns-1", NSCount: 13,
		StaticNS: []NameServer{{Name: "ns1." + testZone, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.53")}}},
		Clock:    func() time.Time { return t0 },
		Logger:   slog.New(slog.DiscardHandler),
	}, dir, WithHints(h))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		if b := slipped(data); b != nil && (len(b) > len(data) || b[2]&0x02 == 0) {
			t.Fatalf("slipped reply longer than the original or without TC")
		}
		req := new(dns.Msg)
		if req.Unpack(data) != nil {
			return
		}
		w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
		limit := dns.MinMsgSize
		if tcp {
			w.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
			limit = dns.MaxMsgSize
		} else if opt := req.IsEdns0(); opt != nil {
			limit = max(dns.MinMsgSize, min(int(opt.UDPSize()), 1232))
		}
		s.ServeDNS(w, req)
		if w.writes > 1 {
			t.Fatalf("%d writes for one query", w.writes)
		}
		m := w.msg
		if m == nil {
			if len(req.Question) == 1 && !req.Response {
				t.Fatalf("no reply to a well-formed query %v", req.Question[0])
			}
			return
		}
		m.Compress = true
		b, err := m.Pack()
		if err != nil {
			t.Fatalf("reply does not pack: %v\n%v", err, m)
		}
		if len(b) > limit {
			t.Fatalf("reply of %d bytes exceeds the client's limit %d", len(b), limit)
		}
		if !tcp && len(b) > MaxAmplification*len(data) {
			t.Fatalf("reply of %d bytes to a query of %d: over %d×", len(b), len(data), MaxAmplification)
		}
		if m.Id != req.Id || !m.Response || len(m.Question) != 1 || m.Question[0] != req.Question[0] {
			t.Fatalf("reply does not match the query: %v", m)
		}
		for _, rr := range m.Answer {
			var a netip.Addr
			switch rr := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(rr.A)
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(rr.AAAA)
			default:
				continue
			}
			if !known[a.Unmap()] {
				t.Fatalf("answer %v is no proxy's address", rr)
			}
		}
	})
}
