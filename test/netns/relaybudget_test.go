package netns

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
)

// relayedSite is the usage record's name for circuits a node relays.
const relayedSite = "(relayed)"

// TestPausedRelaysCarryNothingAcrossHosts: five real coral processes with
// the default configuration. A holds relay reservations on two of the
// others; B and F (the other two) can reach A only through those relays
// once their direct links to A are cut, and only A reaches the origin.
// While the relays' volunteers have paused them, a visitor at B gets an
// answer (the origin is unreachable from B), not the object through them,
// and the relays carry none of it (only the refusals' few bytes); once
// they resume, F gets the other object from A through a relay.
func TestPausedRelaysCarryNothingAcrossHosts(t *testing.T) {
	requireNetAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	five := startFiveAtOrigin(t, ctx)
	l, nodes, ids, body, host := five.l, five.nodes, five.ids, five.body, five.host
	relays, others := relaysOf(t, ctx, nodes, ids)
	b, f := others[0], others[1]

	paths := []string{"/paused-relay/one.bin", "/paused-relay/two.bin"}
	for _, p := range paths {
		if resp, got, err := nodes["A"].get(ctx, host, p); err != nil || resp.StatusCode != 200 || string(got) != string(body) {
			t.Fatalf("%s via A: %v %v", p, resp, err)
		}
	}

	for _, r := range relays {
		setPaused(t, ctx, nodes[r], true)
	}
	before := relayedSent(t, ctx, nodes, relays)
	for _, o := range others {
		if err := l.cut(ctx, "A", o); err != nil {
			t.Fatalf("netns: %v", err)
		}
	}
	resp, got, err := getTraced(ctx, nodes[b], host, paths[0])
	if err != nil {
		t.Fatalf("via %s with the relays paused: %v", b, err)
	}
	if resp.StatusCode == 200 || resp.Header.Get("X-Coral-Cache") == "PEER" {
		t.Errorf("via %s with every relay to A paused: %d, X-Coral-Cache %q, %d bytes; want no way to A\ntrace: %s",
			b, resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(got), resp.Header.Get("X-Coral-Trace"))
	}
	pausedAnswer := resp.Status
	whilePaused := relayedSent(t, ctx, nodes, relays)
	for _, r := range relays {
		if d := whilePaused[r] - before[r]; d > 4<<10 {
			t.Errorf("paused relay %s sent %d relayed bytes", r, d)
		}
	}

	for _, r := range relays {
		setPaused(t, ctx, nodes[r], false)
	}
	resp, got, err = getTraced(ctx, nodes[f], host, paths[1])
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Coral-Cache") != "PEER" || string(got) != string(body) {
		t.Fatalf("via %s with the relays serving again: %v, X-Coral-Cache %q, %d bytes%s\ntrace: %s", f, err,
			resp.Header.Get("X-Coral-Cache"), len(got), errorText(resp, got), resp.Header.Get("X-Coral-Trace"))
	}
	after := relayedSent(t, ctx, nodes, relays)
	var carried int64
	for _, r := range relays {
		carried += after[r] - whilePaused[r]
	}
	if carried < int64(len(body)) {
		t.Errorf("the relays serving again carried %d bytes, less than the %d-byte object", carried, len(body))
	}
	if n := five.originHits.Load(); n != 2 {
		t.Errorf("origin saw %d requests, want 2 (both from A)", n)
	}
	t.Logf("FIGURES relays=%v visitor_at_%s_while_paused=%q paused_relayed_bytes=%v resumed_relayed_bytes=%d",
		relays, b, pausedAnswer, diff(whilePaused, before), carried)
}

// relaysOf waits until A holds relay reservations and returns the roles
// holding them and the two or more roles that do not (A excluded).
func relaysOf(t *testing.T, ctx context.Context, nodes map[string]*node, ids map[string]string) (relays, others []string) {
	t.Helper()
	st, err := nodes["A"].waitFor(ctx, "relay reservations", func(st control.Status) bool {
		return st.P2P != nil && len(st.P2P.RelayAddrs) > 0
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range fiveHosts {
		switch {
		case r == "A":
		case slices.Contains(st.P2P.RelayAddrs, ids[r]):
			relays = append(relays, r)
		default:
			others = append(others, r)
		}
	}
	if len(relays) == 0 || len(others) < 2 {
		t.Fatalf("A's reservations %v: relays %v, others %v; want at least one and two", st.P2P.RelayAddrs, relays, others)
	}
	t.Logf("A holds reservations on %v; %v reach it only through them once cut", relays, others)
	return relays, others
}

// setPaused pauses or resumes the node through its control API, as the
// volunteer's GUI does.
func setPaused(t *testing.T, ctx context.Context, n *node, paused bool) {
	t.Helper()
	if n.token == "" {
		if err := n.loadToken(); err != nil {
			t.Fatal(err)
		}
	}
	code, b, err := n.controlDo(ctx, http.MethodPut, "/api/settings", strings.NewReader(fmt.Sprintf(`{"paused": %v}`, paused)))
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s paused=%v: %d %s %v", n.role, paused, code, b, err)
	}
}

// relayedSent is what each role's usage record counts as relayed and sent
// this quota month.
func relayedSent(t *testing.T, ctx context.Context, nodes map[string]*node, roles []string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, r := range roles {
		st, err := nodes[r].status(ctx)
		if err != nil || st.Budget == nil {
			t.Fatalf("%s status: %v", r, err)
		}
		out[r] = st.Budget.Sites[relayedSite].Sent
	}
	return out
}

func diff(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range a {
		out[k] = v - b[k]
	}
	return out
}
