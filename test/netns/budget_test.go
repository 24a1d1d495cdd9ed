package netns

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// budgetLeaveBound is "a heartbeat or two": peers fetch a node's
// announcement every 5 s (2 s timeout), and a paused node refreshes its
// own at once.
const budgetLeaveBound = 2 * 5 * time.Second

// Five real coral processes with the default configuration, one per
// namespace: a volunteer pauses node B through its control API (with the
// token). Within a heartbeat or two no node's DNS names B, answers still
// hold 3 records of the 4 others, and a visitor who still reaches B gets
// 503 with Retry-After; after resuming, B is named again.
func TestPausedNodeLeavesAnswersAcrossHosts(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	logs := nodeOutput(t)
	roles := []string{"A", "B", "C", "D", "E"}
	l := newBridgeLab(t, roles)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, byIP := startFive(t, ctx, l, bin, roles, logs)

	b := nodes["B"]
	if err := b.loadToken(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if code, body, err := b.controlDo(ctx, http.MethodPut, "/api/settings", strings.NewReader(`{"paused": true}`)); err != nil || code != http.StatusOK {
		t.Fatalf("pause B: %d %s %v", code, body, err)
	}
	if d := leftAfter(t, ctx, l, roles, l.addr["B"], paused); d > budgetLeaveBound {
		t.Errorf("paused B left the answers after %v, more than a heartbeat or two (%v)", d.Round(time.Millisecond), budgetLeaveBound)
	}
	live := slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return r == "B" })
	checkAnswers(t, l, roles, live, byIP, 10)
	resp, page, err := b.get(ctx, "www.example.com.localhost", "/")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(page), "http://www.example.com/") {
		t.Errorf("a visitor at paused B: %v %v\n%s", resp.Status, err, page)
	}

	resumed := time.Now()
	if code, body, err := b.controlDo(ctx, http.MethodPut, "/api/settings", strings.NewReader(`{"paused": false}`)); err != nil || code != http.StatusOK {
		t.Fatalf("resume B: %d %s %v", code, body, err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
	defer rcancel()
	if err := waitAnswers(rctx, l, roles, byIP); err != nil {
		t.Fatal(err)
	}
	t.Logf("B named by every node again %v after resuming", time.Since(resumed).Round(time.Millisecond))
}

// startFive starts roles with the default configuration, bootstrapped
// from the first, and waits until every node's DNS answers with all of
// them; it returns the nodes and the roles by address.
func startFive(t *testing.T, ctx context.Context, l *lab, bin string, roles []string, logs *logBuffer) (map[string]*node, map[netip.Addr]string) {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "network.key")
	if err := cluster.WriteSecret(secret); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*node{}
	nodes[roles[0]] = startDefaultNode(t, l, bin, secret, roles[0], "", logs)
	st, err := nodes[roles[0]].waitFor(ctx, "p2p up", func(st control.Status) bool { return st.P2P != nil && st.P2P.PeerID != "" })
	if err != nil {
		t.Fatal(err)
	}
	boot := fmt.Sprintf("/ip4/%s/tcp/%d/p2p/%s", l.addr[roles[0]], p2pPort, st.P2P.PeerID)
	for _, r := range roles[1:] {
		nodes[r] = startDefaultNode(t, l, bin, secret, r, boot, logs)
	}
	start := time.Now()
	byIP := map[netip.Addr]string{}
	for _, r := range roles {
		byIP[l.addr[r]] = r
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	defer wcancel()
	if err := waitAnswers(wctx, l, roles, byIP); err != nil {
		t.Fatal(err)
	}
	t.Logf("every node answers with all %d proxies %v after the last start", len(roles), time.Since(start).Round(time.Millisecond))
	return nodes, byIP
}
