package coop

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
)

// nearDSHT is fakeDSHT with the one-round put+get a slow DSHT falls back
// to: meets at the most local level, global at level 0; clustered makes it
// report a level-2 cluster of 5.
type nearDSHT struct {
	*fakeDSHT
	mu            sync.Mutex
	meets, global []dsht.Value
	err           error
	calls         int
	clustered     bool
}

func (n *nearDSHT) PutGetNearAt(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, level int, _ ...dsht.Option) ([]dsht.Value, error) {
	if _, err := DecodeReferral(value); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls++
	if level == 0 {
		return n.global, n.err
	}
	return n.meets, n.err
}

func (n *nearDSHT) Status() dsht.Status {
	if !n.clustered {
		return dsht.Status{}
	}
	return dsht.Status{Levels: []dsht.LevelStatus{{Level: 0, ClusterSize: 50}, {Level: 1, ClusterSize: 50}, {Level: 2, ClusterSize: 5}}}
}

// When the DSHT's lookups fail, the node settles who downloads with a
// one-round put+get; only if that fails too does it go to the origin, after
// a random wait that spreads a crowd's fallbacks.
func TestFetchWhenTheDSHTIsSlow(t *testing.T) {
	timedOut := errors.New("dsht: get: rpc timed out")
	for _, tc := range []struct {
		name       string
		near       bool
		clustered  bool
		meets      []dsht.Value
		global     []dsht.Value
		wantCalls  int // near put+gets (default 1 when near)
		nearErr    error
		wantPeer   bool // fetched from the peer met
		wantSpread uint64
		wantTrace  string
	}{
		{name: "someone is already downloading: fetch from it", near: true,
			meets: []dsht.Value{value(peerID("a"), StateDownloading, 2)}, wantPeer: true, wantTrace: "near put+get: 1 values"},
		{name: "first at the root: this node downloads at once", near: true, wantTrace: "near put+get: 0 values"},
		{name: "first in its cluster, someone at the global root: fetch from it", near: true, clustered: true,
			global: []dsht.Value{value(peerID("a"), StateDownloading, 0)}, wantPeer: true, wantCalls: 2,
			wantTrace: "near put+get L0: 1 values"},
		{name: "first in its cluster and at the global root: downloads", near: true, clustered: true, wantCalls: 2,
			wantTrace: "near put+get L0: 0 values"},
		{name: "met a cluster-mate: no global test", near: true, clustered: true,
			meets: []dsht.Value{value(peerID("a"), StateDownloading, 2)}, wantPeer: true, wantTrace: "near put+get: 1 values"},
		{name: "near put+get fails too: origin after a spread", near: true, nearErr: timedOut, wantSpread: 1,
			wantTrace: "near put+get"},
		{name: "no near put+get: origin after a spread", wantSpread: 1, wantTrace: "DSHT timed out: origin in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Self: self, Logger: slog.New(slog.DiscardHandler), FetchTimeout: 10 * time.Second,
				PutGet: true, FallbackSpread: 20 * time.Millisecond}
			fd := newFakeDSHT()
			fd.getErr = timedOut
			var d DSHT = fd
			nd := &nearDSHT{fakeDSHT: fd, meets: tc.meets, global: tc.global, err: tc.nearErr, clustered: tc.clustered}
			if tc.near {
				d = nd
			}
			tk := &tickers{made: make(chan *fakeTicker, 16)}
			f := &fakeFetcher{scripts: map[string]func(context.Context) (store.Meta, io.ReadCloser, error){}, calls: make(chan string, 16)}
			f.scripts[peerID("a")] = delivers(newBody("from a"))
			c := newCoop(cfg, d, f, tk.new)
			t.Cleanup(func() { _ = c.Close() })

			const url = "http://example.com/slow"
			tr := &proxy.Trace{}
			_, rc, err := c.Fetch(proxy.WithTrace(context.Background(), tr), object.KeyOf(url), url, nil)
			if tc.wantPeer {
				if err != nil {
					t.Fatalf("fetch: %v (trace %s)", err, tr)
				}
				rc.Close()
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("want a miss that sends the proxy to the origin, got %v", err)
			}
			if !strings.Contains(tr.String(), tc.wantTrace) {
				t.Errorf("trace %q lacks %q", tr, tc.wantTrace)
			}
			st := c.Stats()
			if st.SpreadFallbacks != tc.wantSpread {
				t.Errorf("spread fallbacks %d, want %d", st.SpreadFallbacks, tc.wantSpread)
			}
			if tc.wantCalls == 0 {
				tc.wantCalls = 1
			}
			if tc.near && (nd.calls != tc.wantCalls || st.NearTestAndSets != 1) {
				t.Errorf("near put+gets: %d calls, stats %d; want %d calls", nd.calls, st.NearTestAndSets, tc.wantCalls)
			}
			if len(fd.putGets) != 0 {
				t.Errorf("a full put+get ran after the lookup timed out: %d", len(fd.putGets))
			}
		})
	}
}
