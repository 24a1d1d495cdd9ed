package dnsserver

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

const testZone = "coral.test"

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fakeDir struct {
	mu sync.Mutex
	ps []Proxy
}

func (d *fakeDir) Proxies() []Proxy {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.ps)
}

func (d *fakeDir) set(ps ...Proxy) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ps = ps
}

// heard marks the proxies with these IDs as heard from at t.
func (d *fakeDir) heard(t time.Time, ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range d.ps {
		if slices.Contains(ids, d.ps[i].ID) {
			d.ps[i].LastHeard = t
		}
	}
}

// publicProxies returns n public proxies p0..p(n-1) at 192.0.2.(10+i) and
// 2001:db8::(10+i), heard at t0.
func publicProxies(n int) []Proxy {
	ps := make([]Proxy, n)
	for i := range ps {
		ps[i] = Proxy{
			ID:        fmt.Sprintf("p%d", i),
			Addrs:     []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", 10+i))},
			LastHeard: t0,
			Public:    true,
		}
	}
	return ps
}

type testServer struct {
	*Server
	udp, tcp string
	clock    *testkit.Clock
}

func startServer(t *testing.T, cfg Config, dir Directory, opts ...Option) *testServer {
	t.Helper()
	clk := testkit.NewClock(t0)
	if cfg.Zone == "" {
		cfg.Zone = testZone
	}
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clk.Now
	}
	if cfg.RateLimit.PerSecond == 0 {
		cfg.RateLimit.PerSecond = -1 // most tests query hard from one address
	}
	s, err := New(cfg, dir, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	u, c := s.Addr()
	return &testServer{Server: s, udp: u.String(), tcp: c.String(), clock: clk}
}

// exchange sends one query with a real miekg/dns client over net ("udp" or
// "tcp"); edns > 0 adds an OPT record with that payload size.
func (ts *testServer) exchange(t *testing.T, net, name string, qtype uint16, edns uint16, opts ...dns.EDNS0) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = false
	if edns > 0 {
		m.SetEdns0(edns, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, opts...)
	}
	return ts.send(t, net, m)
}

func (ts *testServer) send(t *testing.T, net string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: net, Timeout: 5 * time.Second, UDPSize: 65535}
	addr := ts.udp
	if net == "tcp" {
		addr = ts.tcp
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s query %s %s: %v", net, m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], err)
	}
	if r.Id != m.Id {
		t.Fatalf("response id %d for query id %d", r.Id, m.Id)
	}
	return r
}

// answerAddrs returns the A/AAAA addresses of the answer section, in order.
func answerAddrs(m *dns.Msg) []netip.Addr {
	var out []netip.Addr
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(rr.A)
			out = append(out, a.Unmap())
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(rr.AAAA)
			out = append(out, a)
		}
	}
	return out
}

func addrSet(as []netip.Addr) map[netip.Addr]bool {
	m := make(map[netip.Addr]bool)
	for _, a := range as {
		m[a] = true
	}
	return m
}

func v4(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}) }
