package locality

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/miekg/dns"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestProxyAddrs(t *testing.T) {
	cases := []struct {
		name string
		ann  Announcement
		seen []netip.Addr
		want []netip.Addr
	}{
		{"listener on a loopback address, peer on this machine",
			Announcement{Addrs: addrs("127.0.0.12")}, addrs("127.0.0.1"), addrs("127.0.0.12")},
		{"loopback address of a peer elsewhere is useless here",
			Announcement{Addrs: addrs("127.0.0.1", "198.51.100.7")}, addrs("198.51.100.7"), addrs("198.51.100.7")},
		{"LAN address of a peer on this LAN",
			Announcement{Addrs: addrs("192.168.1.20")}, addrs("192.168.1.20"), addrs("192.168.1.20")},
		{"LAN address of a peer behind another NAT is another machine",
			Announcement{Addrs: addrs("192.168.1.20", "10.0.0.5", "100.64.1.1", "fd00::5", "64:ff9b::a00:5")}, addrs("203.0.113.9"), nil},
		{"global addresses are taken as announced",
			Announcement{Addrs: addrs("2001:db8::53", "198.51.100.7")}, addrs("203.0.113.9"), addrs("2001:db8::53", "198.51.100.7")},
		{"listening everywhere adds where we see it, once",
			Announcement{Addrs: addrs("198.51.100.7"), AnyAddr: true}, addrs("198.51.100.7", "203.0.113.9"), addrs("198.51.100.7", "203.0.113.9")},
		{"where we see it is not used for a proxy bound to one address",
			Announcement{Addrs: addrs("198.51.100.7")}, addrs("203.0.113.9"), addrs("198.51.100.7")},
		{"junk is dropped",
			Announcement{Addrs: addrs("0.0.0.0", "::", "224.0.0.1", "ff02::1", "fe80::1", "169.254.1.1", "255.255.255.255", "::ffff:198.51.100.8")},
			addrs("127.0.0.1"), addrs("198.51.100.8")},
	}
	for _, c := range cases {
		if got := ProxyAddrs(c.ann, c.seen); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	var many Announcement
	for i := range 20 {
		many.Addrs = append(many.Addrs, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	if got := ProxyAddrs(many, nil); len(got) != maxProxyAddrs {
		t.Errorf("kept %d addresses, want %d", len(got), maxProxyAddrs)
	}
}

func TestDirectoryLiveness(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := NewDirectory(dnsserver.Proxy{ID: "self", Addrs: addrs("127.0.0.10"), LastHeard: t0})
	ann := Announcement{Addrs: addrs("198.51.100.1"), Public: true, Cluster: [3]string{"r", "c", ""}}
	lastHeard := func(id string) (time.Time, bool) {
		for _, p := range d.Proxies() {
			if p.ID == id {
				return p.LastHeard, true
			}
		}
		return time.Time{}, false
	}

	if ps := d.Proxies(); len(ps) != 1 || ps[0].ID != "self" {
		t.Fatalf("fresh directory: %+v", ps)
	}
	d.Failed("p1", t0) // never heard: nothing to mark
	d.Alive("p1", t0)
	if _, ok := lastHeard("p1"); ok {
		t.Fatal("a peer that never announced itself is listed")
	}
	d.Heard("p1", ann, nil, t0.Add(time.Second))
	if at, ok := lastHeard("p1"); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("after Heard: %v %v", at, ok)
	}
	p := d.Proxies()[1]
	if !p.Public || p.Cluster != ann.Cluster || !slices.Equal(p.Addrs, ann.Addrs) {
		t.Errorf("entry %+v does not carry the announcement", p)
	}
	// A later failure overrides the earlier success: no LastHeard, so the
	// nameserver must ping it (or skip it).
	d.Failed("p1", t0.Add(2*time.Second))
	if at, ok := lastHeard("p1"); !ok || !at.IsZero() {
		t.Fatalf("after Failed: LastHeard %v, listed %v", at, ok)
	}
	// An older success reported late does not undo the failure.
	d.Alive("p1", t0.Add(1500*time.Millisecond))
	if at, _ := lastHeard("p1"); !at.IsZero() {
		t.Fatalf("stale Alive revived the peer: %v", at)
	}
	d.Alive("p1", t0.Add(3*time.Second))
	if at, _ := lastHeard("p1"); !at.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("after Alive: %v", at)
	}
	// Two failures in a row: left out, no probing; one success brings it back.
	d.Failed("p1", t0.Add(4*time.Second))
	if _, ok := lastHeard("p1"); !ok {
		t.Fatal("one failure dropped the peer")
	}
	d.Failed("p1", t0.Add(5*time.Second))
	if _, ok := lastHeard("p1"); ok {
		t.Fatal("peer listed after two failures in a row")
	}
	d.Heard("p1", ann, nil, t0.Add(6*time.Second))
	if at, ok := lastHeard("p1"); !ok || !at.Equal(t0.Add(6*time.Second)) {
		t.Fatalf("after recovering: %v %v", at, ok)
	}
	// An announcement without usable addresses keeps the peer out.
	d.Heard("p2", Announcement{Addrs: addrs("10.0.0.2")}, addrs("203.0.113.1"), t0)
	if _, ok := lastHeard("p2"); ok {
		t.Error("peer without reachable address listed")
	}
	d.Heard("self", ann, nil, t0) // our own echo is ignored
	if n := len(d.Proxies()); n != 2 {
		t.Errorf("%d entries, want self and p1", n)
	}
	d.Forget("p1")
	if _, ok := lastHeard("p1"); ok {
		t.Error("forgotten peer still listed")
	}
	d.Heard("p3", ann, nil, t0)
	d.Retain(func(id string) bool { return id != "p3" })
	if d.Len() != 1 { // p2 stays (kept by Retain), p3 goes
		t.Errorf("after Retain: %d members", d.Len())
	}
}

func TestDirectoryIsBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	d := NewDirectory(dnsserver.Proxy{ID: "self"})
	ann := Announcement{Addrs: addrs("198.51.100.1")}
	for i := range MaxMembers + 10 {
		d.Heard(string(rune('A'+i%26))+time.Duration(i).String(), ann, nil, t0.Add(time.Duration(i)*time.Second))
	}
	if d.Len() != MaxMembers {
		t.Errorf("%d members, want %d", d.Len(), MaxMembers)
	}
}

// The directory behind a real nameserver: a peer whose heartbeat fails
// leaves the answers at once and comes back when it answers again; a peer
// whose connection closed is gone.
func TestDirectoryBehindNameserver(t *testing.T) {
	now := time.Now()
	d := NewDirectory(dnsserver.Proxy{ID: "self", Addrs: addrs("127.0.0.10"), LastHeard: now})
	for i, id := range []string{"p1", "p2", "p3"} {
		d.Heard(id, Announcement{Addrs: []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, byte(11 + i)})}}, addrs("127.0.0.1"), now)
	}
	srv := startDNS(t, d)
	all := func() []string { return answerUnion(t, srv, nil, 8) }

	if got := all(); !slices.Equal(got, []string{"127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"}) {
		t.Fatalf("answers cover %v, want all four proxies", got)
	}
	d.Failed("p2", time.Now())
	if got := all(); slices.Contains(got, "127.0.0.12") || len(got) != 3 {
		t.Fatalf("after p2's heartbeat failed, answers cover %v", got)
	}
	d.Heard("p2", Announcement{Addrs: addrs("127.0.0.12")}, addrs("127.0.0.1"), time.Now())
	if got := all(); !slices.Contains(got, "127.0.0.12") {
		t.Fatalf("p2 answered again but answers cover %v", got)
	}
	d.Forget("p3")
	if got := all(); slices.Contains(got, "127.0.0.13") {
		t.Fatalf("after p3 disconnected, answers cover %v", got)
	}
}

func startDNS(t *testing.T, dir dnsserver.Directory, opts ...dnsserver.Option) *dnsserver.Server {
	t.Helper()
	srv, err := dnsserver.New(dnsserver.Config{
		Zone: "coral.test", Listen: "127.0.0.1:0", Self: "self", Answers: 3, Logger: testLogger(),
		RateLimit: dnsserver.RateLimit{PerSecond: -1},
	}, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// query asks srv for A www.example.com.coral.test, with a client subnet if
// ecs is set, and returns the addresses in answer order.
func query(t *testing.T, srv *dnsserver.Server, ecs *netip.Prefix) []string {
	t.Helper()
	udp, _ := srv.Addr()
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.coral.test.", dns.TypeA)
	o := m.SetEdns0(1232, false).IsEdns0()
	if ecs != nil {
		fam := uint16(1)
		if ecs.Addr().Is6() {
			fam = 2
		}
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: fam,
			SourceNetmask: uint8(ecs.Bits()), Address: net.IP(ecs.Addr().AsSlice())})
	}
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, udp.String())
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// answerUnion is the sorted set of addresses over n queries (answers rotate).
func answerUnion(t *testing.T, srv *dnsserver.Server, ecs *netip.Prefix, n int) []string {
	t.Helper()
	var out []string
	for range n {
		for _, a := range query(t, srv, ecs) {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}
