package node

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/group"
	"github.com/miekg/dns"
)

// recordingOrigin is an origin server that says whose it is and records
// the paths it was asked for.
type recordingOrigin struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
}

func newRecordingOrigin(t *testing.T, content string) *recordingOrigin {
	o := &recordingOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.paths = append(o.paths, r.URL.Path)
		o.mu.Unlock()
		io.WriteString(w, content)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *recordingOrigin) asked(path string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Contains(strings.Join(o.paths, " "), path)
}

// dnsAsk sends one A query for name to n's DNS server over UDP.
func dnsAsk(t *testing.T, n *Node, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	r, _, err := new(dns.Client).Exchange(m, n.Addrs().DNS)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The reviewer's hijack: a node is in groups Y (www.site.org, the genuine
// site) and X, whose key holder lists www.site.org too, with its own
// origin, and Y's self-certifying name www.site.org.<Y> as well. Neither
// origin is fetched for the disputed name, by its public name or its
// Coralized form (409 saying why; DNS SERVFAIL); every group's
// self-certifying names still serve their own origin; the status names the
// conflict and what to do. All of it the same at every start, whichever
// order the config lists the groups in. Once X drops the name, Y's origin
// serves it.
func TestGroupDisputedSiteServedByNeither(t *testing.T) {
	genuine := newRecordingOrigin(t, "the genuine site")
	hijacker := newRecordingOrigin(t, "the hijacker")
	pubY, privY := operatorKeys(t)
	pubX, privX := operatorKeys(t)
	idY, idX := group.ID(pubY), group.ID(pubX)
	cfg := testConfig(t)
	cfg.Groups = []config.Group{configGroup(group.FormatPublicKey(pubY), ""), configGroup(group.FormatPublicKey(pubX), "")}
	n := startNode(t, cfg)
	manifestX := func(serial uint64, hosts ...string) []byte {
		m := group.Manifest{Name: "X", Serial: serial}
		for _, h := range hosts {
			m.Sites = append(m.Sites, group.Site{Host: h, Origin: hijacker.URL, Weight: 1})
		}
		m.Members = []group.Member{{Peer: n.nodeID, UploadMbps: 10}}
		return signManifest(t, m, privX)
	}
	for _, raw := range [][]byte{
		signManifest(t, siteManifest(t, 1, genuine.URL, n.nodeID), privY),
		manifestX(1, "www.site.org", "www.site.org."+idY, "blog.x-group.net"),
	} {
		if code, body := controlDo(t, n, "POST", "/api/groups/manifest", raw); code != 200 {
			t.Fatalf("manifest: %d %s", code, body)
		}
	}
	checkDisputed(t, n, genuine, hijacker, idY, idX)
	n.Close()

	for i, order := range [][]config.Group{cfg.Groups, {cfg.Groups[1], cfg.Groups[0]}, cfg.Groups, {cfg.Groups[1], cfg.Groups[0]}} {
		cfg.Groups = order
		n = startNode(t, cfg)
		t.Logf("start %d", i+2)
		checkDisputed(t, n, genuine, hijacker, idY, idX)
		n.Close()
	}

	n = startNode(t, cfg)
	if code, body := controlDo(t, n, "POST", "/api/groups/manifest", manifestX(2, "blog.x-group.net")); code != 200 {
		t.Fatalf("X drops the name: %d %s", code, body)
	}
	if resp, body := coralGet(t, n, "www.site.org", "/settled"); resp.StatusCode != 200 || body != "the genuine site" {
		t.Errorf("www.site.org once X dropped it: %d %q", resp.StatusCode, body)
	}
	if r := dnsAsk(t, n, "www.site.org.localhost"); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Errorf("DNS for www.site.org once X dropped it: %s", dns.RcodeToString[r.Rcode])
	}
}

