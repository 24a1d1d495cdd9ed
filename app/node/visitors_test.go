package node

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func originHost(origin *httptest.Server) string {
	return strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"
}

// While paused, visitors of an origin that asked for it are sent home;
// others get 503, Retry-After and a link to the origin.
func TestPausedNodeSendsVisitorsHomeOr503(t *testing.T) {
	home := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Coral-Control", "redirect-home")
		io.WriteString(w, "home page")
	}))
	defer home.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain page")
	}))
	defer plain.Close()
	cfg := testConfig(t)
	n := startNode(t, cfg)
	for _, o := range []*httptest.Server{home, plain} {
		if resp, _ := coralGet(t, n, originHost(o), "/a"); resp.StatusCode != 200 {
			t.Fatalf("before pausing: %d", resp.StatusCode)
		}
	}
	if code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": true}`); code != 200 {
		t.Fatalf("pause: %d %s", code, b)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(host, path string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+path, nil)
		req.Host = host
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, _ := get(originHost(home), "/b?x=1")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != home.URL+"/b?x=1" {
		t.Errorf("redirect-home origin while paused: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := get(originHost(plain), "/b")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, plain.URL+"/b") {
		t.Errorf("plain origin while paused: %d Retry-After %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": false}`)
	if resp, body := get(originHost(plain), "/a"); resp.StatusCode != 200 || body != "plain page" {
		t.Errorf("after resuming: %d %q", resp.StatusCode, body)
	}
	// A node restarted while paused still sends the home origin's visitors
	// home: no response passes to remind it.
	controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": true}`)
	n.Close()
	n = startNode(t, cfg)
	if resp, _ = get(originHost(home), "/c"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != home.URL+"/c" {
		t.Errorf("redirect-home after a restart while paused: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The upload cap holds a visitor's download to the cap, and its bytes are
// counted as the origin site's.
func TestUploadCapShapesVisitors(t *testing.T) {
	const size = 512 << 10
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(bytes.Repeat([]byte("x"), size))
	}))
	defer origin.Close()
	cfg := testConfig(t)
	cfg.Bandwidth.Upload = 256 << 10
	n := startNode(t, cfg)
	start := time.Now()
	resp, body := coralGet(t, n, originHost(origin), "/big")
	took := time.Since(start)
	if resp.StatusCode != 200 || len(body) != size {
		t.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
	}
	// 512 KiB at 256 KiB/s cannot arrive in much under 2 s (one small burst).
	if took < 1800*time.Millisecond {
		t.Errorf("512 KiB under a 256 KiB/s cap arrived in %s", took)
	}
	if got := budgetOf(t, n).Sites["127.0.0.1"].Sent; got < size {
		t.Errorf("site 127.0.0.1 counted %d bytes sent, want at least %d", got, size)
	}
}

// The download cap holds origin downloads, counted as the site's traffic.
func TestDownloadCapShapesOriginFetches(t *testing.T) {
	const size = 512 << 10
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("y"), size))
	}))
	defer origin.Close()
	cfg := testConfig(t)
	cfg.Bandwidth.Download = 256 << 10
	n := startNode(t, cfg)
	start := time.Now()
	resp, body := coralGet(t, n, originHost(origin), "/big")
	if took := time.Since(start); resp.StatusCode != 200 || len(body) != size || took < 1800*time.Millisecond {
		t.Fatalf("%d, %d bytes in %s under a 256 KiB/s download cap", resp.StatusCode, len(body), took)
	}
	if got := budgetOf(t, n).Sites["127.0.0.1"].Received; got < size {
		t.Errorf("counted %d bytes received, want at least %d", got, size)
	}
}
