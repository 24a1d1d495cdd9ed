package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/object"

	"github.com/coralcdn/coral/core/store"
)

func ipnet(cidr string) *net.IPNet {
	ip, n, err := net.ParseCIDR(cidr)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

// A machine with a public IPv4 address in a /24, a global IPv6 address in
// a /64 and a point-to-point address.
func testGuard(t *testing.T, addrs *[]net.Addr, self ...string) *originGuard {
	g := newOriginGuard(defaultPorts(t), false, func() []netip.Addr {
		var out []netip.Addr
		for _, s := range self {
			out = append(out, netip.MustParseAddr(s))
		}
		return out
	})
	g.ifaceAddrs = func() ([]net.Addr, error) { return *addrs, nil }
	g.routes = func() []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix("2001:db8:77::/64")} }
	return g
}

func TestOriginGuard(t *testing.T) {
	addrs := []net.Addr{
		ipnet("127.0.0.1/8"), ipnet("::1/128"), ipnet("192.0.2.10/24"),
		ipnet("2001:db8:1:2::10/64"), ipnet("198.51.100.7/32"), ipnet("10.0.0.5/8"),
	}
	g := testGuard(t, &addrs, "203.0.113.99")
	tests := []struct {
		addr string
		want string // the rule that refuses it; "" allowed
	}{
		{"192.0.2.10:80", "own"},
		{"192.0.2.77:8080", "on-link"},
		{"[2001:db8:1:2::10]:443", "own"},
		{"[2001:db8:1:2:abcd::1]:443", "on-link"},
		{"[::ffff:192.0.2.10]:80", "own"},
		{"198.51.100.7:80", "own"},
		{"203.0.113.99:8080", "reached"},
		{"127.0.0.1:8080", "loopback"},
		{"10.9.9.9:80", "private"},
		{"198.51.100.8:80", ""},
		{"192.0.3.1:80", ""},
		{"[2001:db8:1:3::1]:80", "on-link"}, // another subnet of the home's /56
		{"[2001:db8:1:100::1]:80", ""},      // outside it
		{"[2001:db8:77::5]:80", "on-link"},  // a connected route, no address of ours in it
		{"93.184.215.14:22", "port"},
		{"93.184.215.14:6667", "port"},
		{"93.184.215.14:444", "port"},
		{"93.184.215.14:443", ""},
		{"93.184.215.14:1024", ""},
	}
	for _, tc := range tests {
		err := g.check(netip.MustParseAddrPort(tc.addr))
		var blocked *blockedAddrError
		var badPort *blockedPortError
		got := ""
		switch {
		case errors.As(err, &blocked):
			got = blocked.why
			if (got == "own" || got == "on-link" || got == "reached") && blocked.what != ownNetwork {
				t.Errorf("%s: visitors are told %q; the node's networks all get one text", tc.addr, blocked.what)
			}
		case errors.As(err, &badPort):
			got = "port"
		case err != nil:
			t.Errorf("%s: unexpected error %v", tc.addr, err)
		}
		if got != tc.want {
			t.Errorf("%s: refused by %q (%v), want %q", tc.addr, got, err, tc.want)
		}
	}

	// With allow_private_origins, only ports are checked.
	open := newOriginGuard(defaultPorts(t), true, nil)
	open.ifaceAddrs, open.routes = g.ifaceAddrs, g.routes
	if err := open.check(netip.MustParseAddrPort("192.0.2.10:80")); err != nil {
		t.Errorf("allow_private_origins: %v", err)
	}
	if err := open.check(netip.MustParseAddrPort("127.0.0.1:25")); err == nil {
		t.Error("allow_private_origins lets port 25 through")
	}
}

// Interface addresses are read again after a while: an address that
// arrives (a new DHCP lease) is refused once the reading is refreshed.
func TestOriginGuardRefresh(t *testing.T) {
	addrs := []net.Addr{ipnet("192.0.2.10/32")}
	g := testGuard(t, &addrs)
	now := time.Now()
	g.now = func() time.Time { return now }
	target := netip.MustParseAddrPort("198.51.100.1:80")
	if err := g.check(target); err != nil {
		t.Fatal(err)
	}
	addrs = append(addrs, ipnet("198.51.100.1/32"))
	now = now.Add(ifaceRefresh)
	if err := g.check(target); err == nil {
		t.Error("a new interface address is still allowed after the refresh interval")
	}
}

