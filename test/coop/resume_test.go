package cooptest

import (
	"bytes"
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

// In a flash crowd most receivers stream a copy that is itself still
// arriving from another node (a relay), not from the node downloading from
// the origin. When the relay dies mid-transfer and the origin download
// outlasts the wait for a complete copy (BusyWait), the receiver continues
// from the download its own lookup had also found, as the bytes arrive,
// rather than from the origin.
//
// downloader fetches from an origin that sends half and then waits; relay
// streams the downloader's copy and announces itself; receiver's lookup
// finds both, and the downloader's copy is hidden from it (gatedSource) so
// that it streams the relay's. Then the relay is killed.
func TestRelayKilledResumesFromEarlierDownload(t *testing.T) {
	nw := newNetwork(t, 3, netOptions{coop: func(c *coop.Config) { c.BusyWait = 2 * time.Second }})
	downloader, relay, receiver := nw.nodes[0], nw.nodes[1], nw.nodes[2]

	full := bytes.Repeat([]byte("coral-relay-resume-0123456789abc"), (2<<20)/32)
	half := len(full) / 2
	halfSent, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	releaseOrigin := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseOrigin)
	var mu sync.Mutex
	var requests []string // Via header of each origin request
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Header.Get("Via"))
		first := len(requests) == 1
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"relay-v1"`)
		if !first {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(full))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(full)))
		w.Write(full[:half])
		http.NewResponseController(w).Flush()
		close(halfSent)
		select { // the rest once the test has seen where the receiver went
		case <-release:
			w.Write(full[half:])
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(origin.Close)
	u := origin.URL + "/relay.bin"
	// The relay, closed rather than crashed, may resume its own
	// transfer from the origin as it goes down; only the receiver's
	// requests count.
	fromReceiver := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, via := range requests {
			if strings.Contains(via, "coral-"+receiver.name) {
				n++
			}
		}
		return n
	}
	drain := func(resp *http.Response) {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	go drain(downloader.get(t, u))
	recv(t, "the origin to send half the body to the downloader", halfSent)
	eventually(t, 20*time.Second, "the download to be announced", func() bool {
		return hasReferral(relay.referrals(u, 2, 0), downloader.peerID(), coop.StateDownloading)
	})
	relayResp := relay.get(t, u)
	if _, err := io.ReadFull(relayResp.Body, make([]byte, half)); err != nil {
		t.Fatalf("relay reading the downloader's half: %v", err)
	}
	go drain(relayResp)
	gate := &gatedSource{Source: downloader.proxy}
	downloader.host.ServeObjects(gate) // the receiver's first fetch gets the relay's copy
	done := relay.coop.Downloading(object.KeyOf(u), u)
	t.Cleanup(done)
	eventually(t, 20*time.Second, "the receiver to find both referrals", func() bool {
		rs := receiver.referrals(u, 2, 0)
		return hasReferral(rs, relay.peerID(), coop.StateDownloading) && hasReferral(rs, downloader.peerID(), coop.StateDownloading)
	})

	resp := receiver.get(t, u, proxy.DebugHeader, "1")
	defer resp.Body.Close()
	if !strings.Contains(resp.Header.Get(proxy.TraceHeader), "from peer "+relay.short()) {
		t.Fatalf("receiver's trace %q: want the relay's copy", resp.Header.Get(proxy.TraceHeader))
	}
	got := make([]byte, half)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("receiver reading the relay's half: %v", err)
	}
	gate.open.Store(true)
	before := receiver.coop.Stats().PeerFetches
	relay.close() // the relay dies mid-transfer
	eventually(t, 30*time.Second, "the receiver to resume from a peer or the origin", func() bool {
		return receiver.coop.Stats().PeerFetches > before || fromReceiver() > 0
	})
	releaseOrigin()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("receiver's connection broke after the relay died: %v", err)
	}
	if got = append(got, rest...); digest(got) != digest(full) {
		t.Fatalf("receiver got %d bytes, want the %d of the file", len(got), len(full))
	}
	if n := fromReceiver(); n != 0 {
		t.Errorf("the receiver sent %d request(s) to the origin, want none: it resumed from the origin", n)
	}
	eventually(t, 10*time.Second, "the resume from the downloader in the receiver's traces", func() bool {
		return receiver.tracedAs("", "resumed from a peer's copy at byte")
	})
}
