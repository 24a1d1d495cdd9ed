package ipclass

import (
	"net/netip"
	"testing"
)

// Every block, by its first and last address where it has edges, and the
// addresses just outside it.
var cases = []struct {
	addr string
	want Class
}{
	{"0.0.0.0", Unspecified},
	{"::", Unspecified},
	{"0.0.0.1", Special}, // "this network"
	{"0.255.255.255", Special},
	{"1.0.0.0", Global},
	{"9.255.255.255", Global},
	{"10.0.0.0", Private},
	{"10.255.255.255", Private},
	{"11.0.0.0", Global},
	{"100.63.255.255", Global},
	{"100.64.0.0", SharedNAT},
	{"100.127.255.255", SharedNAT},
	{"100.128.0.0", Global},
	{"126.255.255.255", Global},
	{"127.0.0.0", Loopback},
	{"127.255.255.255", Loopback},
	{"128.0.0.0", Global},
	{"169.253.255.255", Global},
	{"169.254.0.0", LinkLocal},
	{"169.254.255.255", LinkLocal},
	{"169.255.0.0", Global},
	{"172.15.255.255", Global},
	{"172.16.0.0", Private},
	{"172.31.255.255", Private},
	{"172.32.0.0", Global},
	{"191.255.255.255", Global},
	{"192.0.0.0", Special}, // IETF protocol assignments
	{"192.0.0.8", Special},
	{"192.0.0.255", Special},
	{"192.0.1.0", Global},
	{"192.0.2.0", Global}, // documentation: public in tests
	{"192.0.2.255", Global},
	{"192.88.98.255", Global},
	{"192.88.99.0", Special}, // 6to4 relay anycast
	{"192.88.99.255", Special},
	{"192.88.100.0", Global},
	{"192.167.255.255", Global},
	{"192.168.0.0", Private},
	{"192.168.255.255", Private},
	{"192.169.0.0", Global},
	{"198.17.255.255", Global},
	{"198.18.0.0", Special}, // benchmarking, Clash's TUN
	{"198.18.0.1", Special},
	{"198.19.255.255", Special},
	{"198.20.0.0", Global},
	{"198.51.100.1", Global}, // documentation
	{"203.0.113.1", Global},  // documentation
	{"223.255.255.255", Global},
	{"224.0.0.0", Multicast},
	{"239.255.255.255", Multicast},
	{"240.0.0.0", Reserved},
	{"240.0.0.1", Reserved},
	{"255.255.255.254", Reserved},
	{"255.255.255.255", Broadcast},

	{"::1", Loopback},
	{"::2", Special}, // IPv4-compatible (deprecated)
	{"::0.255.255.255", Special},
	{"::ffff:127.0.0.1", Loopback},
	{"::ffff:10.0.0.1", Private},
	{"::ffff:198.18.0.1", Special},
	{"::ffff:240.0.0.1", Reserved},
	{"::ffff:0.0.0.0", Unspecified},
	{"::ffff:93.184.215.14", Global},
	{"64:ff9b::", Unspecified},        // NAT64 of 0.0.0.0
	{"64:ff9b::7f00:1", Loopback},     // NAT64 of 127.0.0.1
	{"64:ff9b::a00:1", Private},       // NAT64 of 10.0.0.1
	{"64:ff9b::c612:1", Special},      // NAT64 of 198.18.0.1
	{"64:ff9b::a9fe:a9fe", LinkLocal}, // NAT64 of 169.254.169.254
	{"64:ff9b::5db8:d70e", Global},    // NAT64 of 93.184.215.14
	{"64:ff9b::ffff:ffff", Broadcast}, // NAT64 of 255.255.255.255
	{"64:ff9b:0:0:0:1::", Reserved},   // just past the NAT64 /96
	{"64:ff9b:1::", Special},          // local-use translation
	{"64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Special},
	{"100::", Special}, // discard-only
	{"100::ffff:ffff:ffff:ffff", Special},
	{"100:0:0:1::", Special}, // dummy prefix
	{"100:0:0:1:ffff:ffff:ffff:ffff", Special},
	{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved},
	{"2000::", Global},
	{"2001:1::1", Global},
	{"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", Global},
	{"2001:2::", Special}, // benchmarking
	{"2001:2:0:ffff:ffff:ffff:ffff:ffff", Special},
	{"2001:2:1::", Global},
	{"2001:f:ffff:ffff:ffff:ffff:ffff:ffff", Global},
	{"2001:10::", Special}, // ORCHID
	{"2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Special},
	{"2001:20::", Special}, // ORCHIDv2
	{"2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", Special},
	{"2001:30::", Global},
	{"2001:db8::", Global}, // documentation: public in tests
	{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", Global},
	{"2606:4700::1", Global},
	{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Global},
	{"3fff::", Special}, // documentation (RFC 9637)
	{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Special},
	{"3fff:1000::", Global},
	{"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Global},
	{"4000::", Reserved},
	{"5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved},
	{"5f00::", Special}, // SRv6 SIDs
	{"5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Special},
	{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Reserved},
	{"fc00::", Private},
	{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Private},
	{"fe00::", Reserved},
	{"fe80::", LinkLocal},
	{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LinkLocal},
	{"fe80::1%eth0", LinkLocal},
	{"fec0::", Special}, // site-local
	{"fec0::1", Special},
	{"fec0::1%eth0", Special}, // a zone does not hide the block
	{"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Special},
	{"ff00::", Multicast},
	{"ff02::1", Multicast},
	{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Multicast},
}

func TestOf(t *testing.T) {
	for _, c := range cases {
		a := netip.MustParseAddr(c.addr)
		if got := Of(a); got != c.want {
			t.Errorf("Of(%s) = %v, want %v", c.addr, got, c.want)
		}
		if a.Is4() {
			mapped := netip.AddrFrom16(a.As16())
			if got := Of(mapped); got != c.want {
				t.Errorf("Of(%s) = %v, want %v as for %s", mapped, got, c.want, c.addr)
			}
		}
	}
	if got := Of(netip.Addr{}); got != Invalid {
		t.Errorf("Of(zero Addr) = %v, want Invalid", got)
	}
}

func TestStringAndGroups(t *testing.T) {
	words := map[string]Class{}
	for c := Invalid; c <= Special; c++ {
		w := c.String()
		if prev, dup := words[w]; dup || w == "" {
			t.Errorf("%d and %d share the word %q", prev, c, w)
		}
		words[w] = c
	}
	for c, want := range map[Class][2]bool{ // LAN, Addressable
		Invalid: {false, false}, Global: {false, true}, Unspecified: {false, false}, Loopback: {false, true},
		Private: {true, true}, SharedNAT: {true, true}, LinkLocal: {false, false}, Multicast: {false, false},
		Broadcast: {false, false}, Reserved: {false, true}, Special: {false, true},
	} {
		if c.LAN() != want[0] || c.Addressable() != want[1] {
			t.Errorf("%v: LAN %v Addressable %v, want %v", c, c.LAN(), c.Addressable(), want)
		}
	}
}

// Any 16 bytes: the IPv4-mapped and NAT64 forms of an IPv4 address class
// as that address, a zone changes nothing, and the class has a word.
func FuzzOf(f *testing.F) {
	for _, c := range cases {
		b := netip.MustParseAddr(c.addr).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(b))
		c := Of(a)
		if c == Invalid || c.String() == "invalid" {
			t.Fatalf("Of(%s) = %v", a, c)
		}
		if z := Of(a.WithZone("eth0")); z != c {
			t.Fatalf("Of(%s%%eth0) = %v, Of(%s) = %v", a, z, a, c)
		}
		if v4 := a.Unmap(); v4.Is4() {
			n := netip.AddrFrom16([16]byte{0, 0x64, 0xff, 0x9b, 12: b[12], b[13], b[14], b[15]})
			if Of(v4) != c || Of(n) != c {
				t.Fatalf("%s is %v, %s is %v, %s is %v", a, c, v4, Of(v4), n, Of(n))
			}
		}
	})
}

// BenchmarkOf prints what classing one address costs, over the table's
// addresses (the proxy asks once per origin dial and per interface address).
func BenchmarkOf(b *testing.B) {
	addrs := make([]netip.Addr, len(cases))
	for i, c := range cases {
		addrs[i] = netip.MustParseAddr(c.addr)
	}
	i := 0
	for b.Loop() {
		Of(addrs[i%len(addrs)])
		i++
	}
}
