package locality

import (
	"net/netip"
	"slices"
	"testing"
)

// A node's announced proxy addresses: interface addresses and the host's
// own IPs merged without duplicates, global ones first, link-local,
// unspecified and (v4only) IPv6 ones left out.
func TestOwnAddrs(t *testing.T) {
	ip := netip.MustParseAddr
	cases := []struct {
		name    string
		ifs     []netip.Addr
		hostIPs []netip.Addr
		v4only  bool
		want    []netip.Addr
	}{
		{"host IP after interfaces, global first", []netip.Addr{ip("127.0.0.1")},
			[]netip.Addr{ip("10.9.0.3")}, false, []netip.Addr{ip("10.9.0.3"), ip("127.0.0.1")}},
		{"observed public address kept, global first", []netip.Addr{ip("10.9.0.3")},
			[]netip.Addr{ip("203.0.113.7")}, false, []netip.Addr{ip("203.0.113.7"), ip("10.9.0.3")}},
		{"v4only drops IPv6", []netip.Addr{ip("2001:db8::3"), ip("10.9.0.3")}, nil, true, []netip.Addr{ip("10.9.0.3")}},
		{"link-local and duplicates dropped", []netip.Addr{ip("fe80::1"), ip("10.9.0.3")},
			[]netip.Addr{ip("10.9.0.3")}, false, []netip.Addr{ip("10.9.0.3")}},
		{"mapped IPv4 unmapped, unspecified dropped", []netip.Addr{ip("::ffff:10.9.0.3"), ip("0.0.0.0")},
			nil, true, []netip.Addr{ip("10.9.0.3")}},
		{"a proxy tool's TUN and CGNAT after global ones", []netip.Addr{ip("198.18.0.1"), ip("100.64.0.7"), ip("192.0.2.4")},
			nil, false, []netip.Addr{ip("192.0.2.4"), ip("198.18.0.1"), ip("100.64.0.7")}},
	}
	for _, c := range cases {
		if got := ownAddrs(c.ifs, c.hostIPs, c.v4only); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	many := make([]netip.Addr, MaxAnnouncedAddrs+3)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)})
	}
	if got := ownAddrs(many, nil, false); len(got) != MaxAnnouncedAddrs {
		t.Errorf("%d addresses announced, want at most %d", len(got), MaxAnnouncedAddrs)
	}
}

// dns.nameserver "auto" makes a nameserver of a node whose DNS listens on
// port 53 where its proxy is reachable.
func TestNameserverFlag(t *testing.T) {
	proxy := []netip.Addr{netip.MustParseAddr("192.0.2.7")}
	for listen, want := range map[string]bool{
		":53":            true,
		"0.0.0.0:53":     true,
		"[::]:53":        true,
		"192.0.2.7:53":   true,
		"192.0.2.8:53":   false, // DNS elsewhere than the proxy
		"192.0.2.7:5354": false,
		"127.0.0.1:5354": false,
		"":               false,
		"garbage":        false,
	} {
		if got := isNameserver(listen, "auto", proxy); got != want {
			t.Errorf("dns listen %q: nameserver %v, want %v", listen, got, want)
		}
	}
	// The operator's word wins: a port-53 redirect to 5354 makes a
	// nameserver; "no" keeps a port-53 listener out of NS sets.
	for _, tc := range []struct {
		mode, listen string
		want         bool
	}{
		{"yes", "127.0.0.1:5354", true},
		{"yes", "", false}, // no DNS server at all
		{"no", ":53", false},
	} {
		if got := isNameserver(tc.listen, tc.mode, proxy); got != tc.want {
			t.Errorf("nameserver %q, listen %q: %v, want %v", tc.mode, tc.listen, got, tc.want)
		}
	}
}
