package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Hits the proxy answers on the connection (its fast path) pass the same
// gate as the rest: a paused node sends the visitor of a hot object the
// resting page, and every byte of a hot hit counts for its site.
func TestFastPathHitsPassTheGate(t *testing.T) {
	body := strings.Repeat("h", 1024)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, body)
	}))
	defer origin.Close()
	n := startNode(t, testConfig(t))
	host := originHost(origin)
	// The miss, the hit that fills the hot cache, then hits on the
	// connection the client keeps alive.
	for i := range 5 {
		resp, got := coralGet(t, n, host, "/a")
		if resp.StatusCode != 200 || got != body {
			t.Fatalf("request %d: %d, %d bytes", i, resp.StatusCode, len(got))
		}
	}
	if sent := budgetOf(t, n).Sites["127.0.0.1"].Sent; sent < 5*int64(len(body)) {
		t.Errorf("site counted %d bytes sent for five 1 KiB responses", sent)
	}
	if code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": true}`); code != 200 {
		t.Fatalf("pause: %d %s", code, b)
	}
	resp, got := coralGet(t, n, host, "/a")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(got, origin.URL+"/a") {
		t.Errorf("hot object while paused: %d\n%s", resp.StatusCode, got)
	}
	controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": false}`)
	if resp, got := coralGet(t, n, host, "/a"); resp.StatusCode != 200 || got != body || resp.Header.Get("X-Coral-Cache") != "HIT" {
		t.Errorf("after resuming: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(got))
	}
}
