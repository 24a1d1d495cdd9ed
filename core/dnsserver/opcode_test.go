package dnsserver

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// Opcodes other than QUERY get NOTIMP with the question echoed (RFC 2136
// §3, RFC 1996), over UDP with the limiter as shipped and over TCP:
// silence would make a NOTIFY or UPDATE sender retry until it gives up.
// UPDATE carries records in its update section, NOTIFY may carry the SOA.
func TestOtherOpcodesGetNotImplemented(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(3)...)
	ts := startServer(t, Config{RateLimit: DefaultRateLimit()}, dir)
	zone := testZone + "."
	a := &dns.A{Hdr: dns.RR_Header{Name: "x." + zone, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}
	soa := &dns.SOA{Hdr: dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60}, Ns: "ns." + zone, Mbox: "h." + zone}
	for _, c := range []struct {
		name string
		msg  func() *dns.Msg
	}{
		{"NOTIFY", func() *dns.Msg { m := new(dns.Msg); m.SetNotify(zone); return m }},
		{"NOTIFY with SOA", func() *dns.Msg { m := new(dns.Msg); m.SetNotify(zone); m.Answer = []dns.RR{soa}; return m }},
		{"IQUERY", func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion(zone, dns.TypeA)
			m.Opcode = dns.OpcodeIQuery
			return m
		}},
		{"STATUS", func() *dns.Msg {
			m := new(dns.Msg)
			m.SetQuestion(zone, dns.TypeA)
			m.Opcode = dns.OpcodeStatus
			return m
		}},
		{"UPDATE", func() *dns.Msg { m := new(dns.Msg); m.SetUpdate(zone); m.Insert([]dns.RR{a}); return m }},
	} {
		for _, net := range []string{"udp", "tcp"} {
			q := c.msg()
			r := ts.send(t, net, q)
			if r.Rcode != dns.RcodeNotImplemented || r.Opcode != q.Opcode || len(r.Question) != 1 || r.Question[0] != q.Question[0] {
				t.Errorf("%s over %s: %s opcode %d question %v, want NOTIMP echoing opcode %d and question %v",
					c.name, net, dns.RcodeToString[r.Rcode], r.Opcode, r.Question, q.Opcode, q.Question[0])
			}
			if len(r.Answer)+len(r.Ns) > 0 {
				t.Errorf("%s over %s: records in a NOTIMP reply: %v", c.name, net, r)
			}
		}
	}
	// Without a question there is nothing to echo: NOTIMP with the
	// header only, still not silence.
	status := new(dns.Msg)
	status.Id, status.Opcode = 777, dns.OpcodeStatus
	wire, err := status.Pack()
	if err != nil {
		t.Fatal(err)
	}
	reply, err := rawUDP(t, ts.udp, wire)
	if err != nil {
		t.Fatalf("STATUS without a question over UDP: %v", err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(reply); err != nil || r.Id != 777 || r.Rcode != dns.RcodeNotImplemented || !r.Response {
		t.Fatalf("STATUS without a question: %v (err %v), want a NOTIMP response", r, err)
	}
}
