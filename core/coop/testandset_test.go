package coop

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
)

// tasDSHT is a DSHT whose lookups find nothing and whose put+get calls
// answer from a script, one answer per call; it reports cluster sizes like
// *dsht.Node's Status.
type tasDSHT struct {
	sizes []int64 // cluster size per level, index = level

	mu      sync.Mutex
	answers [][]dsht.Value
	calls   int
}

func (d *tasDSHT) Get(context.Context, dsht.ID, ...dsht.Option) ([]dsht.Value, error) {
	return nil, nil
}

func (d *tasDSHT) Put(context.Context, dsht.ID, []byte, time.Duration, ...dsht.Option) error {
	return nil
}

func (d *tasDSHT) PutGet(context.Context, dsht.ID, []byte, time.Duration, ...dsht.Option) ([]dsht.Value, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if len(d.answers) == 0 {
		return nil, nil
	}
	a := d.answers[0]
	d.answers = d.answers[1:]
	return a, nil
}

func (d *tasDSHT) Status() dsht.Status {
	var st dsht.Status
	for l, n := range d.sizes {
		st.Levels = append(st.Levels, dsht.LevelStatus{Level: l, ClusterSize: n})
	}
	return st
}

type tasFetcher struct{ from chan string }

func (f tasFetcher) FetchObject(_ context.Context, peer, key string) (store.Meta, io.ReadCloser, error) {
	f.from <- peer
	return store.Meta{Key: key, Size: 2}, io.NopCloser(strings.NewReader("ok")), nil
}

// A node alone in its local clusters tests at the global level at once;
// a node with cluster-mates tests among them first and goes to the global
// level only when none of them was first. Whoever was first is fetched
// from; a node first everywhere goes to the origin.
func TestTestAndSetClimbsToGlobal(t *testing.T) {
	self, other := "12D3KooWSelf", "12D3KooWOther"
	ref := []dsht.Value{{Data: EncodeReferral(Referral{Peer: other, State: StateDownloading})}}
	for _, tc := range []struct {
		name      string
		sizes     []int64
		answers   [][]dsht.Value
		wantCalls int
		wantPeer  bool
	}{
		{"alone locally, someone first globally", []int64{50, 1, 1}, [][]dsht.Value{ref}, 1, true},
		{"alone locally, first globally", []int64{50, 1, 1}, nil, 1, false},
		{"cluster-mate first", []int64{50, 4, 3}, [][]dsht.Value{ref}, 1, true},
		{"first in cluster, another cluster first", []int64{50, 4, 3}, [][]dsht.Value{nil, ref}, 2, true},
		{"first in cluster and globally", []int64{50, 4, 1}, nil, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &tasDSHT{sizes: tc.sizes, answers: tc.answers}
			f := tasFetcher{from: make(chan string, 4)}
			c := New(Config{Self: self, PutGet: true}, d, f)
			defer c.Close()
			_, body, err := c.Fetch(context.Background(), object.KeyOf("http://example.com/x"), "http://example.com/x", nil)
			if tc.wantPeer {
				if err != nil {
					t.Fatalf("Fetch: %v, want the body from %s", err, other)
				}
				body.Close()
				if got := <-f.from; got != other {
					t.Errorf("fetched from %s, want %s", got, other)
				}
			} else if err == nil {
				body.Close()
				t.Fatalf("Fetch found a peer; want a miss (this node goes to the origin)")
			}
			if d.calls != tc.wantCalls {
				t.Errorf("%d put+get calls, want %d", d.calls, tc.wantCalls)
			}
		})
	}
}

// lateFetcher answers after delay, or never when delay is zero; either
// way it gives up when its context ends.
type lateFetcher struct{ delay time.Duration }

func (f lateFetcher) FetchObject(ctx context.Context, peer, key string) (store.Meta, io.ReadCloser, error) {
	var answer <-chan time.Time
	if f.delay > 0 {
		answer = time.After(f.delay)
	}
	select {
	case <-answer:
		return store.Meta{Key: key, Size: 2}, io.NopCloser(strings.NewReader("ok")), nil
	case <-ctx.Done():
		return store.Meta{}, nil, ctx.Err()
	}
}

// A proxy that is still downloading has a header to send only after its
// own lookup and put+get, so it is waited for longer than a proxy holding
// a copy: a healthy chain of downloads must not fall apart (and send both
// ends to the origin) because the DSHT is slow under a crowd. A holder
// that does not answer within FetchTimeout is asked again until BusyWait,
// then given up on.
func TestDownloadingReferralWaitedLonger(t *testing.T) {
	const other = "12D3KooWOther"
	for _, tc := range []struct {
		name  string
		state int
		delay time.Duration // 0: the peer never answers
		want  bool
	}{
		// 20 ms is far past the 1 ms FetchTimeout, far within the hour
		// of lookup and put+get allowance.
		{"downloading, answers late", StateDownloading, 20 * time.Millisecond, true},
		{"cached, never answers", StateCached, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &tasDSHT{}
			c := New(Config{Self: "12D3KooWSelf", FetchTimeout: time.Millisecond,
				LookupTimeout: time.Hour, TestAndSetTimeout: time.Hour, BusyWait: 50 * time.Millisecond},
				refDSHT{d, Referral{Peer: other, State: tc.state}}, lateFetcher{tc.delay})
			t.Cleanup(func() { c.Close() })
			_, body, err := c.Fetch(context.Background(), object.KeyOf("http://example.com/x"), "http://example.com/x", nil)
			if err == nil {
				body.Close()
			}
			if got := err == nil; got != tc.want {
				t.Errorf("delivered %v, want %v (err %v)", got, tc.want, err)
			}
		})
	}
}

// refDSHT is tasDSHT whose lookups find one referral.
type refDSHT struct {
	*tasDSHT
	ref Referral
}

func (d refDSHT) Get(context.Context, dsht.ID, ...dsht.Option) ([]dsht.Value, error) {
	return []dsht.Value{{Data: EncodeReferral(d.ref)}}, nil
}
