package groupstest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
)

func proxyIP(i int) string { return fmt.Sprintf("127.0.0.%d", 31+i) }

func coral(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("coral %v: %v\n%s", args, err, stderr)
	}
	return string(out)
}

// Four nodes, three of them in a group: the owner makes the group with the
// commands, a new version published on one member reaches the others; a
// member and the outsider alike serve www.site.test (and its Coralized
// name) from the origin the manifest names, never the public name; DNS
// answers the site's CNAME target with the members' proxies only.
func TestSiteGroupEndToEnd(t *testing.T) {
	var asked []string
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Host)
		io.WriteString(w, "the site's own page")
	}))
	defer origin.Close()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, manifest, signed := filepath.Join(dir, "group.key"), filepath.Join(dir, "group.json"), filepath.Join(dir, "group.signed")
	lines := coral(t, bin, "group", "init", "-name", "test group", "-key", key, "-out", manifest, "-signed", signed,
		"-site", "www.site.test="+origin.URL)

	c := cluster.StartT(t, 90*time.Second, cluster.Options{
		Nodes: 4, Binary: bin, Dir: t.TempDir(), MinPeers: 3,
		HTTP: func(i int) string { return fmt.Sprintf("listen = %q\n", proxyIP(i)+":0") },
		Extra: func(i int) string {
			extra := "[cache]\nallow_private_origins = true\n"
			if i < 3 {
				extra += lines
			}
			return extra
		},
	})

	raw, _ := os.ReadFile(manifest)
	m, err := group.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Serial = 2
	for _, n := range c.Nodes[:3] {
		m.Members = append(m.Members, group.Member{Peer: n.PeerID, UploadMbps: 10})
	}
	m.Members[0].Sites = []string{"www.site.test"}
	writeJSON(t, manifest, m)
	// The cluster's control listeners are on ephemeral ports the config
	// does not name, so the signed file goes to node 0 as -publish sends it.
	coral(t, bin, "group", "sign", "-key", key, "-out", signed, manifest)
	publish(t, c.Nodes[0], signed)
	for _, n := range c.Nodes[1:3] {
		testkit.Eventually(t, 30*time.Second, "the new manifest at "+n.PeerID, func() bool {
			st, err := n.Status(context.Background())
			return err == nil && len(st.Groups) == 1 && st.Groups[0].Serial == 2
		})
	}

	for _, n := range c.Nodes[1:3] {
		for _, host := range []string{"www.site.test", "www.site.test.localhost"} {
			if code, body := visit(t, n, host); code != 200 || body != "the site's own page" {
				t.Errorf("node %d, Host %s: %d %q", n.Index, host, code, body)
			}
		}
	}
	if code, _ := visit(t, c.Nodes[3], "www.site.test"); code != 400 {
		t.Errorf("a node outside the group served the bare custom domain: %d", code)
	}
	// The CNAME target carries the group's ID: the outsider learns the
	// manifest from the directory and serves and answers that name.
	qualified := "www.site.test." + group.ID(mustKey(t, lines)) + ".localhost"
	testkit.Eventually(t, 30*time.Second, "the outsider serving the CNAME target", func() bool {
		code, body := visit(t, c.Nodes[3], qualified)
		return code == 200 && body == "the site's own page"
	})
	for _, a := range answers(t, c.Nodes[3], qualified) {
		if !slices.Contains([]string{proxyIP(0), proxyIP(1), proxyIP(2)}, a) {
			t.Errorf("the outsider's DNS answered %s for the CNAME target, not a member", a)
		}
	}
	for _, h := range asked {
		if strings.Contains(h, "site.test") {
			t.Errorf("the origin was asked for the public name %q", h)
		}
	}
	members := []string{proxyIP(0), proxyIP(1), proxyIP(2)}
	for _, n := range c.Nodes[:3] {
		for _, a := range answers(t, n, "www.site.test.localhost") { // the bare form: members only
			if !slices.Contains(members, a) {
				t.Errorf("node %d's DNS answered %s for the group site, not a member", n.Index, a)
			}
		}
	}
}

// mustKey reads the group key from `coral group init`'s [[groups]] lines.
func mustKey(t *testing.T, lines string) ed25519.PublicKey {
	t.Helper()
	for _, l := range strings.Split(lines, "\n") {
		if v, ok := strings.CutPrefix(l, "key = "); ok {
			k, err := group.ParsePublicKey(strings.Trim(v, `"`))
			if err != nil {
				t.Fatal(err)
			}
			return k
		}
	}
	t.Fatalf("no key in %q", lines)
	return nil
}

func writeJSON(t *testing.T, path string, m group.Manifest) {
	t.Helper()
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func publish(t *testing.T, node *cluster.Node, file string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := node.ControlDo(context.Background(), http.MethodPost, "/api/groups/manifest", bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
}

func visit(t *testing.T, node *cluster.Node, host string) (int, string) {
	t.Helper()
	resp, body, err := node.Get(context.Background(), host, "/page")
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// answers is the set of proxies node's DNS hands out over a few queries.
func answers(t *testing.T, node *cluster.Node, name string) []string {
	t.Helper()
	out, err := node.Addresses(name, 6)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("node %d's DNS gave no answer for %s", node.Index, name)
	}
	return out
}

// A new manifest that moves a site to another origin takes effect at once
// for every name of the site, on a node that was answering it from its
// in-memory hot cache: the next visitor gets the new origin's page, not the
// old origin's copy until it goes stale (both are fresh for an hour).
func TestNewOriginReplacesHotCopies(t *testing.T) {
	serve := func(page string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=3600")
			io.WriteString(w, page)
		}))
	}
	oldOrigin, newOrigin := serve("the old origin's page"), serve("the new origin's page")
	defer oldOrigin.Close()
	defer newOrigin.Close()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, manifest, signed := filepath.Join(dir, "group.key"), filepath.Join(dir, "group.json"), filepath.Join(dir, "group.signed")
	lines := coral(t, bin, "group", "init", "-name", "moving site", "-key", key, "-out", manifest, "-signed", signed,
		"-site", "www.site.test="+oldOrigin.URL)
	c := cluster.StartT(t, 60*time.Second, cluster.Options{
		Nodes: 1, Binary: bin, Dir: t.TempDir(),
		HTTP:  func(i int) string { return fmt.Sprintf("listen = %q\n", proxyIP(i)+":0") },
		Extra: func(int) string { return "[cache]\nallow_private_origins = true\n" + lines },
	})
	node := c.Nodes[0]
	names := []string{"www.site.test", "WWW.site.test", "www.site.test.localhost", "www.site.test." + group.ID(mustKey(t, lines)) + ".localhost"}
	for _, host := range names {
		for range 3 { // a miss, a hit that fills the hot cache, a hot hit
			if code, body := visit(t, node, host); code != 200 || body != "the old origin's page" {
				t.Fatalf("Host %s before the move: %d %q", host, code, body)
			}
		}
	}

	raw, _ := os.ReadFile(manifest)
	m, err := group.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Serial, m.Sites[0].Origin = 2, newOrigin.URL
	writeJSON(t, manifest, m)
	coral(t, bin, "group", "sign", "-key", key, "-out", signed, manifest)
	publish(t, node, signed) // answers once the manifest is in force
	for _, host := range names {
		if code, body := visit(t, node, host); code != 200 || body != "the new origin's page" {
			t.Errorf("Host %s after the move: %d %q", host, code, body)
		}
	}
}
