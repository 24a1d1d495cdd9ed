package netns

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// A and B cannot reach each other; both reach C. Three real coral
// processes, each in its own network namespace:
//
//   - a DSHT value put on A is found by a get on B;
//   - an object only A could fetch (its origin is on a link only A has)
//     reaches B's visitor with X-Coral-Cache: PEER, byte for byte, through
//     C's relay: the origin saw one request, from A, and C never stored
//     the object.
func TestNonTransitiveLink(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	start := time.Now()
	logs := nodeOutput(t)
	l := newLab(t)
	t.Logf("network: subnet %s, namespaces %s %s %s (bridge in %s)",
		l.subnet, l.ns["A"], l.ns["B"], l.ns["C"], l.ns["br"])

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Cut A <-> B before any node starts, so they never hold a direct
	// connection that the cut would merely stall.
	if err := l.cut(ctx, "A", "B"); err != nil {
		t.Fatalf("netns: %v", err)
	}

	// The origin listens on the link between the test process and A.
	var originHits atomic.Int64
	var originFrom sync.Map
	body := objectBody()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(l.origin, 0).String())
	if err != nil {
		t.Fatalf("origin listener: %v", err)
	}
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		originFrom.Store(host, true)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}))
	origin.Listener.Close()
	origin.Listener = ln
	origin.Start()
	t.Cleanup(origin.Close)

	secret := filepath.Join(t.TempDir(), "network.key")
	if err := cluster.WriteSecret(secret); err != nil {
		t.Fatal(err)
	}

	// C: the publicly reachable volunteer that relays.
	c := startNode(t, l, bin, secret, nodeSpec{role: "C", reachability: "public", relayService: true}, logs)
	st, err := c.waitFor(ctx, "p2p up", func(st control.Status) bool { return st.P2P != nil && st.P2P.PeerID != "" })
	if err != nil {
		t.Fatal(err)
	}
	boot := fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", c.addr, p2pPort, st.P2P.PeerID)
	// A and B: private nodes, so they hold relay reservations on C.
	a := startNode(t, l, bin, secret, nodeSpec{role: "A", reachability: "private", bootstrap: []string{boot}}, logs)
	b := startNode(t, l, bin, secret, nodeSpec{role: "B", reachability: "private", bootstrap: []string{boot}}, logs)
	nodes := []*node{a, b, c}

	for _, n := range []*node{a, b} {
		if _, err := n.waitFor(ctx, "a relay reservation on C", func(st control.Status) bool {
			return st.P2P != nil && st.P2P.Relayed && st.P2P.Reachability == "private"
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Each node's DSHT must know both others: B learns of A only from C,
	// and reaches it only through C.
	for _, n := range nodes {
		if _, err := n.waitFor(ctx, "DSHT routing table with both other nodes", func(st control.Status) bool {
			return st.DSHT != nil && len(st.DSHT.Levels) > 0 && st.DSHT.Levels[0].RoutingSize >= 2
		}); err != nil {
			t.Fatal(err)
		}
		if err := n.loadToken(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("three nodes up and joined after %v", time.Since(start).Round(time.Millisecond))

	// The cut holds: B's packets to A vanish, while B reaches C, and
	// neither B nor C can reach the origin.
	if err := l.dial(ctx, "B", a.p2pAddr()); err == nil {
		t.Fatalf("B connected to A's p2p port directly: the iptables cut does not hold")
	} else if !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("B -> A should time out (packets dropped), got: %v", err)
	}
	if err := l.dial(ctx, "B", c.p2pAddr()); err != nil {
		t.Fatalf("B cannot reach C: %v", err)
	}
	originAddr := netip.MustParseAddrPort(ln.Addr().String())
	for _, r := range []string{"B", "C"} {
		if err := l.dial(ctx, r, originAddr); err == nil {
			t.Fatalf("%s reached the origin %s: only A should", r, originAddr)
		}
	}
	if err := l.dial(ctx, "A", originAddr); err != nil {
		t.Fatalf("A cannot reach the origin: %v", err)
	}

	// 1. DSHT: a put on A, a get on B.
	key := fmt.Sprintf("netns-%d-%d", l.pid, time.Now().UnixNano())
	value := "stored by A, read by B"
	if err := a.dshtPut(ctx, key, value); err != nil {
		t.Fatalf("DSHT put on A: %v", err)
	}
	vals, err := b.dshtGet(ctx, key)
	if err != nil {
		t.Fatalf("DSHT get on B: %v", err)
	}
	if !slices.Contains(vals, value) {
		t.Fatalf("DSHT get on B: got %q, want %q among the values", vals, value)
	}

	// 2. An object only A can fetch reaches B.
	host := fmt.Sprintf("%s.%d.localhost", l.origin, originAddr.Port())
	const path = "/only-a/object.bin"
	resp, got, err := a.get(ctx, host, path)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(got) != string(body) || resp.Header.Get("X-Coral-Cache") != "MISS" {
		t.Fatalf("via A: %d, X-Coral-Cache %q, %d bytes (body ok %v); want 200 MISS with the origin's %d bytes%s",
			resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(got), string(got) == string(body), len(body), errorText(resp, got))
	}
	resp, got, err = b.get(ctx, host, path)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("X-Coral-Cache") != "PEER" {
		t.Fatalf("via B: %d, X-Coral-Cache %q, %d bytes; want 200 PEER (B cannot reach A or the origin, only C)%s",
			resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(got), errorText(resp, got))
	}
	if string(got) != string(body) {
		t.Fatalf("via B: body differs from the origin's (%d bytes, want %d)", len(got), len(body))
	}
	if n := originHits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want exactly 1 (from A)", n)
	}
	originFrom.Range(func(k, _ any) bool {
		if k.(string) != l.originA.String() {
			t.Errorf("origin was reached from %v, only A (%s) should reach it", k, l.originA)
		}
		return true
	})

	// B got it from a peer, without an origin fetch; C only carried the
	// bytes, it never fetched or stored the object itself.
	sb, err := b.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sb.Proxy.Peer != 1 || sb.Proxy.OriginFetches != 0 {
		t.Errorf("B: peer fetches %d, origin fetches %d; want 1 and 0", sb.Proxy.Peer, sb.Proxy.OriginFetches)
	}
	sc, err := c.status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Cache.Objects != 0 || sc.Proxy.Requests != 0 {
		t.Errorf("C: %d objects cached, %d proxy requests; want 0 and 0 (C only relays)", sc.Cache.Objects, sc.Proxy.Requests)
	}
	t.Logf("scenario done in %v", time.Since(start).Round(time.Millisecond))
}

// objectBody is a few hundred KiB, several relay buffers' and transfer
// chunks' worth, with distinct lines so a misordered or partial copy shows.
func objectBody() []byte {
	var b strings.Builder
	for i := range 6000 {
		fmt.Fprintf(&b, "line %05d: an object only A's origin serves\n", i)
	}
	return []byte(b.String())
}

// errorText quotes a short error response for a failure message.
func errorText(resp *http.Response, b []byte) string {
	if resp.StatusCode == http.StatusOK || len(b) > 2048 {
		return ""
	}
	return fmt.Sprintf(": %q", strings.TrimSpace(string(b)))
}
