package groupstest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/miekg/dns"
)

// pathsOrigin is an origin that answers with its page and records the
// paths it was asked for.
type pathsOrigin struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newPathsOrigin(t *testing.T, page string) *pathsOrigin {
	o := &pathsOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.paths = append(o.paths, r.URL.Path)
		o.mu.Unlock()
		io.WriteString(w, page)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *pathsOrigin) asked(path string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Contains(" "+strings.Join(o.paths, " ")+" ", " "+path+" ")
}

// siteGroup is a group made with `coral group init`: its files and the
// [[groups]] lines members add to their configs.
type siteGroup struct {
	key, manifest, signed, lines string
	id                           string
}

func initGroup(t *testing.T, bin, name string, sites ...string) siteGroup {
	t.Helper()
	dir := t.TempDir()
	g := siteGroup{key: filepath.Join(dir, "group.key"), manifest: filepath.Join(dir, "group.json"), signed: filepath.Join(dir, "group.signed")}
	args := []string{"group", "init", "-name", name, "-key", g.key, "-out", g.manifest, "-signed", g.signed}
	for _, s := range sites {
		args = append(args, "-site", s)
	}
	g.lines = coral(t, bin, args...)
	g.id = group.ID(mustKey(t, g.lines))
	return g
}

// A node in groups Y (www.site.test, the genuine site) and X: X's key
// holder publishes a manifest that lists www.site.test too, with X's own
// origin, while the node serves the site from its hot cache. From then on
// the node serves that name from neither origin (409 naming both groups,
// DNS SERVFAIL), keeps serving each group's self-certifying names from its
// own origin, and its status says what conflicts; so again after a
// restart. A node in Y only still serves the site from Y's origin.
func TestDisputedNameServedByNeither(t *testing.T) {
	genuine, hijacker := newPathsOrigin(t, "the genuine site"), newPathsOrigin(t, "the hijacker")
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	y := initGroup(t, bin, "Y", "www.site.test="+genuine.URL)
	x := initGroup(t, bin, "X", "blog.x.test="+hijacker.URL)
	c := cluster.StartT(t, 90*time.Second, cluster.Options{
		Nodes: 2, Binary: bin, Dir: t.TempDir(),
		HTTP: func(i int) string { return fmt.Sprintf("listen = %q\n", proxyIP(i)+":0") },
		Extra: func(i int) string {
			if i == 0 {
				return "[cache]\nallow_private_origins = true\n" + y.lines + x.lines
			}
			return "[cache]\nallow_private_origins = true\n" + y.lines
		},
	})
	both := c.Nodes[0]
	republish(t, bin, y, func(m *group.Manifest) { // both nodes serve Y: the DNS answers its site with them
		m.Members = []group.Member{{Peer: c.Nodes[0].PeerID, UploadMbps: 10}, {Peer: c.Nodes[1].PeerID, UploadMbps: 10}}
	}, both)
	if rc := rcode(t, both.Process, "www.site.test.localhost"); rc != dns.RcodeSuccess {
		t.Fatalf("DNS for www.site.test before X's claim: %s", dns.RcodeToString[rc])
	}
	for range 3 { // a miss, a hit that fills the hot cache, a hot hit
		if code, body := get(t, both.Process, "www.site.test", "/before"); code != 200 || body != "the genuine site" {
			t.Fatalf("www.site.test before X's claim: %d %q", code, body)
		}
	}

	republish(t, bin, x, func(m *group.Manifest) {
		m.Sites = append(m.Sites, group.Site{Host: "www.site.test", Origin: hijacker.URL, Weight: 1})
	}, both)

	checkNeither(t, both.Process, genuine, hijacker, y.id, x.id)
	if code, body := get(t, c.Nodes[1].Process, "www.site.test", "/y-only"); code != 200 || body != "the genuine site" {
		t.Errorf("the node in Y only: %d %q", code, body)
	}

	if err := both.Terminate(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	again := cluster.Run(t, exec.Command(bin, "serve", "-config", both.Config), nil)
	checkNeither(t, again, genuine, hijacker, y.id, x.id)
}

// checkNeither asserts what visitors, resolvers and the volunteer see of
// the disputed www.site.test on p.
func checkNeither(t *testing.T, p *cluster.Process, genuine, hijacker *pathsOrigin, idY, idX string) {
	t.Helper()
	for _, host := range []string{"www.site.test", "www.site.test.localhost"} {
		code, body := get(t, p, host, "/disputed")
		if code != http.StatusConflict || !strings.Contains(body, idY) || !strings.Contains(body, idX) {
			t.Errorf("Host %s: %d %q, want 409 naming groups %s and %s", host, code, body, idY, idX)
		}
	}
	if genuine.asked("/disputed") || hijacker.asked("/disputed") {
		t.Error("an origin was fetched for the disputed name")
	}
	for host, want := range map[string]string{
		"www.site.test." + idY + ".localhost": "the genuine site",
		"www.site.test." + idX + ".localhost": "the hijacker",
		"blog.x.test":                         "the hijacker",
	} {
		if code, body := get(t, p, host, "/own"); code != 200 || body != want {
			t.Errorf("Host %s: %d %q, want %q", host, code, body, want)
		}
	}
	if rc := rcode(t, p, "www.site.test.localhost"); rc != dns.RcodeServerFailure {
		t.Errorf("DNS for the disputed name: %s, want SERVFAIL", dns.RcodeToString[rc])
	}
	st, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conflicts := 0
	for _, g := range st.Groups {
		for _, s := range g.Sites {
			if s.Host == "www.site.test" && strings.Contains(s.Conflict, idY) && strings.Contains(s.Conflict, idX) {
				conflicts++
			}
		}
	}
	if conflicts != 2 {
		t.Errorf("the status names the conflict under %d groups, want 2: %+v", conflicts, st.Groups)
	}
}

// republish signs g's next manifest, as edit changes it, with `coral group
// sign` and publishes it on node (it answers once the manifest is in force).
func republish(t *testing.T, bin string, g siteGroup, edit func(*group.Manifest), node *cluster.Node) {
	t.Helper()
	raw, _ := os.ReadFile(g.manifest)
	m, err := group.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Serial++
	edit(&m)
	writeJSON(t, g.manifest, m)
	coral(t, bin, "group", "sign", "-key", g.key, "-out", g.signed, g.manifest)
	publish(t, node, g.signed)
}

func get(t *testing.T, p *cluster.Process, host, path string) (int, string) {
	t.Helper()
	resp, body, err := p.Get(context.Background(), host, path)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// rcode is p's DNS server's answer code for an A query for name over UDP.
func rcode(t *testing.T, p *cluster.Process, name string) int {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, p.DNS)
	if err != nil {
		t.Fatal(err)
	}
	return r.Rcode
}
