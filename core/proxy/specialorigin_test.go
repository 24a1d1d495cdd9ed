package proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
)

// originDNS runs a real DNS server over UDP on loopback that answers A and
// AAAA queries for the given names (fully qualified) and NXDOMAIN for the
// rest, and returns a resolver that asks only it: a stranger controls the
// DNS of the names it Coralizes.
func originDNS(t *testing.T, names map[string]netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			w.WriteMsg(originDNSAnswer(q, names))
		})}
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	addr := pc.LocalAddr().String()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
}

func originDNSAnswer(q *dns.Msg, names map[string]netip.Addr) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	name := strings.ToLower(q.Question[0].Name)
	a, ok := names[name]
	if !ok {
		m.Rcode = dns.RcodeNameError
		return m
	}
	hdr := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 60}
	switch qt := q.Question[0].Qtype; {
	case qt == dns.TypeA && a.Is4():
		hdr.Rrtype = dns.TypeA
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: a.AsSlice()})
	case qt == dns.TypeAAAA && a.Is6():
		hdr.Rrtype = dns.TypeAAAA
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
	}
	return m
}

// A stranger Coralizes names of its own that resolve to addresses not
// reachable from the Internet: a desktop proxy tool's TUN (198.18.0.1,
// where Clash listens on a volunteer's machine), an IETF protocol address,
// IPv6 site-local, reserved IPv4, and loopback in NAT64 form. Each visitor
// gets the same 403 as for a loopback origin, naming the kind of address;
// no connection is attempted and the DSHT never hears of the origin.
func TestSpecialPurposeOriginsRefused(t *testing.T) {
	tests := []struct{ name, addr, word string }{
		{"tun.attacker.test", "198.18.0.1", "a special-purpose address"},
		{"ietf.attacker.test", "192.0.0.8", "a special-purpose address"},
		{"sitelocal.attacker.test", "fec0::1", "a special-purpose address"},
		{"reserved.attacker.test", "240.0.0.1", "a reserved address"},
		{"nat64.attacker.test", "64:ff9b::7f00:1", "a loopback address"},
		{"loop.attacker.test", "127.0.0.1", "a loopback address"},
	}
	names := map[string]netip.Addr{}
	for _, tc := range tests {
		names[tc.name+"."] = netip.MustParseAddr(tc.addr)
	}
	resolver := originDNS(t, names)
	peers := &recordingPeers{}
	e := newEnv(t, func(o *Options) { o.AllowPrivateOrigins = false; o.Peers = peers; o.Resolver = resolver })
	var dials atomic.Int32
	dial := e.p.transport.DialContext
	e.p.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	for _, tc := range tests {
		r := e.fetch("GET", tc.name+"."+testZone, "/")
		want := "address " + tc.addr + " is " + tc.word + "."
		if r.status != http.StatusForbidden || !strings.Contains(r.body, want) || !strings.Contains(r.body, "allow_private_origins") {
			t.Errorf("%s (%s): %d %q, want 403 saying %q", tc.name, tc.addr, r.status, trunc(r.body), want)
		}
	}
	if n := dials.Load(); n != 0 || len(peers.calls) != 0 {
		t.Errorf("%d connection attempts to origins, DSHT calls %q; want none", n, peers.calls)
	}
}

// The resolver the refusals above go through is the one the proxy dials
// with: on a node that allows private origins, the same kind of name
// reaches an origin on this machine.
func TestOriginResolverUsedForDialling(t *testing.T) {
	resolver := originDNS(t, map[string]netip.Addr{"loop.attacker.test.": netip.MustParseAddr("127.0.0.1")})
	e := newEnv(t, func(o *Options) { o.Resolver = resolver }) // allow_private_origins, as on a test node
	o := newOrigin(t, e.clock, static("behind the name"))
	u, err := url.Parse(o.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := e.fetch("GET", "loop.attacker.test."+u.Port()+"."+testZone, "/")
	if r.status != http.StatusOK || r.body != "behind the name" {
		t.Fatalf("got %d %q, want the origin's page", r.status, trunc(r.body))
	}
}
