package dnsserver

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// No UDP query gets a response larger than MaxAmplification times its own
// size, whatever it asks: the apex NS set with six registered nameservers
// and thirteen volunteer nameservers in different clusters, four AAAA
// records, a negative answer with its SOA, with and without EDNS, in a long
// and in a one-label zone. The largest ratio seen is logged (it goes into
// the README).
func TestAmplificationBound(t *testing.T) {
	worst, worstWhat := 0.0, ""
	for _, zone := range []string{testZone, "x"} {
		var static []NameServer
		for i := range 6 {
			static = append(static, NameServer{Name: fmt.Sprintf("ns%d.%s", i+1, zone),
				Addrs: []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), netip.MustParseAddr(fmt.Sprintf("2001:db8:1::%x", i+1))}})
		}
		for _, volunteers := range []bool{false, true} {
			dir := &fakeDir{}
			ps := publicProxies(8)
			if volunteers {
				ps = append(ps, nameservers(13)...)
			}
			dir.set(ps...)
			ts := startServer(t, Config{Zone: zone, StaticNS: static, NSCount: 13, Answers: 4}, dir)
			queries := []struct {
				name  string
				qtype uint16
			}{
				{zone, dns.TypeNS}, {zone, dns.TypeSOA}, {zone, dns.TypeANY}, {"a.co." + zone, dns.TypeA},
				{"a.co." + zone, dns.TypeAAAA}, {"a.co." + zone, dns.TypeANY}, {"a.co." + zone, dns.TypeTXT},
				{"ns1." + zone, dns.TypeA}, {"ns1." + zone, dns.TypeAAAA}, {"-." + zone, dns.TypeA},
				{ts.nsName(&ps[len(ps)-1]), dns.TypeAAAA}, {"com." + zone, dns.TypeA},
			}
			for _, q := range queries {
				for _, edns := range []uint16{0, 4096} {
					ratio := amplification(t, ts.udp, q.name, q.qtype, edns)
					what := fmt.Sprintf("%s %s edns=%d volunteers=%v", q.name, dns.TypeToString[q.qtype], edns, volunteers)
					if ratio > MaxAmplification {
						t.Errorf("%s: response %.1f× the query, over the bound %d×", what, ratio, MaxAmplification)
					}
					if ratio > worst {
						worst, worstWhat = ratio, what
					}
				}
			}
		}
	}
	t.Logf("largest response/query ratio: %.2f× (%s)", worst, worstWhat)
}

// amplification sends one query over UDP and returns the response's size
// divided by the query's, both as sent on the wire.
func amplification(t *testing.T, addr, name string, qtype, edns uint16) float64 {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return amplificationRaw(t, addr, q, name+" "+dns.TypeToString[qtype])
}

// amplificationRaw sends the packed query q over UDP and returns the
// response's size divided by the query's.
func amplificationRaw(t *testing.T, addr string, q []byte, what string) float64 {
	t.Helper()
	reply, err := rawUDP(t, addr, q)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return float64(len(reply)) / float64(len(q))
}

// rawUDP sends the packet q to addr over UDP as it is and returns the one
// datagram that comes back (an error if none does within 5 s).
func rawUDP(t *testing.T, addr string, q []byte) ([]byte, error) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	return buf[:n], err
}

// Additional records whose names are 2-byte compression pointers unpack
// into many more bytes than they take on the wire; they must not raise the
// bound. The apex NS query with thirteen volunteer nameservers, with two
// such A records, and with EDNS and a HIP record holding two pointers as its
// rendezvous servers, or with an OPT record named by a pointer (it must be
// the root), stays within MaxAmplification times the bytes sent.
func TestAmplificationBoundCompressedAdditionals(t *testing.T) {
	dir := &fakeDir{}
	dir.set(append(publicProxies(3), nameservers(13)...)...)
	ts := startServer(t, Config{NSCount: 13}, dir)
	apex := testZone + "."
	base := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion(apex, dns.TypeNS)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ptrA := []byte{0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1} // owner: pointer to the question
	twoA := append(append(base(), ptrA...), ptrA...)
	twoA[11] = 2                                                              // arcount
	hip := []byte{0xC0, 12, 0, 55, 0, 1, 0, 0, 0, 60, 0, 0, 1, 2, 0, 0, 0xAB} // rdlength set below
	for range 2 {
		hip = append(hip, 0xC0, 12) // rendezvous server: the zone again
	}
	hip[10], hip[11] = byte((len(hip)-12)>>8), byte(len(hip)-12)
	opt := []byte{0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0} // EDNS, 4096 bytes
	withHIP := append(append(base(), opt...), hip...)
	withHIP[11] = 2
	ptrOPT := append(base(), 0xC0, 12, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0)
	ptrOPT[11] = 1
	for _, c := range []struct {
		what string
		q    []byte
	}{
		{"two A records named by pointers", twoA},
		{"EDNS 4096 and a HIP record of pointers", withHIP},
		{"an OPT record named by a pointer", ptrOPT},
	} {
		if m := new(dns.Msg); m.Unpack(c.q) != nil {
			t.Fatalf("%s: the query does not parse", c.what)
		}
		ratio := amplificationRaw(t, ts.udp, c.q, c.what)
		t.Logf("%s: %d bytes in, response %.2f× that", c.what, len(c.q), ratio)
		if ratio > MaxAmplification {
			t.Errorf("%s: response %.1f× the query, over the bound %d×", c.what, ratio, MaxAmplification)
		}
	}
}
