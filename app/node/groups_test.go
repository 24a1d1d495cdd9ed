package node

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/group"
	"github.com/miekg/dns"

	"github.com/coralcdn/coral/test/testkit"
)

func siteManifest(t *testing.T, serial uint64, origin string, peers ...string) group.Manifest {
	m := group.Manifest{Name: "small blogs", Serial: serial,
		Sites: []group.Site{{Host: "www.site.org", Origin: origin, Weight: 1}}}
	for _, p := range peers {
		m.Members = append(m.Members, group.Member{Peer: p, UploadMbps: 10, Sites: []string{"www.site.org"}})
	}
	return m
}

func signManifest(t *testing.T, m group.Manifest, priv []byte) []byte {
	t.Helper()
	raw, err := group.Sign(m, priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A group from the config (A) and one joined through the settings API (B):
// a manifest published on A reaches B by gossip; B then serves the custom
// domain (and its Coralized name, the CNAME target) from the manifest's
// origin and answers its DNS; bad manifests are refused with the reason;
// B keeps the group and its manifest across a restart without the network.
func TestGroupJoinGossipServeAndRestart(t *testing.T) {
	var hosts []string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts = append(hosts, r.Host)
		io.WriteString(w, "the site's own content")
	}))
	defer origin.Close()
	pub, priv := operatorKeys(t)
	_, stranger := operatorKeys(t)
	cfgA := testConfig(t)
	cfgA.Groups = append(cfgA.Groups, configGroup(group.FormatPublicKey(pub), ""))
	a := startNode(t, cfgA)
	_, inviteCode := controlDo(t, a, "GET", "/api/invite", nil)
	cfgB := testConfig(t)
	if _, err := Join(cfgB, strings.TrimSpace(inviteCode)); err != nil {
		t.Fatal(err)
	}
	b := startNode(t, cfgB)
	client := &control.Client{BaseURL: "http://" + b.Addrs().Control, Token: b.Token()}
	if err := (&control.Client{BaseURL: client.BaseURL}).JoinGroup(t.Context(), group.FormatPublicKey(pub), nil); err == nil {
		t.Error("joined a group without the token")
	}
	if err := client.JoinGroup(t.Context(), "ed25519:short", nil); err == nil || !strings.Contains(err.Error(), "group key") {
		t.Errorf("bad key: %v", err)
	}
	if err := client.JoinGroup(t.Context(), group.FormatPublicKey(pub), nil); err != nil {
		t.Fatalf("join: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, "the group topic to link A and B", func() bool { return a.groupsStatus()[0].Peers > 0 })

	good := signManifest(t, siteManifest(t, 2, origin.URL, a.nodeID, b.nodeID), priv)
	for _, tc := range []struct {
		name string
		raw  []byte
		code int
	}{
		{"wrong key", signManifest(t, siteManifest(t, 9, origin.URL), stranger), http.StatusBadRequest},
		{"garbage", []byte("\xff garbage"), http.StatusBadRequest},
		{"truncated", good[:50], http.StatusBadRequest},
		{"good", good, http.StatusOK},
		{"equal serial", good, http.StatusConflict},
		{"older serial", signManifest(t, siteManifest(t, 1, origin.URL), priv), http.StatusConflict},
	} {
		if code, body := controlDo(t, a, "POST", "/api/groups/manifest", tc.raw); code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.code)
		}
	}
	testkit.Eventually(t, 20*time.Second, "the manifest at B", func() bool { return b.groupsStatus()[0].Serial == 2 })
	checkServes := func(n *Node) {
		t.Helper()
		qualified := "www.site.org." + group.ID(pub) + ".localhost"
		for _, host := range []string{"www.site.org", "www.site.org.localhost", qualified} {
			if resp, body := coralGet(t, n, host, "/post"); resp.StatusCode != 200 || body != "the site's own content" {
				t.Errorf("Host %s: %d %q", host, resp.StatusCode, body)
			}
		}
		m := new(dns.Msg)
		m.SetQuestion(qualified+".", dns.TypeA)
		if r, _, err := new(dns.Client).Exchange(m, n.Addrs().DNS); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("DNS for the CNAME target: %v %v", r, err)
		}
		st, _ := n.Status(t.Context())
		if len(st.Groups) != 1 || !st.Groups[0].Member || st.Groups[0].Sites[0].CNAME != qualified {
			t.Errorf("status groups: %+v", st.Groups)
		}
	}
	checkServes(b)
	if gs, err := client.Groups(t.Context()); err != nil || len(gs) != 1 || gs[0].Serial != 2 || gs[0].Name != "small blogs" {
		t.Errorf("client.Groups: %+v %v", gs, err)
	}
	for _, h := range hosts {
		if strings.Contains(h, "site.org") {
			t.Errorf("the origin was asked for the public name %q", h)
		}
	}
	// A node in no group learns the group's manifest from the directory:
	// it serves and answers the self-certifying name, not the bare one.
	cfgC := testConfig(t)
	if _, err := Join(cfgC, strings.TrimSpace(inviteCode)); err != nil {
		t.Fatal(err)
	}
	c := startNode(t, cfgC)
	qualified := "www.site.org." + group.ID(pub) + ".localhost"
	testkit.Eventually(t, 20*time.Second, "the directory at the outsider", func() bool {
		resp, body := coralGet(t, c, qualified, "/post")
		return resp.StatusCode == 200 && body == "the site's own content"
	})
	if resp, _ := coralGet(t, c, "www.site.org", "/post"); resp.StatusCode != 400 {
		t.Errorf("outsider and the bare custom domain: %d", resp.StatusCode)
	}
	if _, ok := c.siteMembers("www.site.org." + group.ID(pub)); !ok {
		t.Error("outsider's DNS does not know the group site")
	}
	a.Close()
	b.Close()
	os.Remove(cfgB.Path(joinedFile))
	checkServes(startNode(t, cfgB))
}

