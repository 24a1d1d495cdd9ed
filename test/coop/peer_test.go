package cooptest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/proxy"
)

// A copy fetched from a peer carries the origin's headers and the age it
// has accumulated, and the request's trace names the peer it came from.
func TestPeerCopyKeepsHeadersAndAge(t *testing.T) {
	nw := newNetwork(t, 3, netOptions{})
	a, b := nw.nodes[0], nw.nodes[1]
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		// As if an upstream cache had held it for 100 s already.
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Age", "100")
		w.Header().Set("ETag", `"e1"`)
		w.Header().Set("X-Origin", "yes")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the origin")
	}))
	t.Cleanup(origin.Close)
	u := origin.URL + "/page.txt"

	r := a.fetch(t, u)
	if r.err != nil || r.cache() != proxy.CacheMiss || string(r.body) != "hello from the origin" {
		t.Fatalf("first visitor: %v %s %q", r.err, r.cache(), r.body)
	}
	eventually(t, 20*time.Second, "a's copy to be announced", func() bool {
		return hasReferral(b.referrals(u, 2, 0), a.peerID(), coop.StateCached)
	})
	r = b.fetch(t, u, proxy.DebugHeader, "1")
	t.Logf("%s: %s", proxy.TraceHeader, r.trace())
	if r.err != nil || r.cache() != proxy.CachePeer || string(r.body) != "hello from the origin" {
		t.Fatalf("second visitor: %v %s %q (trace %q)", r.err, r.cache(), r.body, r.trace())
	}
	for k, want := range map[string]string{"X-Origin": "yes", "Etag": `"e1"`, "Content-Type": "text/plain", "Cache-Control": "max-age=3600"} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q through the peer, want %q", k, got, want)
		}
	}
	if age, err := strconv.Atoi(r.header.Get("Age")); err != nil || age < 100 || age > 200 {
		t.Errorf("Age through the peer = %q, want the upstream 100 s plus the little time since", r.header.Get("Age"))
	}
	if tr := r.trace(); !strings.Contains(tr, "try "+a.short()) || !strings.Contains(tr, "from peer "+a.short()+" L") {
		t.Errorf("trace %q does not show the copy coming from %s", tr, a.short())
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin requests = %d, want 1", n)
	}
	// b stored it: a hit now, still with the origin's header and the age.
	r = b.fetch(t, u)
	if r.cache() != proxy.CacheHit || r.header.Get("X-Origin") != "yes" {
		t.Errorf("b's stored copy: %s %v", r.cache(), r.header)
	}
	if age, _ := strconv.Atoi(r.header.Get("Age")); age < 100 {
		t.Errorf("b's stored copy has Age %q, want at least 100", r.header.Get("Age"))
	}
}
