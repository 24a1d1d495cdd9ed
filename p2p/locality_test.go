package p2p

import (
	"net/netip"
	"slices"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// A node's announced proxy addresses are its own: a relayed libp2p address
// names the relay's IP, which must never reach a DNS answer.
func TestDirectIPsSkipRelays(t *testing.T) {
	relay := "/ip4/10.9.0.2/tcp/4100/p2p/12D3KooWLRPJAA5o6Z2Dq8pJKWbXjDjc5Z1uJ1KSQ8K1nEQjXJ6d/p2p-circuit"
	ip := netip.MustParseAddr
	cases := []struct {
		name  string
		addrs []string
		want  []netip.Addr
	}{
		{"relay only gives nothing", []string{relay}, nil},
		{"relay before direct", []string{relay, "/ip4/10.9.0.3/tcp/4100"}, []netip.Addr{ip("10.9.0.3")}},
		{"observed public address kept", []string{"/ip4/203.0.113.7/tcp/4100", relay}, []netip.Addr{ip("203.0.113.7")}},
		{"IPv6 and QUIC", []string{"/ip6/2001:db8::3/udp/4100/quic-v1"}, []netip.Addr{ip("2001:db8::3")}},
		{"DNS address has no IP", []string{"/dns4/example.com/tcp/4100"}, nil},
	}
	for _, c := range cases {
		var ms []ma.Multiaddr
		for _, s := range c.addrs {
			ms = append(ms, ma.StringCast(s))
		}
		if got := directIPs(ms); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
