package dnsserver

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A group site's Coralized name (the target of its owner's CNAME) is
// answered, over UDP (fast path included) and TCP, with the group's member
// proxies that have headroom; other names with any proxy; a group whose
// members are all full or dead falls back to the rest rather than failing.
func TestSiteAnswersGroupProxies(t *testing.T) {
	dir := &fakeDir{}
	dir.set(publicProxies(8)...)
	sites := func(site string) ([]string, bool) {
		if site == "www.site.org" {
			return []string{"p5", "p6", "not-in-directory"}, true
		}
		return nil, false
	}
	ts := startServer(t, Config{Answers: 2}, dir, WithSites(sites))
	members := map[netip.Addr]bool{v4(5): true, v4(6): true}
	seen := map[netip.Addr]bool{}
	for i := 0; i < 20; i++ {
		for _, net := range []string{"udp", "tcp"} {
			m := ts.exchange(t, net, "WWW.site.org."+testZone+".", dns.TypeA, 0)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
				t.Fatalf("%s: %v", net, m)
			}
			for _, a := range answerAddrs(m) {
				if !members[a] {
					t.Fatalf("%s: answered %s, not a group member", net, a)
				}
			}
		}
		for _, a := range answerAddrs(ts.exchange(t, "udp", "www.other.org."+testZone+".", dns.TypeA, 0)) {
			seen[a] = true
		}
	}
	if len(seen) <= 2 {
		t.Errorf("other names were answered from %d proxies only", len(seen))
	}

	ps := publicProxies(8)
	ps[5].Full = true
	dir.set(ps...)
	ts.clock.Advance(2 * time.Second) // past the ranking cache
	for i := 0; i < 5; i++ {
		if as := answerAddrs(ts.exchange(t, "tcp", "www.site.org."+testZone+".", dns.TypeA, 0)); len(as) != 1 || as[0] != v4(6) {
			t.Fatalf("one member full: answered %v, want only the member with headroom %s", as, v4(6))
		}
	}
	ps[6].Full = true
	dir.set(ps...)
	for _, a := range answerAddrs(ts.exchange(t, "tcp", "www.site.org."+testZone+".", dns.TypeA, 0)) {
		if members[a] {
			t.Errorf("every member full: answered member %s while others have room", a)
		}
	}

	ts.clock.Advance(time.Hour)
	dir.heard(ts.clock.Now(), "p0", "p1", "p2")
	m := ts.exchange(t, "udp", "www.site.org."+testZone+".", dns.TypeA, 0)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		t.Fatalf("members dead: %v", m)
	}
	for _, a := range answerAddrs(m) {
		if members[a] {
			t.Errorf("answered dead member %s", a)
		}
	}
}

// The nameserver on a member's node does not prefer itself (or its
// clusters) for the group's sites: the answers rotate over every member,
// while other names still prefer this node's clusters.
func TestSiteAnswersSpreadOverMembers(t *testing.T) {
	ps := publicProxies(8)
	for i := range ps {
		ps[i].Cluster = [3]string{fmt.Sprintf("r%d", i), "c", "g"}
	}
	dir := &fakeDir{}
	dir.set(ps...)
	sites := func(site string) ([]string, bool) { return []string{"p5", "p6", "p7"}, site == "www.site.org" }
	ts := startServer(t, Config{Answers: 2, Self: "p5"}, dir, WithSites(sites))
	seen := map[netip.Addr]int{}
	for i := 0; i < 30; i++ {
		for _, a := range answerAddrs(ts.exchange(t, "udp", "www.site.org."+testZone+".", dns.TypeA, 0)) {
			seen[a]++
		}
		if as := answerAddrs(ts.exchange(t, "udp", "www.other.org."+testZone+".", dns.TypeA, 0)); len(as) != 2 || as[0] != v4(5) {
			t.Fatalf("other name: %v, want this node %s first", as, v4(5))
		}
	}
	if len(seen) != 3 || seen[v4(5)] == 30 {
		t.Errorf("group site answers: %v, want all three members in turn", seen)
	}
}
