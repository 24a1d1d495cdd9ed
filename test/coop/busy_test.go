package cooptest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/p2p"
)

// holdFirst is a node's object source whose first peer fetch holds its
// slot until release closes (held closes when it starts); the rest are
// served by the proxy behind it.
type holdFirst struct {
	object.Source
	held, release chan struct{}
	once          sync.Once
}

func (h *holdFirst) OpenForPeer(ctx context.Context, key string) (object.Meta, io.ReadCloser, error) {
	first := false
	h.once.Do(func() { first = true })
	if !first {
		return h.Source.OpenForPeer(ctx, key)
	}
	close(h.held)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	return object.Meta{}, nil, object.ErrNotFound
}

// A holder whose libp2p resource manager refuses a fetch for lack of a slot
// (its one /coral/fetch slot is taken) does not send the asking node to the
// origin: it asks again and gets the copy from the holder once the slot is
// free. Real libp2p hosts, the real rcmgr reset (StreamResourceLimitExceeded).
func TestRefusedPeerFetchDoesNotGoToOrigin(t *testing.T) {
	nw := newNetwork(t, 3, netOptions{
		p2p:  func(c *p2p.Config) { c.FetchStreams, c.FetchStreamsPerPeer = 1, 1 },
		coop: func(c *coop.Config) { c.BusyWait = time.Minute },
	})
	a, b, c := nw.nodes[0], nw.nodes[1], nw.nodes[2]
	var hits atomic.Int64
	const content = "the one copy a holds"
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=3600")
		io.WriteString(w, content)
	}))
	t.Cleanup(origin.Close)
	u := origin.URL + "/busy.txt"

	if r := a.fetch(t, u); r.err != nil || r.cache() != proxy.CacheMiss {
		t.Fatalf("a: %v %s", r.err, r.cache())
	}
	eventually(t, 20*time.Second, "a's copy to be announced", func() bool {
		return hasReferral(b.referrals(u, 2, 0), a.peerID(), coop.StateCached)
	})

	// c takes a's only fetch slot and keeps it.
	hold := &holdFirst{Source: a.proxy, held: make(chan struct{}), release: make(chan struct{})}
	a.host.ServeObjects(hold)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		if _, body, err := c.host.FetchObject(ctx, a.peerID(), "holds-the-slot"); err == nil {
			body.Close()
		}
	}()
	recv(t, "c to take a's fetch slot", hold.held)

	got := make(chan result, 1)
	go func() { got <- b.fetch(t, u, proxy.DebugHeader, "1") }()
	eventually(t, 20*time.Second, "a to refuse b for lack of a slot", func() bool { return b.coop.Stats().BusyRefusals > 0 })
	close(hold.release)
	r := recv(t, "b's response", got)
	t.Logf("b: %s; %s", r.cache(), r.trace())
	if r.err != nil || r.status != http.StatusOK || string(r.body) != content {
		t.Fatalf("b: status %d, body %q, err %v", r.status, r.body, r.err)
	}
	if r.cache() != proxy.CachePeer || !strings.Contains(r.trace(), "cached: busy") {
		t.Errorf("b's response came from %s (trace %q), want the peer after a busy refusal", r.cache(), r.trace())
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin requests = %d, want 1: a refused fetch went to the origin", n)
	}
}
