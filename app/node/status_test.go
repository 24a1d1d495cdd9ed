package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// Recent requests on the status page and in /api/status name the URL
// without its query: queries carry sessions and tokens.
func TestStatusShowsRecentRequestsWithoutQuery(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "page")
	}))
	defer origin.Close()
	n := startNode(t, testConfig(t))
	host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"
	if resp, body := coralGet(t, n, host, "/account/page?session=alice-secret#frag"); resp.StatusCode != 200 || body != "page" {
		t.Fatalf("visit: %d %q", resp.StatusCode, body)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + n.Addrs().Control + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// The trace is recorded as the response completes, just after the
	// visitor has read it.
	testkit.Eventually(t, 10*time.Second, "the request in /api/status", func() bool {
		_, b := get("/api/status")
		return strings.Contains(b, "/account/page")
	})
	for _, path := range []string{"/api/status", "/"} {
		code, b := get(path)
		if code != 200 || !strings.Contains(b, "/account/page") {
			t.Fatalf("GET %s: %d, recent request missing:\n%s", path, code, b)
		}
		if strings.Contains(b, "alice-secret") || strings.Contains(b, "session=") {
			t.Fatalf("GET %s shows the query string:\n%s", path, b)
		}
	}
}

func TestWithoutQuery(t *testing.T) {
	for in, want := range map[string]string{
		"http://a.example/p?q=1":       "http://a.example/p",
		"http://a.example/p#x?y":       "http://a.example/p",
		"http://a.example/p":           "http://a.example/p",
		"http://a.example/?":           "http://a.example/",
		"http://a.example:8080/a/b?c?": "http://a.example:8080/a/b",
	} {
		if got := withoutQuery(in); got != want {
			t.Errorf("withoutQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
