package cluster

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
)

// buildCoral builds the coral binary once for the package's tests.
func buildCoral(t testing.TB) string {
	t.Helper()
	bin, err := BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func get(t *testing.T, proxyAddr, host, path string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+proxyAddr+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s via %s: %v", host, proxyAddr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, b
}

// Three real coral processes: the first visitor's request goes to the
// origin, the others are served from the first proxy's copy (X-Coral-Cache:
// PEER) and the origin sees exactly one request.
func TestPeersServeEachOthersCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coral processes")
	}
	var originHits atomic.Int64
	body := strings.Repeat("coral cooperative cache ", 4000)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, body)
	}))
	defer origin.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var log LogBuffer
	c, err := Start(ctx, Options{
		Nodes: 3, Binary: buildCoral(t), Dir: t.TempDir(), Log: &log,
		Extra: func(int) string { return "[cache]\nallow_private_origins = true\n" },
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	defer c.Stop()
	// Every node must know the others in its DSHT before the test means anything.
	for _, n := range c.Nodes {
		if _, err := n.waitStatus(ctx, func(st control.Status) bool {
			return st.DSHT != nil && len(st.DSHT.Levels) > 0 && st.DSHT.Levels[0].RoutingSize >= 2
		}); err != nil {
			t.Fatalf("dsht did not fill: %v", err)
		}
	}
	host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"
	resp, b := get(t, c.Nodes[0].HTTP, host, "/page")
	if resp.StatusCode != 200 || string(b) != body || resp.Header.Get("X-Coral-Cache") != "MISS" {
		t.Fatalf("first request: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(b))
	}
	// Node 0 announced its download (put+get) before it went to the origin,
	// so the others find it at once.
	for i := 1; i < len(c.Nodes); i++ {
		resp, b = get(t, c.Nodes[i].HTTP, host, "/page")
		if got := resp.Header.Get("X-Coral-Cache"); got != "PEER" || string(b) != body {
			t.Fatalf("node %d: X-Coral-Cache %q, body ok %v\n%s", i, got, string(b) == body, log.String())
		}
	}
	if n := originHits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}
