package proxy

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/ipclass"
)

func readFixture(t testing.TB, name string) string {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) []netip.Prefix
		want  []string
	}{
		// The default routes, the /1 VPN half, the private LAN, the route
		// through a gateway and the malformed line are left out.
		{"route", func(s string) []netip.Prefix { return parseRoutes4(strings.NewReader(s)) },
			[]string{"192.0.2.0/24", "198.51.100.0/23"}},
		// Link-local, loopback, multicast, routes through gateways, the
		// reject route and the /16 are left out.
		{"ipv6_route", func(s string) []netip.Prefix { return parseRoutes6(strings.NewReader(s)) },
			[]string{"2001:db8:1:2::/64", "2001:db8:1:2::10/128", "2001:db8::/32"}},
	}
	for _, tc := range tests {
		var got []string
		for _, p := range tc.parse(readFixture(t, tc.name)) {
			got = append(got, p.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// FuzzParseRoutes: any text parses without panicking, to prefixes that are
// long enough and public.
func FuzzParseRoutes(f *testing.F) {
	f.Add(readFixture(f, "route"))
	f.Add(readFixture(f, "ipv6_route"))
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range append(parseRoutes4(strings.NewReader(s)), parseRoutes6(strings.NewReader(s))...) {
			if !p.IsValid() || (p.Addr().Is4() && p.Bits() < minOnLink4) || (p.Addr().Is6() && p.Bits() < minOnLink6) ||
				ipclass.Of(p.Addr()) != ipclass.Global {
				t.Fatalf("%q gave %v", s, p)
			}
		}
	})
}