// checkDisputed asserts what a visitor, a resolver and the volunteer see
// of the disputed www.site.org on n (see TestGroupDisputedSiteServedByNeither).
func checkDisputed(t *testing.T, n *Node, genuine, hijacker *recordingOrigin, idY, idX string) {
	t.Helper()
	for _, host := range []string{"www.site.org", "www.site.org.localhost", "WWW.site.org:8080"} {
		resp, body := coralGet(t, n, host, "/disputed")
		if resp.StatusCode != http.StatusConflict || !strings.Contains(body, idY) || !strings.Contains(body, idX) {
			t.Errorf("Host %s: %d %q, want 409 naming both groups", host, resp.StatusCode, body)
		}
	}
	if genuine.asked("/disputed") || hijacker.asked("/disputed") {
		t.Error("an origin was fetched for the disputed name")
	}
	for host, want := range map[string]string{
		"www.site.org." + idY + ".localhost":     "the genuine site", // X's listing of it is left out
		"www.site.org." + idX + ".localhost":     "the hijacker",     // X's own name for its claim
		"blog.x-group.net":                       "the hijacker",     // X's undisputed site
		"blog.x-group.net." + idX + ".localhost": "the hijacker",
	} {
		if resp, body := coralGet(t, n, host, "/qualified"); resp.StatusCode != 200 || body != want {
			t.Errorf("Host %s: %d %q, want %q", host, resp.StatusCode, body, want)
		}
	}
	if r := dnsAsk(t, n, "www.site.org.localhost"); r.Rcode != dns.RcodeServerFailure || len(r.Answer) != 0 {
		t.Errorf("DNS for the disputed name: %s with %d answers, want SERVFAIL", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	for _, name := range []string{"www.site.org." + idY + ".localhost", "www.site.org." + idX + ".localhost"} {
		if r := dnsAsk(t, n, name); r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			t.Errorf("DNS for %s: %s", name, dns.RcodeToString[r.Rcode])
		}
	}
	code, body := controlDo(t, n, "GET", "/api/status", nil)
	var st control.Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("/api/status: %d %v", code, err)
	}
	conflicts := 0
	for _, g := range st.Groups {
		for _, s := range g.Sites {
			if s.Host == "www.site.org" {
				conflicts++
				if !strings.Contains(s.Conflict, idY) || !strings.Contains(s.Conflict, idX) || !strings.Contains(s.Conflict, "remove it") {
					t.Errorf("group %s's status of www.site.org: conflict %q", g.ID, s.Conflict)
				}
			} else if s.Conflict != "" {
				t.Errorf("group %s's undisputed %s: conflict %q", g.ID, s.Host, s.Conflict)
			}
		}
	}
	if conflicts != 2 {
		t.Errorf("status lists www.site.org in %d groups, want 2", conflicts)
	}
	warned := false
	for _, e := range st.Events {
		warned = warned || strings.Contains(e.Message, "served by no group")
	}
	if !warned {
		t.Errorf("no warning among the status's events: %+v", st.Events)
	}
	if code, page := controlDo(t, n, "GET", "/", nil); code != 200 || !strings.Contains(page, "Not served: site groups") {
		t.Errorf("status page does not show the conflict: %d", code)
	}
}

// A member group's key holder lists another group's self-certifying name
// (www.site.org.<Z>, Z known from the network-wide directory) as a public
// name of its own: the name still leads to Z's origin, in either form.
func TestGroupPublicNameCannotTakeDirectoryName(t *testing.T) {
	genuine := newRecordingOrigin(t, "the genuine site")
	hijacker := newRecordingOrigin(t, "the hijacker")
	pubZ, privZ := operatorKeys(t)
	pubX, privX := operatorKeys(t)
	idZ := group.ID(pubZ)
	cfg := testConfig(t)
	cfg.Groups = []config.Group{configGroup(group.FormatPublicKey(pubX), "")}
	n := startNode(t, cfg)
	claim := group.Manifest{Name: "X", Serial: 1, Sites: []group.Site{{Host: "www.site.org." + idZ, Origin: hijacker.URL, Weight: 1}}}
	if code, body := controlDo(t, n, "POST", "/api/groups/manifest", signManifest(t, claim, privX)); code != 200 {
		t.Fatalf("X's manifest: %d %s", code, body)
	}
	z := signManifest(t, siteManifest(t, 1, genuine.URL, n.nodeID), privZ)
	if err := n.offerAnnouncement("12D3KooWAnnouncer", group.Announce(group.FormatPublicKey(pubZ), z)); err != nil {
		t.Fatalf("Z's announcement: %v", err)
	}
	for _, host := range []string{"www.site.org." + idZ + ".localhost", "www.site.org." + idZ} {
		if resp, body := coralGet(t, n, host, "/"); resp.StatusCode != 200 || body != "the genuine site" {
			t.Errorf("Host %s: %d %q, want Z's origin", host, resp.StatusCode, body)
		}
	}
	if hijacker.asked("/") {
		t.Error("X's origin was fetched for Z's name")
	}
}