// recordingPeers notes every DSHT-facing call; it never has a copy.
type recordingPeers struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingPeers) note(s string) { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recordingPeers) Fetch(_ context.Context, _ object.Key, canon string, _ func(store.Meta) error) (store.Meta, io.ReadCloser, error) {
	r.note("fetch " + canon)
	return store.Meta{}, nil, store.ErrNotFound
}
func (r *recordingPeers) Downloading(_ object.Key, canon string) func() {
	r.note("downloading " + canon)
	return func() {}
}
func (r *recordingPeers) Cached(_ object.Key, m store.Meta) { r.note("cached " + m.URL) }
func (r *recordingPeers) Removed(key string)                { r.note("removed " + key) }

// A loopback origin gets a 403 that names allow_private_origins,
// every time (it is not a dead origin), and the DSHT never hears of it.
func TestPrivateOriginRefusedQuietly(t *testing.T) {
	peers := &recordingPeers{}
	e := newEnv(t, func(o *Options) { o.AllowPrivateOrigins = false; o.Peers = peers })
	o := newOrigin(t, e.clock, static("secret"))
	for i := range 3 {
		r := e.get(o, "/")
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "allow_private_origins") ||
			strings.Contains(r.body, "tried recently") || strings.Contains(r.body, "secret") {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
	}
	if o.hits.Load() != 0 || len(peers.calls) != 0 {
		t.Errorf("origin hits %d, DSHT calls %q", o.hits.Load(), peers.calls)
	}
	// A name that resolves to loopback is screened the same way.
	r := e.fetch("GET", "localhost.8080."+testZone, "/")
	if r.status != http.StatusForbidden || len(peers.calls) != 0 {
		t.Errorf("localhost: %d, DSHT calls %q", r.status, peers.calls)
	}
	// A refused port is told before any connection, DSHT or not.
	r = e.fetch("GET", "93.184.215.14.25."+testZone, "/")
	if r.status != http.StatusForbidden || !strings.Contains(r.body, "port 25") || len(peers.calls) != 0 {
		t.Errorf("port 25: %d %q, DSHT calls %q", r.status, trunc(r.body), peers.calls)
	}
}

// A closed port and an open port that does not speak HTTP look the same.
func TestClosedAndNonHTTPPortsLookAlike(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.NegativeTTL = Off })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().(*net.TCPAddr)
	closed.Close()
	banner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { banner.Close() })
	go func() {
		for {
			c, err := banner.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
			c.Close()
		}
	}()
	bannerAddr := banner.Addr().(*net.TCPAddr)
	host := func(a *net.TCPAddr) string { return "127.0.0.1." + strconv.Itoa(a.Port) + "." + testZone }
	a := e.fetch("GET", host(closedAddr), "/")
	b := e.fetch("GET", host(bannerAddr), "/")
	if a.status != b.status || a.body != b.body {
		t.Errorf("closed port: %d %q\nbanner port: %d %q", a.status, a.body, b.status, b.body)
	}
}

// BenchmarkOriginGuard prints what the connect-time check costs: with the
// interface reading cached, and a fresh reading of the real interfaces.
func BenchmarkOriginGuard(b *testing.B) {
	ports, _ := coralurl.ParsePorts(coralurl.DefaultOriginPorts)
	target := netip.MustParseAddrPort("93.184.215.14:443")
	b.Run("check", func(b *testing.B) {
		g := newOriginGuard(ports, false, nil)
		for b.Loop() {
			if err := g.check(target); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read-interfaces", func(b *testing.B) {
		g := newOriginGuard(ports, false, nil)
		for b.Loop() {
			g.readAt = time.Time{}
			g.interfaces()
		}
	})
}

// A node whose resolver is a desktop proxy tool's fake-IP DNS has every
// origin refused (198.18.0.0/15 is not a public address): the volunteer is
// told why, once, instead of a node that silently fetches nothing.
func TestFakeIPResolverIsNamedOnce(t *testing.T) {
	g := newOriginGuard(coralurl.PortSet{}, false, nil)
	g.ifaceAddrs = func() ([]net.Addr, error) { return nil, nil }
	g.routes = func() []netip.Prefix { return nil }
	var told []netip.Addr
	g.fakeIP = func(a netip.Addr) { told = append(told, a) }
	for _, s := range []string{"192.0.0.8", "198.18.0.7", "198.19.255.1", "10.0.0.1"} {
		if err := g.checkAddr(netip.MustParseAddr(s)); err == nil {
			t.Errorf("%s allowed", s)
		}
	}
	if len(told) != 1 || told[0] != netip.MustParseAddr("198.18.0.7") {
		t.Errorf("told %v, want the first fake-IP address once", told)
	}
}
