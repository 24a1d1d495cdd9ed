package node

import (
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/coralcdn/coral/app/config"
)

// A network following the README's delegation steps: the registered
// nameserver names answer with their configured glue, and the apex names
// them while no volunteer nameserver is known, so the node agrees with the
// parent zone instead of treating "ns1" as an origin.
func TestDelegationFromConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.DNS.Nameservers = []config.NameServer{{Name: "ns1.localhost", Addrs: []string{"198.51.100.53"}}}
	n := startNode(t, cfg)
	c := new(dns.Client)

	q := new(dns.Msg)
	q.SetQuestion("ns1.localhost.", dns.TypeA)
	r, _, err := c.Exchange(q, n.Addrs().DNS)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	if r.Rcode != dns.RcodeSuccess || !r.Authoritative || !slices.Equal(got, []string{"198.51.100.53"}) {
		t.Errorf("ns1.localhost A: rcode %s aa %v answers %v, want the glue 198.51.100.53", dns.RcodeToString[r.Rcode], r.Authoritative, got)
	}

	q.SetQuestion("localhost.", dns.TypeNS)
	if r, _, err = c.Exchange(q, n.Addrs().DNS); err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, rr := range r.Answer {
		if x, ok := rr.(*dns.NS); ok {
			ns = append(ns, x.Ns)
		}
	}
	if !slices.Contains(ns, "ns1.localhost.") {
		t.Errorf("apex NS %v, want ns1.localhost. (no volunteer nameserver is known)", ns)
	}
}
