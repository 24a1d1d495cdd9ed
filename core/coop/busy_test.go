package coop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
)

// busyThen refuses for lack of a slot n times, then runs then.
func busyThen(n int32, then func(context.Context) (store.Meta, io.ReadCloser, error)) func(context.Context) (store.Meta, io.ReadCloser, error) {
	var calls atomic.Int32
	return func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
		if calls.Add(1) <= n {
			return store.Meta{}, nil, fmt.Errorf("p2p: fetch: %w: stream reset (remote): code: 0x1002", object.ErrBusy)
		}
		return then(ctx)
	}
}

// A peer that refuses a fetch for lack of a slot holds the copy: the node
// waits and asks again, or asks a complete copy announced meanwhile, and
// goes to the origin only when BusyWait runs out. Downloads announced after
// the first lookup are never asked (they may be waiting for this node).
func TestBusyPeerIsAskedAgain(t *testing.T) {
	const url = "http://example.com/busy"
	for _, tc := range []struct {
		name        string
		busyWait    time.Duration
		script      func(h *harness) // sets the peers' scripts
		wantBody    string           // "" : the origin (ErrNotFound)
		wantRetries uint64
		wantTrace   []string
		neverAsked  string
	}{
		{name: "busy twice, then it delivers", busyWait: 10 * time.Second,
			script: func(h *harness) {
				h.f.scripts[peerID("a")] = busyThen(2, delivers(newBody("from a")))
			},
			wantBody: "from a", wantRetries: 2,
			wantTrace: []string{"try " + short("a") + " L2 cached: busy", "1 peer(s) busy: asking again in", "try " + short("a") + " L2 cached: ok"}},
		{name: "a complete copy announced meanwhile delivers", busyWait: 10 * time.Second,
			script: func(h *harness) {
				h.f.scripts[peerID("b")] = delivers(newBody("from b"))
				h.f.scripts[peerID("a")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
					h.d.set(url, value(peerID("a"), StateCached, 2), value(peerID("b"), StateCached, 1))
					return busyThen(1000, nil)(ctx)
				}
			},
			wantBody: "from b", wantRetries: 1,
			wantTrace: []string{"try " + short("a") + " L2 cached: busy", "try " + short("b") + " L1 cached: ok"}},
		{name: "a complete copy's holder too slow to answer, then it answers", busyWait: 10 * time.Second,
			script: func(h *harness) {
				var calls atomic.Int32
				h.f.scripts[peerID("a")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
					if calls.Add(1) == 1 {
						<-ctx.Done() // overloaded: no header before FetchTimeout
						return store.Meta{}, nil, ctx.Err()
					}
					return delivers(newBody("from a"))(ctx)
				}
			},
			wantBody: "from a", wantRetries: 1,
			wantTrace: []string{"try " + short("a") + " L2 cached: no response", "try " + short("a") + " L2 cached: ok"}},
		{name: "still busy when BusyWait ends: origin", busyWait: 400 * time.Millisecond,
			script: func(h *harness) {
				h.f.scripts[peerID("a")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
					h.d.set(url, value(peerID("a"), StateCached, 2), value(peerID("c"), StateDownloading, 2))
					return busyThen(1000, nil)(ctx)
				}
				h.f.scripts[peerID("c")] = delivers(newBody("from c"))
			},
			wantTrace:  []string{"1 peer(s) still busy after 400ms: origin"},
			neverAsked: peerID("c")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.BusyWait, c.FetchTimeout = tc.busyWait, 100*time.Millisecond })
			h.d.set(url, value(peerID("a"), StateCached, 2))
			h.f.calls = make(chan string, 256) // every round's attempts, unread until the end
			tc.script(h)
			tr := &proxy.Trace{}
			_, b, err := h.c.Fetch(proxy.WithTrace(context.Background(), tr), object.KeyOf(url), url, nil)
			asked := map[string]bool{}
			for len(h.f.calls) > 0 {
				asked[<-h.f.calls] = true
			}
			if tc.wantBody == "" {
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("fetch: %v, want ErrNotFound (the origin)", err)
				}
			} else {
				if err != nil {
					t.Fatalf("fetch: %v (trace %s)", err, tr)
				}
				got, _ := io.ReadAll(b)
				b.Close()
				if string(got) != tc.wantBody {
					t.Errorf("body %q, want %q", got, tc.wantBody)
				}
			}
			for _, w := range tc.wantTrace {
				if !strings.Contains(tr.String(), w) {
					t.Errorf("trace %q lacks %q", tr, w)
				}
			}
			if s := h.c.Stats(); tc.wantRetries > 0 && s.BusyRetries != tc.wantRetries {
				t.Errorf("busy retries %d, want %d (stats %+v)", s.BusyRetries, tc.wantRetries, s)
			}
			if tc.neverAsked != "" && asked[tc.neverAsked] {
				t.Errorf("%s, a download announced after this node's, was asked", tc.neverAsked)
			}
		})
	}
}
