package node

import (
	"net/netip"
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// A node's announced proxy addresses are its own: a relayed libp2p address
// names the relay's IP, which must never reach a DNS answer.
func TestOwnAddrsSkipRelays(t *testing.T) {
	relay := "/ip4/10.9.0.2/tcp/4100/p2p/12D3KooWLRPJAA5o6Z2Dq8pJKWbXjDjc5Z1uJ1KSQ8K1nEQjXJ6d/p2p-circuit"
	ip := netip.MustParseAddr
	cases := []struct {
		name   string
		ifs    []netip.Addr
		p2p    []string
		v4only bool
		want   []netip.Addr
	}{
		{"relay only adds nothing", []netip.Addr{ip("10.9.0.3")}, []string{relay}, false, []netip.Addr{ip("10.9.0.3")}},
		{"relay before direct", []netip.Addr{ip("127.0.0.1")},
			[]string{relay, "/ip4/10.9.0.3/tcp/4100"}, false, []netip.Addr{ip("10.9.0.3"), ip("127.0.0.1")}},
		{"observed public address kept, global first", []netip.Addr{ip("10.9.0.3")},
			[]string{"/ip4/203.0.113.7/tcp/4100", relay}, false, []netip.Addr{ip("203.0.113.7"), ip("10.9.0.3")}},
		{"v4only drops IPv6", []netip.Addr{ip("2001:db8::3"), ip("10.9.0.3")}, nil, true, []netip.Addr{ip("10.9.0.3")}},
		{"link-local and duplicates dropped", []netip.Addr{ip("fe80::1"), ip("10.9.0.3")},
			[]string{"/ip4/10.9.0.3/tcp/4100"}, false, []netip.Addr{ip("10.9.0.3")}},
	}
	for _, c := range cases {
		var ms []ma.Multiaddr
		for _, s := range c.p2p {
			ms = append(ms, ma.StringCast(s))
		}
		if got := ownAddrs(c.ifs, ms, c.v4only); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
