package cooptest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
)

// slowFirst is a node's object source whose first peer fetch answers only
// once until() holds (or the node stops): a holder overloaded for a while.
type slowFirst struct {
	object.Source
	until func() bool
	once  sync.Once
}

func (s *slowFirst) OpenForPeer(ctx context.Context, key string) (object.Meta, io.ReadCloser, error) {
	first := false
	s.once.Do(func() { first = true })
	for first && !s.until() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond) // polls until(): the holder stays slow until then
	}
	return s.Source.OpenForPeer(ctx, key)
}

// A node still downloading an object answers a peer's fetch only once its
// own source answered; under load (a chain of such downloads in a crowd)
// that takes longer than the asking node waits for a header. The asking
// node must ask it again, as it asks a busy holder, rather than go to the
// origin: the download was announced before it asked, so it is coming.
func TestSlowDownloadingPeerIsAskedAgain(t *testing.T) {
	nw := newNetwork(t, 2, netOptions{coop: func(c *coop.Config) {
		// A header wait for a download of 0.7 s, and time to ask again.
		c.FetchTimeout, c.LookupTimeout, c.TestAndSetTimeout = 300*time.Millisecond, 200*time.Millisecond, 200*time.Millisecond
		c.BusyWait = 20 * time.Second
	}})
	holder, requester := nw.nodes[0], nw.nodes[1]

	full := bytes.Repeat([]byte("coral-slow-holder-0123456789abcd"), (1<<20)/32)
	half := len(full) / 2
	halfSent, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseOrigin := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseOrigin)
	var mu sync.Mutex
	requests := 0
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		first := requests == 1
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		if !first {
			w.Write(full)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(full)))
		w.Write(full[:half])
		http.NewResponseController(w).Flush()
		close(halfSent)
		select {
		case <-release:
			w.Write(full[half:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(origin.Close)
	u := origin.URL + "/slow-holder.bin"

	go func() {
		resp := holder.get(t, u)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	recv(t, "the origin to send half the body to the holder", halfSent)
	eventually(t, 20*time.Second, "the holder's download to be announced", func() bool {
		return hasReferral(requester.referrals(u, 2, 0), holder.peerID(), coop.StateDownloading)
	})
	// The holder answers the first fetch only after the requester gave up
	// waiting for its header.
	holder.host.ServeObjects(&slowFirst{Source: holder.proxy, until: func() bool { return requester.coop.Stats().PeerFailures > 0 }})

	resp := requester.get(t, u, proxy.DebugHeader, "1")
	defer resp.Body.Close()
	releaseOrigin()
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, full) {
		t.Fatalf("requester got %d bytes (err %v), want the %d of the file", len(got), err, len(full))
	}
	tr := resp.Header.Get(proxy.TraceHeader)
	mu.Lock()
	n := requests
	mu.Unlock()
	if n != 1 || resp.Header.Get("X-Coral-Cache") != proxy.CachePeer {
		t.Errorf("origin requests %d, requester answered %s (trace %q); want 1 and the holder's copy", n, resp.Header.Get("X-Coral-Cache"), tr)
	}
	if !strings.Contains(tr, "no response") || !strings.Contains(tr, "busy: asking again") {
		t.Errorf("trace %q: want the holder's first silence and a second ask", tr)
	}
}
