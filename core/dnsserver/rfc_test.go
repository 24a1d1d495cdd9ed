package dnsserver

import (
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/coralcdn/coral/test/testkit"
	"github.com/miekg/dns"
)

// While paused, a query with EDNS gets REFUSED with an OPT record, as every
// response to an EDNS query does (RFC 6891 §7); without EDNS, none.
func TestPausedRefusalKeepsEDNS(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{}, dir, WithPause(func() bool { return true }))
	for _, net := range []string{"udp", "tcp"} {
		r := ts.exchange(t, net, "example.com."+testZone, dns.TypeA, 1232)
		if r.Rcode != dns.RcodeRefused || r.IsEdns0() == nil {
			t.Errorf("%s, paused, with EDNS: %s, OPT %v; want REFUSED with OPT", net, dns.RcodeToString[r.Rcode], r.IsEdns0())
		}
		r = ts.exchange(t, net, "example.com."+testZone, dns.TypeA, 0)
		if r.Rcode != dns.RcodeRefused || r.IsEdns0() != nil {
			t.Errorf("%s, paused, without EDNS: %s, OPT %v; want REFUSED without OPT", net, dns.RcodeToString[r.Rcode], r.IsEdns0())
		}
	}
}

// A client subnet option with a source prefix longer than its family
// allows gets FORMERR (RFC 7871 §7.1.2), not silence.
func TestBadClientSubnetFormErr(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{}, dir)
	m := new(dns.Msg)
	m.SetQuestion("example.com."+testZone+".", dns.TypeA)
	m.Id = 4321
	m.SetEdns0(1232, false)
	m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 32, Address: net.IPv4(203, 0, 113, 9)})
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	wire[len(wire)-6] = 33 // source prefix /33 for IPv4
	if new(dns.Msg).Unpack(wire) == nil {
		t.Fatal("the crafted query parses; want a bad client subnet")
	}
	reply, err := rawUDP(t, ts.udp, wire)
	if err != nil {
		t.Fatalf("bad client subnet: %v, want FORMERR", err)
	}
	n := len(reply)
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil || r.Id != 4321 || r.Rcode != dns.RcodeFormatError || len(r.Answer) > 0 {
		t.Fatalf("bad client subnet: %v (err %v), want FORMERR", r, err)
	}
	if n > len(wire) {
		t.Errorf("FORMERR of %d bytes to a query of %d", n, len(wire))
	}
}

// ANY at the apex gets the SOA, a subset as RFC 8482 allows, not NODATA.
func TestApexANY(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{}, dir)
	r := ts.exchange(t, "udp", testZone, dns.TypeANY, 0)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("ANY at the apex: %v, want the SOA", r)
	}
}

// A server for a real zone without registered nameservers warns at start:
// with no volunteer nameserver known, NS at the apex has no answer.
func TestNoNameserverWarning(t *testing.T) {
	for _, c := range []struct {
		zone   string
		static []NameServer
		warn   bool
	}{
		{"coral.example.net", nil, true},
		{"localhost", nil, false},
		{"coral.example.net", []NameServer{{Name: "ns1.example.org"}}, false},
	} {
		var buf testkit.LogBuffer
		dir := &fakeDir{}
		startServer(t, Config{Zone: c.zone, StaticNS: c.static, Logger: slog.New(slog.NewTextHandler(&buf, nil))}, dir)
		if got := strings.Contains(buf.String(), "no nameserver"); got != c.warn {
			t.Errorf("zone %s with %d static nameservers: warning %v, want %v; log:\n%s", c.zone, len(c.static), got, c.warn, buf.String())
		}
	}
}
