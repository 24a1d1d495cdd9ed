package dnsserver

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkServeDNS measures the handler alone (no sockets) for a repeated
// Coralized name with 100 proxies, a tenth of them nameservers, from a
// directory that hands out one snapshot (as the node's does).
func BenchmarkServeDNS(b *testing.B) {
	ps := make([]Proxy, 100)
	for i := range ps {
		ps[i] = Proxy{
			ID: fmt.Sprintf("proxy-%d", i), Addrs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})},
			LastHeard: t0, Public: true, Nameserver: i%10 == 0,
			Cluster: [3]string{fmt.Sprintf("r%d", i%7), fmt.Sprintf("c%d", i%3), "g"},
		}
	}
	dir := &stableDir{}
	dir.set(ps)
	s, err := New(Config{Zone: testZone, Self: "proxy-0", Clock: func() time.Time { return t0 }, Logger: slog.New(slog.DiscardHandler)}, dir)
	if err != nil {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetQuestion("www.example.com."+testZone+".", dns.TypeA)
	w := &recorder{remote: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 5353}}
	b.ReportAllocs()
	for b.Loop() {
		s.ServeDNS(w, q)
	}
	if len(w.msg.Answer) != 3 {
		b.Fatalf("answer %v", w.msg)
	}
}
