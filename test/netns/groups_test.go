package netns

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/group"
)

// Five real coral processes with the default configuration, one per
// namespace; A, B and C join a site group through the settings API (A
// with the manifest, B and C with the key only). The manifest reaches B
// and C over libp2p, and to D and E through the network-wide directory; a
// manifest signed by a stranger is refused and changes nothing; every
// node's DNS — the outsiders' too — answers the site's CNAME target
// (<site>.<group ID>.<zone>) with the members' proxies only; an outsider
// refuses the bare custom domain.
func TestSiteGroupAcrossHosts(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	logs := nodeOutput(t)
	roles := []string{"A", "B", "C", "D", "E"}
	l := newBridgeLab(t, roles)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, byIP := startFive(t, ctx, l, bin, roles, logs)

	pub, priv, _ := ed25519.GenerateKey(nil)
	_, stranger, _ := ed25519.GenerateKey(nil)
	m := group.Manifest{Name: "netns group", Serial: 1,
		Sites: []group.Site{{Host: "www.site.test", Origin: "http://origin.site.test", Weight: 1}}}
	members := []string{"A", "B", "C"}
	for _, r := range members {
		st, err := nodes[r].status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m.Members = append(m.Members, group.Member{Peer: st.NodeID, UploadMbps: 10})
	}
	signed, err := group.Sign(m, priv)
	if err != nil {
		t.Fatal(err)
	}
	joined := time.Now()
	for _, r := range members {
		req := map[string]any{"key": group.FormatPublicKey(pub)}
		if r == "A" {
			req["manifest"] = json.RawMessage(signed)
		}
		body, _ := json.Marshal(req)
		if err := nodes[r].loadToken(); err != nil {
			t.Fatal(err)
		}
		if code, b, err := nodes[r].controlDo(ctx, http.MethodPost, "/api/groups/join", bytes.NewReader(body)); err != nil || code != http.StatusOK {
			t.Fatalf("%s joins: %d %s %v", r, code, b, err)
		}
	}
	for _, r := range members[1:] {
		if _, err := nodes[r].waitFor(ctx, "the group's manifest", func(st control.Status) bool {
			return len(st.Groups) == 1 && st.Groups[0].Serial == 1
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("manifest in force on B and C %v after the joins", time.Since(joined).Round(time.Millisecond))

	m.Serial, m.Name = 9, "forged"
	forged, _ := group.Sign(m, stranger)
	if code, b, _ := nodes["B"].controlDo(ctx, http.MethodPost, "/api/groups/manifest", bytes.NewReader(forged)); code != http.StatusBadRequest {
		t.Errorf("forged manifest at B: %d %s", code, b)
	}
	if st, _ := nodes["B"].status(ctx); st.Groups[0].Serial != 1 {
		t.Errorf("B's manifest changed to serial %d", st.Groups[0].Serial)
	}

	memberIPs := []netip.Addr{l.addr["A"], l.addr["B"], l.addr["C"]}
	for _, asker := range roles {
		// Members hold the manifest (above); outsiders learn it from the
		// network-wide directory, and say so in their log.
		if !slices.Contains(members, asker) {
			testkitEventually(ctx, t, asker+" learning the group from the directory", func() bool {
				return slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(line string) bool {
					return strings.HasPrefix(line, asker+": ") && strings.Contains(line, "group directory: manifest accepted") && strings.Contains(line, group.ID(pub))
				})
			})
		}
		// From then on every answer names members only, and together at
		// least two of them: the group's nodes answer for its sites, never
		// others (who could not map the public name a visitor sends as
		// Host); a member not heard from lately is pinged, not passed over.
		seen := map[netip.Addr]bool{}
		for range 6 {
			as, err := queryName(ctx, l.addr[asker], "www.site.test."+group.ID(pub)+".localhost.")
			if err != nil || len(as) == 0 {
				t.Fatalf("%s's DNS for the group site: %v %v", asker, as, err)
			}
			for _, a := range as {
				seen[a] = true
				if !slices.Contains(memberIPs, a) {
					t.Errorf("%s's DNS answered %s (%s) for the group site, not a member", asker, a, byIP[a])
				}
			}
		}
		if len(seen) < 2 {
			t.Errorf("%s's DNS named only %v for the group site", asker, seen)
		}
	}
	if resp, _, err := nodes["D"].get(ctx, "www.site.test", "/"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("outsider D and the custom domain: %v %v", resp, err)
	}
}

// testkitEventually polls cond until it holds or ctx ends.
func testkitEventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("not before the deadline: %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
