package cooptest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
)

// Two nodes each find the other's "downloading" referral and fetch from
// each other, neither having a header to send until the other sends one.
// In the 100-node crowd this came of a regular put+get and a near put+get
// (or two near ones) storing at different nodes, each after the other's
// value at one of them: whole clusters then waited 18-24 s for headers
// ("downloading: no response") before the global root or the election
// ended the wait. A node asked for an object by a peer its own download
// waits on answers "not found" at once, so the asker turns elsewhere.
func TestDownloadersWaitingOnEachOtherTurnElsewhere(t *testing.T) {
	nw := newNetwork(t, 4, netOptions{
		// Slow enough that both requests are under way before either
		// node's lookup returns the other's referral.
		rtt:  func(a, b int) time.Duration { return 200 * time.Millisecond },
		coop: func(c *coop.Config) { c.PutGet = true },
	})
	a, b := nw.nodes[0], nw.nodes[1]

	var requests atomic.Int32
	body := bytes.Repeat([]byte("waiting-on-each-other;"), 20000)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(body)
	}))
	t.Cleanup(origin.Close)
	u := origin.URL + "/each-other"

	// The referrals the two test-and-sets left: each names the other.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, nd := range []*node{a, b} {
		ref := coop.EncodeReferral(coop.Referral{Peer: nd.peerID(), State: coop.StateDownloading})
		if err := nw.nodes[2].dht.Put(ctx, dsht.ID(object.KeyOf(u)), ref, time.Minute); err != nil {
			t.Fatalf("planting %s's referral: %v", nd.name, err)
		}
	}

	results := make([]chan result, 2)
	for i, nd := range []*node{a, b} {
		results[i] = make(chan result, 1)
		go func() { results[i] <- nd.fetch(t, u, proxy.DebugHeader, "1") }()
	}
	for i, nd := range []*node{a, b} {
		r := recv(t, nd.name+"'s response", results[i])
		if r.err != nil || r.status != http.StatusOK || !bytes.Equal(r.body, body) {
			t.Fatalf("%s: status %d, %d bytes, err %v: not the object", nd.name, r.status, len(r.body), r.err)
		}
		t.Logf("%s %s: %s", nd.name, r.cache(), r.trace())
		if strings.Contains(r.trace(), "no response") {
			t.Errorf("%s waited for a header that could not come (the other node was waiting on it): %s", nd.name, r.trace())
		}
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("origin requests %d: want one for both nodes", n)
	}
}
