package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
)

// A home node behind a NAT router must not fetch from the router's public
// address: from inside, that address is the router itself (its admin
// pages, its port forwards back into the home). The node is not told the
// address ([http] advertise is empty, as for any volunteer); it learns it
// from the member it joins through, which sees the node at the router's
// address. Documentation addresses throughout, so the private-range check
// alone would let every fetch through:
//
//	home 192.0.2.1/24 ── lan0 ── 192.0.2.254 router 198.51.100.1 (NAT) ── wan0 ── 198.51.100.2 member
//
// Both nodes run the default config (plus the shared secret, and the
// member's address to join through). The router serves a secret page on
// its public address, which answers from outside (so the page works); the
// home node answers 403 naming allow_private_origins and the router's
// page sees no request from it.
func TestNodeRefusesItsRouterThroughHairpin(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	logs := nodeOutput(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	home, router, member := buildNATHome(t, ctx)

	var fromHome, fromMember atomic.Int64
	serveIn(t, router, "198.51.100.1:9000", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.RemoteAddr, "198.51.100.2:") {
			fromMember.Add(1)
		} else {
			fromHome.Add(1)
		}
		fmt.Fprint(w, "ROUTER ADMIN")
	}))

	secret := writeSecret(t)
	memberNode := startPlainNode(t, ctx, bin, member, fmt.Sprintf("[p2p]\nsecret_file = %q\n", secret), logs)
	memberID := statusIn(t, ctx, member, func(st control.Status) bool { return st.P2P != nil && st.P2P.PeerID != "" }).P2P.PeerID
	homeNode := startPlainNode(t, ctx, bin, home, fmt.Sprintf("[p2p]\nsecret_file = %q\nbootstrap = [\"/ip4/198.51.100.2/tcp/4100/p2p/%s\"]\n", secret, memberID), logs)
	st := statusIn(t, ctx, home, func(st control.Status) bool {
		return st.P2P != nil && slices.Contains(st.P2P.ReachedAt, "198.51.100.1")
	})
	if slices.Contains(st.P2P.Addrs, "/ip4/198.51.100.1/tcp/4100") {
		t.Logf("libp2p lists the router's address itself: %v", st.P2P.Addrs)
	}

	if resp, err := memberNode.hc.Get("http://198.51.100.1:9000/"); err != nil || resp.StatusCode != http.StatusOK || fromMember.Load() != 1 {
		t.Fatalf("the router's page should answer from outside (it works): %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	for range 2 { // twice: a refusal is not remembered as a dead origin
		status, body, err := homeNode.get(ctx, "198.51.100.1.9000.localhost")
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusForbidden || !strings.Contains(body, "allow_private_origins") || strings.Contains(body, "ROUTER") {
			t.Errorf("home node, its router's public address: %d %q; want a 403 naming allow_private_origins", status, body)
		}
	}
	if n := fromHome.Load(); n != 0 {
		t.Fatalf("the router's page answered %d requests from the home node", n)
	}
}

// buildNATHome makes the home, its router (masquerading the home's
// traffic out of wan0) and a member outside; removed when the test ends.
func buildNATHome(t *testing.T, ctx context.Context) (home, router, member string) {
	t.Helper()
	names := addNamespaces(t, ctx, "nathome", "natrtr", "natmbr")
	home, router, member = names[0], names[1], names[2]
	cmds := [][]string{
		{"ip", "-n", home, "link", "set", "lo", "up"},
		{"ip", "-n", router, "link", "set", "lo", "up"},
		{"ip", "-n", member, "link", "set", "lo", "up"},
		{"ip", "link", "add", "lan0", "netns", home, "type", "veth", "peer", "name", "lan0", "netns", router},
		{"ip", "link", "add", "wan0", "netns", router, "type", "veth", "peer", "name", "wan0", "netns", member},
		{"ip", "-n", home, "addr", "add", "192.0.2.1/24", "dev", "lan0"},
		{"ip", "-n", router, "addr", "add", "192.0.2.254/24", "dev", "lan0"},
		{"ip", "-n", router, "addr", "add", "198.51.100.1/24", "dev", "wan0"},
		{"ip", "-n", member, "addr", "add", "198.51.100.2/24", "dev", "wan0"},
		{"ip", "-n", home, "link", "set", "lan0", "up"},
		{"ip", "-n", router, "link", "set", "lan0", "up"},
		{"ip", "-n", router, "link", "set", "wan0", "up"},
		{"ip", "-n", member, "link", "set", "wan0", "up"},
		{"ip", "-n", home, "route", "add", "default", "via", "192.0.2.254"},
		{"ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "netns", "exec", router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-j", "MASQUERADE"},
	}
	for _, c := range cmds {
		if err := run(ctx, c...); err != nil {
			t.Fatal(err)
		}
	}
	return home, router, member
}

// statusIn polls the /api/status of the node in ns (its control API on
// 127.0.0.1:8081, the default) until ok holds.
func statusIn(t *testing.T, ctx context.Context, ns string, ok func(control.Status) bool) control.Status {
	t.Helper()
	hc := clientIn(ns, 5*time.Second)
	var last control.Status
	for {
		resp, err := hc.Get("http://127.0.0.1:8081/api/status")
		if err == nil {
			var st control.Status
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && ok(st) {
				return st
			}
			last = st
		}
		select {
		case <-ctx.Done():
			p2p := "no p2p section"
			if last.P2P != nil {
				p2p = fmt.Sprintf("%+v", *last.P2P)
			}
			t.Fatalf("%s: status never as wanted (%v); last: %s", ns, err, p2p)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
