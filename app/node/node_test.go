package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/testkit"
)

// testConfig is a node bound to loopback ephemeral ports in a temp dir.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Control.Listen = "127.0.0.1:0"
	cfg.DNS.Listen = "127.0.0.1:0"
	cfg.Cache.AllowPrivateOrigins = true
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.P2P.MDNS = false
	cfg.P2P.NATPortMap = false
	return cfg
}

func startNode(t *testing.T, cfg config.Config) *Node {
	t.Helper()
	n, err := New(cfg, Options{Version: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func coralGet(t *testing.T, n *Node, host, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// One node from config: the proxy caches, the control listener reports it,
// and changes need the token.
func TestNodeServesAndReports(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "hello from the origin")
	}))
	defer origin.Close()
	n := startNode(t, testConfig(t))
	host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"

	resp, body := coralGet(t, n, host, "/x")
	if resp.StatusCode != 200 || body != "hello from the origin" || resp.Header.Get("X-Coral-Cache") != "MISS" {
		t.Fatalf("first: %d %q %q", resp.StatusCode, resp.Header.Get("X-Coral-Cache"), body)
	}
	if via := resp.Header.Get("Via"); !strings.Contains(via, "coral-") {
		t.Errorf("Via = %q", via)
	}
	resp, body = coralGet(t, n, host, "/x")
	if resp.Header.Get("X-Coral-Cache") != "HIT" || body != "hello from the origin" {
		t.Fatalf("second: %q %q", resp.Header.Get("X-Coral-Cache"), body)
	}
	if hits.Load() != 1 {
		t.Errorf("origin hits = %d", hits.Load())
	}
	resp, _ = coralGet(t, n, "www.example.com", "/")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("foreign Host: %d, want 400 (not an open proxy)", resp.StatusCode)
	}

	ctl := "http://" + n.Addrs().Control
	var st control.Status
	// A request's trace is filed as its handler returns, which may be just
	// after the visitor has the body: poll briefly for it.
	testkit.Eventually(t, 5*time.Second, "both requests' traces filed", func() bool {
		r, err := http.Get(ctl + "/api/status")
		if err != nil {
			t.Fatal(err)
		}
		st = control.Status{}
		json.NewDecoder(r.Body).Decode(&st)
		r.Body.Close()
		return len(st.Recent) >= 2
	})
	if st.Proxy.Hits != 1 || st.Proxy.Misses != 1 || st.Cache.Objects != 1 || st.P2P == nil || st.P2P.PeerID == "" || st.DSHT == nil {
		t.Errorf("status: %+v", st)
	}
	if len(st.Recent) == 0 || !strings.Contains(st.Recent[0].URL, "/x") || st.Recent[0].Path == "" {
		t.Errorf("recent requests not shown with their path: %+v", st.Recent)
	}

	r, err := http.Get(ctl + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), st.NodeID) {
		t.Errorf("status page lacks pictures or node id")
	}

	r, err = http.Get(ctl + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(metrics), "coral_proxy_hits_total 1") {
		t.Errorf("metrics lack the hit counter")
	}

	put := func(token string) int {
		req, _ := http.NewRequest("POST", ctl+"/api/dsht/put", strings.NewReader(`{"key":"k","value":"v","ttl":"1m"}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusBadGateway && !strings.Contains(string(b), "dsht") {
			t.Errorf("put error does not say what failed: %s", b)
		}
		return resp.StatusCode
	}
	if code := put(""); code != http.StatusUnauthorized {
		t.Errorf("change without token: %d, want 401", code)
	}
	if code := put("wrong-token-wrong-token"); code != http.StatusUnauthorized {
		t.Errorf("change with a wrong token: %d, want 401", code)
	}
	tok, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "control.token"))
	if err != nil {
		t.Fatal(err)
	}
	// With the token the request reaches the DSHT, which on a lone node
	// says clearly that nobody else holds the value.
	if code := put(strings.TrimSpace(string(tok))); code != http.StatusBadGateway {
		t.Errorf("change with the token on a lone node: %d, want 502 from the DSHT", code)
	}
}

// The cache and the node's identity survive a restart.
func TestNodeRestartKeepsCacheAndIdentity(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		io.WriteString(w, "persistent")
	}))
	defer origin.Close()
	cfg := testConfig(t)
	host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"

	n1, err := New(cfg, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	coralGet(t, n1, host, "/p")
	id := n1.nodeID
	n1.Close()

	n2 := startNode(t, cfg)
	resp, body := coralGet(t, n2, host, "/p")
	if resp.Header.Get("X-Coral-Cache") != "HIT" || body != "persistent" || hits.Load() != 1 {
		t.Errorf("after restart: %q %q, origin hits %d", resp.Header.Get("X-Coral-Cache"), body, hits.Load())
	}
	if n2.nodeID != id {
		t.Errorf("node id changed across restart: %s -> %s", id, n2.nodeID)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