// A manifest file in the config that is not the group's stops the start
// with the reason.
func TestGroupConfigManifestRefused(t *testing.T) {
	pub, _ := operatorKeys(t)
	_, stranger := operatorKeys(t)
	cfg := testConfig(t)
	file := filepath.Join(t.TempDir(), "group.signed")
	os.WriteFile(file, signManifest(t, siteManifest(t, 1, "http://origin.site.net"), stranger), 0o600)
	cfg.Groups = append(cfg.Groups, configGroup(group.FormatPublicKey(pub), file))
	if _, err := New(cfg, Options{Version: "test", Logger: quiet}); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Errorf("got %v", err)
	}
}

func configGroup(key, manifest string) config.Group {
	return config.Group{Key: key, Manifest: manifest}
}

// On a member node the group's sites share (1-r)/r of the upload's weight
// by the manifest's weights (public and origin host alike); a [[sites]]
// weight the volunteer set wins; a node that is not a member node gives
// group sites no priority.
func TestGroupSitesPriority(t *testing.T) {
	pub, priv := operatorKeys(t)
	cfg := testConfig(t)
	cfg.GroupsReserve = 0.2
	cfg.Groups = append(cfg.Groups, configGroup(group.FormatPublicKey(pub), ""))
	cfg.Sites = append(cfg.Sites, config.Site{Host: "blog.bob.net", Weight: 7})
	n := startNode(t, cfg)
	m := siteManifest(t, 1, "http://origin.site.net", n.nodeID)
	m.Sites[0].Weight = 3
	m.Sites = append(m.Sites, group.Site{Host: "blog.bob.net", Origin: "http://bob.example.net", Weight: 1})
	if code, body := controlDo(t, n, "POST", "/api/groups/manifest", signManifest(t, m, priv)); code != 200 {
		t.Fatalf("manifest: %d %s", code, body)
	}
	w := n.budgetPolicy(n.settings.Get()).Weights
	for host, want := range map[string]float64{"www.site.org": 3, "origin.site.net": 3, "blog.bob.net": 7} {
		if got := w[host]; got != want {
			t.Errorf("weight of %s: %g, want %g", host, got, want)
		}
	}
	m.Serial, m.Members = 2, nil
	controlDo(t, n, "POST", "/api/groups/manifest", signManifest(t, m, priv))
	if got := n.budgetPolicy(n.settings.Get()).Weights["www.site.org"]; got != 0 {
		t.Errorf("not a member node any more, yet weight %g", got)
	}
}

func startNodeWith(t *testing.T, cfg config.Config, opts Options) *Node {
	t.Helper()
	opts.Version, opts.Logger = "test", quiet
	n, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return n
}

// Each member node publishes its figures to the group: B serves A's site,
// and A's ledger shows B's bytes for that site as contributed by B and
// received by A, with both nodes' upload percentiles.
func TestGroupLedger(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 20000))
	}))
	defer origin.Close()
	pub, priv := operatorKeys(t)
	opts := Options{GroupFigures: 200 * time.Millisecond, RunStateRepublish: time.Second}
	cfgA := testConfig(t)
	cfgA.Groups = append(cfgA.Groups, configGroup(group.FormatPublicKey(pub), ""))
	a := startNodeWith(t, cfgA, opts)
	_, inviteCode := controlDo(t, a, "GET", "/api/invite", nil)
	cfgB := testConfig(t)
	cfgB.Groups = cfgA.Groups
	if _, err := Join(cfgB, strings.TrimSpace(inviteCode)); err != nil {
		t.Fatal(err)
	}
	b := startNodeWith(t, cfgB, opts)
	m := siteManifest(t, 1, origin.URL, a.nodeID, b.nodeID)
	m.Members[1].Sites = nil // the site is A's own
	testkit.Eventually(t, 20*time.Second, "the group topic to link A and B", func() bool { return a.groupsStatus()[0].Peers > 0 })
	if code, body := controlDo(t, a, "POST", "/api/groups/manifest", signManifest(t, m, priv)); code != 200 {
		t.Fatalf("manifest: %d %s", code, body)
	}
	testkit.Eventually(t, 20*time.Second, "the manifest at B", func() bool { return b.groupsStatus()[0].Serial == 1 })
	for i := 0; i < 3; i++ {
		if resp, _ := coralGet(t, b, "www.site.org", fmt.Sprintf("/p%d", i)); resp.StatusCode != 200 {
			t.Fatalf("B serving the site: %d", resp.StatusCode)
		}
	}
	// A's own row gets its time when A next publishes its figures (every
	// GroupFigures), which may come after B's figures arrive.
	testkit.Eventually(t, 20*time.Second, "B's figures and A's own in A's ledger", func() bool {
		l := a.groupsStatus()[0].Ledger
		return len(l) == 2 && l[1].Sites["www.site.org"] >= 60000 && l[1].Contributed >= 60000 && l[0].Received >= 60000 &&
			!l[0].At.IsZero()
	})
	st, _ := a.Status(t.Context())
	if l := st.Groups[0].Ledger; len(l) != 2 || l[0].At.IsZero() || l[1].P95Day < 0 {
		t.Errorf("ledger in /api/status: %+v", l)
	}
}
