package cooptest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/proxy"
)

// A flash crowd meets a slow DSHT: every DSHT RPC is delayed by seconds
// (injected in front of the DSHT's network), so lookups and the regular
// put+get time out. The crowd must not fall back to the origin together:
// nodes settle who downloads with one put+get at the root their routing
// tables name and fetch from that node, and the origin sees at most twice
// as many requests as there are files.
func TestSlowDSHTCrowdSparesOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("20 in-process nodes with seconds of injected DSHT delay: not in -short")
	}
	const nodes, files = 20, 3
	var delay atomic.Int64
	nw := newNetwork(t, nodes, netOptions{
		rtt:  func(a, b int) time.Duration { return time.Duration(delay.Load()) },
		coop: func(c *coop.Config) { c.PutGet = true }, // the default config's put_get
	})

	var mu sync.Mutex
	requests := map[string]int{}
	bodies := map[string][]byte{}
	for f := range files {
		bodies[fmt.Sprintf("/f%d", f)] = bytes.Repeat([]byte(fmt.Sprintf("slow-dsht-file-%d;", f)), 20000)
	}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.URL.Path]++
		mu.Unlock()
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		time.Sleep(500 * time.Millisecond) // an origin under load: downloads overlap the crowd
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(body)
	}))
	t.Cleanup(origin.Close)

	delay.Store(int64(2 * time.Second))
	var wg sync.WaitGroup
	errs := make(chan error, nodes*files)
	for _, nd := range nw.nodes {
		for path, want := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := nd.fetch(t, origin.URL+path, proxy.DebugHeader, "1")
				if r.cache() != proxy.CachePeer {
					t.Logf("%s %s: %s: %s", nd.name, path, r.cache(), r.trace())
				}
				if r.err != nil || r.status != http.StatusOK || !bytes.Equal(r.body, want) {
					errs <- fmt.Errorf("%s %s: status %d, %d bytes, err %v", nd.name, path, r.status, len(r.body), r.err)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range requests {
		total += n
	}
	var near, spread uint64
	for _, nd := range nw.nodes {
		st := nd.coop.Stats()
		near += st.NearTestAndSets
		spread += st.SpreadFallbacks
	}
	t.Logf("origin requests %d for %d files (%v); near put+gets %d, spread fallbacks %d", total, files, requests, near, spread)
	if total > 2*files {
		t.Errorf("origin got %d requests for %d files (want ≤ %d): the crowd fell back together", total, files, 2*files)
	}
}

// Two nodes race for one object on the slow-DSHT path (their lookups time
// out) with peer caches that share no node: while they joined, each heard
// only from its own half of the network (in the 100-node crowd each node had
// heard from about 60 of the 99 others at the global level). Their near
// put+gets name different roots; storing there, both meet nobody and both
// go to the origin. The near put+get first asks its closest node which
// nodes it knows nearer the key, so both store at the same root and the
// origin sees one request.
func TestRacersWithDisjointViewsMeetAtOneRoot(t *testing.T) {
	const nodes = 12 // racers 0 and 1; 2-6 heard only by racer 0, 7-11 only by racer 1
	side := func(i int) int {
		if i == 0 || i >= 2 && i < 7 {
			return 0
		}
		return 1
	}
	var cut atomic.Bool
	cut.Store(true)
	nw := newNetwork(t, nodes, netOptions{
		rtt: func(a, b int) time.Duration {
			if cut.Load() && (a < 2 || b < 2) && side(a) != side(b) {
				return -1
			}
			return 0
		},
		coop: func(c *coop.Config) {
			c.PutGet = true
			c.LookupTimeout = time.Nanosecond // the lookup times out: the near put+get decides
		},
	})
	cut.Store(false)

	var requests atomic.Int32
	body := bytes.Repeat([]byte("disjoint-views;"), 20000)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		time.Sleep(300 * time.Millisecond) // the download overlaps the other racer's test
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(body)
	}))
	t.Cleanup(origin.Close)

	results := make(chan result, 2)
	for _, nd := range nw.nodes[:2] {
		go func() { results <- nd.fetch(t, origin.URL+"/one", proxy.DebugHeader, "1") }()
	}
	for range 2 {
		r := recv(t, "a racer's response", results)
		if r.err != nil || r.status != http.StatusOK || !bytes.Equal(r.body, body) {
			t.Fatalf("racer: status %d, %d bytes, err %v", r.status, len(r.body), r.err)
		}
		t.Logf("%s: %s", r.cache(), r.trace())
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("origin got %d requests for one object: the racers' near put+gets did not meet", n)
	}
}
