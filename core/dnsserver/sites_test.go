package dnsserver

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// A group site's Coralized name (the target of its owner's CNAME) is
// answered, over UDP (fast path included) and TCP, with the group's member
// proxies that have headroom; other names with any proxy.
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
}

// A group site is answered with members only, whatever their state: every
// member with headroom (not Config.Answers of them, up to MaxGroupAnswers),
// members not heard from lately after a ping (every one of them pinged),
// the full ones when no member has room, SERVFAIL when none is live or
// there are none.
// Proxies p0-p2 are never members and always live with room.
func TestSiteAnswersMembersOnly(t *testing.T) {
	for _, tc := range []struct {
		name     string
		members  int   // p3 … p(3+members-1)
		full     []int // members without headroom
		silent   []int // members not heard from lately
		pingable []int // silent members that answer a ping
		want     []int // proxies in the answer, by index
		rcode    int
	}{
		{name: "every member with room", members: 4, want: []int{3, 4, 5, 6}},
		{name: "one full", members: 4, full: []int{4}, want: []int{3, 5, 6}},
		{name: "every member full", members: 3, full: []int{3, 4, 5}, want: []int{3, 4, 5}},
		{name: "silent, answering pings", members: 3, silent: []int{3, 4, 5}, pingable: []int{4, 5}, want: []int{4, 5}},
		{name: "every member dead", members: 3, silent: []int{3, 4, 5}, rcode: dns.RcodeServerFailure},
		{name: "ten members", members: 10, want: []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
		// A name the node's groups dispute: a site without members.
		{name: "no members (disputed)", members: 0, rcode: dns.RcodeServerFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := publicProxies(3 + tc.members)
			var ids []string
			for i := 3; i < len(ps); i++ {
				ids = append(ids, ps[i].ID)
			}
			for _, i := range tc.full {
				ps[i].Full = true
			}
			pr := &fakeProber{alive: map[string]bool{}, calls: map[string]int{}}
			for _, i := range tc.silent {
				ps[i].LastHeard = time.Time{}
			}
			for _, i := range tc.pingable {
				pr.alive[ps[i].ID] = true
			}
			dir := &fakeDir{}
			dir.set(ps...)
			sites := func(site string) ([]string, bool) { return ids, site == "www.site.org" }
			ts := startServer(t, Config{Answers: 2}, dir, WithSites(sites), WithProber(pr))
			for _, net := range []string{"udp", "tcp"} {
				m := ts.exchange(t, net, "www.site.org."+testZone+".", dns.TypeA, 0)
				if m.Rcode != tc.rcode {
					t.Fatalf("%s: rcode %s, want %s", net, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
				}
				got := addrSet(answerAddrs(m))
				if want := min(len(tc.want), MaxGroupAnswers); len(got) != want {
					t.Fatalf("%s: answered %v, want %d of members %v", net, answerAddrs(m), want, tc.want)
				}
				for a := range got {
					if !slices.ContainsFunc(tc.want, func(i int) bool { return v4(i) == a }) {
						t.Fatalf("%s: answered %s, want only %v", net, a, tc.want)
					}
				}
			}
		})
	}
}

// The nameserver on a member's node does not prefer itself (or its
// clusters) for the group's sites: every answer names every member and the
// first record (the one many clients use) rotates evenly over them, while
// other names still prefer this node's clusters.
func TestSiteAnswersSpreadOverMembers(t *testing.T) {
	ps := publicProxies(8)
	for i := range ps {
		ps[i].Cluster = [3]string{fmt.Sprintf("r%d", i), "c", "g"}
	}
	dir := &fakeDir{}
	dir.set(ps...)
	sites := func(site string) ([]string, bool) { return []string{"p5", "p6", "p7"}, site == "www.site.org" }
	ts := startServer(t, Config{Answers: 2, Self: "p5"}, dir, WithSites(sites))
	first := map[netip.Addr]int{}
	for i := 0; i < 30; i++ {
		as := answerAddrs(ts.exchange(t, "udp", "www.site.org."+testZone+".", dns.TypeA, 0))
		if len(as) != 3 {
			t.Fatalf("group site answer %v, want all three members", as)
		}
		first[as[0]]++
		if as := answerAddrs(ts.exchange(t, "udp", "www.other.org."+testZone+".", dns.TypeA, 0)); len(as) != 2 || as[0] != v4(5) {
			t.Fatalf("other name: %v, want this node %s first", as, v4(5))
		}
	}
	for _, i := range []int{5, 6, 7} {
		if first[v4(i)] != 10 {
			t.Errorf("first records of 30 group site answers: %v, want each member 10 times", first)
		}
	}
}
