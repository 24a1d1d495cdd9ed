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
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
)

// The holder of a copy dies in the middle of a transfer: the requester goes
// on from the origin, and its visitor, who already has part of the body,
// still gets the complete, correct response.
//
// The holder is made slow the way it is in a flash crowd: it is itself still
// downloading from a slow origin, which has sent half the body and waits.
// The requester finds the holder's "downloading" referral, streams the half
// it has, and then the holder is killed (its libp2p host closes every
// connection at once, as a crash does).
func TestHolderKilledMidTransfer(t *testing.T) {
	nw := newNetwork(t, 3, netOptions{})
	holder, requester := nw.nodes[0], nw.nodes[1]

	full := bytes.Repeat([]byte("coral-fault-test-0123456789abcdef"), (2<<20)/33) // ~2 MiB
	half := len(full) / 2
	origin := newStallingOrigin(t, full, `"big-v1"`, 1)
	u := origin.URL + "/big.bin"

	origin.holderDownloads(t, holder, u)
	eventually(t, 20*time.Second, "the holder's download to be announced", func() bool {
		return hasReferral(requester.referrals(u, 2, 0), holder.peerID(), coop.StateDownloading)
	})

	resp := requester.get(t, u, proxy.DebugHeader, "1")
	defer resp.Body.Close()
	if resp.Header.Get("X-Coral-Cache") != proxy.CachePeer || !strings.Contains(resp.Header.Get(proxy.TraceHeader), "from peer "+holder.short()) {
		t.Fatalf("requester answered %s, trace %q; want the holder's copy", resp.Header.Get("X-Coral-Cache"), resp.Header.Get(proxy.TraceHeader))
	}
	got := make([]byte, half)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("reading the half the holder has: %v", err)
	}
	holder.close() // kill the holder mid-transfer
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("visitor's connection broke after the holder died: %v (%d more bytes)", err, len(rest))
	}
	got = append(got, rest...)
	if len(got) != len(full) || digest(got) != digest(full) {
		t.Fatalf("visitor got %d bytes (sha %s), want %d (sha %s)", len(got), digest(got)[:12], len(full), digest(full)[:12])
	}

	reqs := origin.ranges()
	if want := []string{"", fmt.Sprintf("bytes=%d-", half)}; len(reqs) != 2 || reqs[0] != want[0] || reqs[1] != want[1] {
		t.Errorf("origin requests (Range) %q, want %q: the rest, not the whole body again", reqs, want)
	}
	// The requester kept the complete copy, and the path is on record.
	r := requester.fetch(t, u)
	if r.err != nil || r.cache() != proxy.CacheHit || digest(r.body) != digest(full) {
		t.Errorf("requester's stored copy: %v %s %d bytes", r.err, r.cache(), len(r.body))
	}
	eventually(t, 10*time.Second, "the resume in the requester's recent traces", func() bool {
		return requester.tracedAs(proxy.CachePeer, fmt.Sprintf("then origin from byte %d", half))
	})
}

// gatedSource refuses every peer fetch (as if it had no copy) until open.
type gatedSource struct {
	object.Source
	open atomic.Bool
}

func (g *gatedSource) OpenForPeer(ctx context.Context, key string) (object.Meta, io.ReadCloser, error) {
	if !g.open.Load() {
		return object.Meta{}, nil, object.ErrNotFound
	}
	return g.Source.OpenForPeer(ctx, key)
}

// The holder a requester streams from dies mid-transfer while another node
// holds a complete copy: the requester continues from that copy (the bytes
// it already sent skipped once their hash matches), not from the origin.
// In a flash crowd with nodes dying this is what keeps the origin's
// requests near one per file.
func TestHolderKilledResumesFromCompleteCopy(t *testing.T) {
	nw := newNetwork(t, 3, netOptions{})
	copyHolder, holder, requester := nw.nodes[0], nw.nodes[1], nw.nodes[2]

	full := bytes.Repeat([]byte("coral-resume-from-copy-0123456789"), (2<<20)/33)
	half := len(full) / 2
	origin := newStallingOrigin(t, full, `"copy-v1"`, 2)
	u := origin.URL + "/copy.bin"

	if r := copyHolder.fetch(t, u); r.err != nil || digest(r.body) != digest(full) {
		t.Fatalf("copy holder: %v, %d bytes", r.err, len(r.body))
	}
	gate := &gatedSource{Source: copyHolder.proxy}
	copyHolder.host.ServeObjects(gate) // its copy is hidden while the holder downloads
	eventually(t, 20*time.Second, "the complete copy to be announced", func() bool {
		return hasReferral(holder.referrals(u, 2, 0), copyHolder.peerID(), coop.StateCached)
	})
	origin.holderDownloads(t, holder, u)
	eventually(t, 20*time.Second, "the holder's download to be announced", func() bool {
		return hasReferral(requester.referrals(u, 2, 0), holder.peerID(), coop.StateDownloading)
	})

	resp := requester.get(t, u, proxy.DebugHeader, "1")
	defer resp.Body.Close()
	got := make([]byte, half)
	if _, err := io.ReadFull(resp.Body, got); err != nil {
		t.Fatalf("reading the half the holder has: %v", err)
	}
	gate.open.Store(true)
	holder.close()
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("visitor's connection broke after the holder died: %v", err)
	}
	if got = append(got, rest...); digest(got) != digest(full) {
		t.Fatalf("visitor got %d bytes, want the %d of the file", len(got), len(full))
	}
	n := len(origin.ranges())
	if n != 2 {
		t.Errorf("origin requests %d, want 2 (the copy holder's and the holder's): the requester went to the origin", n)
	}
	eventually(t, 10*time.Second, "the resume in the requester's recent traces", func() bool {
		return requester.tracedAs("", "resumed from a peer's copy at byte")
	})
}

// The only holder, still downloading, dies while two requesters stream
// from it and nobody has a complete copy: the two elect one of them to
// continue from the origin, and the other continues from that one's
// download, so the origin gets one request for the rest, not two.
func TestHolderKilledReceiversElectOne(t *testing.T) {
	nw := newNetwork(t, 4, netOptions{})
	holder, receivers := nw.nodes[0], nw.nodes[1:3]

	full := bytes.Repeat([]byte("coral-resume-election-0123456789"), (2<<20)/32)
	half := len(full) / 2
	origin := newStallingOrigin(t, full, `"elect-v1"`, 1)
	u := origin.URL + "/elect.bin"

	origin.holderDownloads(t, holder, u)
	var bodies []io.ReadCloser
	var heads [][]byte
	for _, r := range receivers {
		eventually(t, 20*time.Second, "the holder's download to be announced", func() bool {
			return hasReferral(r.referrals(u, 2, 0), holder.peerID(), coop.StateDownloading)
		})
		resp := r.get(t, u, proxy.DebugHeader, "1")
		t.Cleanup(func() { resp.Body.Close() })
		got := make([]byte, half)
		if _, err := io.ReadFull(resp.Body, got); err != nil {
			t.Fatalf("%s: reading the half the holder has: %v", r.name, err)
		}
		bodies, heads = append(bodies, resp.Body), append(heads, got)
	}
	holder.close()
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() {
			rest, err := io.ReadAll(b)
			if err != nil || digest(append(heads[i], rest...)) != digest(full) {
				t.Errorf("%s: %d more bytes, err %v: not the rest of the file", receivers[i].name, len(rest), err)
			}
		})
	}
	wg.Wait()
	reqs := origin.ranges()
	if len(reqs) != 2 {
		t.Errorf("origin requests (Range) %q: want the holder's and one resume for both receivers", reqs)
	}
}

// stallingOrigin serves full, cacheable, with an ETag; its stall-th request
// (counting from 1) gets half the body and then hangs until the test ends,
// as a slow origin in a flash crowd does. halfSent is closed once that
// half is out.
type stallingOrigin struct {
	*httptest.Server
	halfSent chan struct{}
	mu       sync.Mutex
	requests []string // each request's Range header
}

func newStallingOrigin(t *testing.T, full []byte, etag string, stall int) *stallingOrigin {
	o := &stallingOrigin{halfSent: make(chan struct{})}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests = append(o.requests, r.Header.Get("Range"))
		n := len(o.requests)
		o.mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", etag)
		if n != stall {
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(full))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(full)))
		w.Write(full[:len(full)/2])
		http.NewResponseController(w).Flush()
		close(o.halfSent)
		select { // the download hangs here until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(o.Close)
	return o
}

// holderDownloads has holder's own visitor ask for u, and returns once the
// origin has sent the holder half the body (the visitor sees a broken
// connection when the holder is killed).
func (o *stallingOrigin) holderDownloads(t *testing.T, holder *node, u string) {
	go func() {
		resp := holder.get(t, u)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	recv(t, "the origin to send half the body to the holder", o.halfSent)
}

// ranges are the Range headers of the requests so far.
func (o *stallingOrigin) ranges() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.requests...)
}

// The only holder, still downloading, dies before two requesters ask it:
// their lookups still name its "downloading" referral, the fetch fails,
// and rather than both going to the origin they elect one, and the other
// fetches that one's download. In a 100-node crowd with 10 nodes killed,
// nodes going to the origin each after their referrals failed were 28 of
// 52 origin requests.
func TestDeadDownloaderRequestersElectOne(t *testing.T) {
	nw := newNetwork(t, 5, netOptions{})
	holder, requesters := nw.nodes[0], nw.nodes[1:3]

	full := bytes.Repeat([]byte("coral-dead-referral-0123456789ab"), (1<<20)/32)
	origin := newStallingOrigin(t, full, `"dead-v1"`, 1)
	u := origin.URL + "/dead.bin"

	answered := make(chan struct{})
	go func() { // the holder's own visitor, cut off when it dies
		resp := holder.get(t, u)
		close(answered)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	recv(t, "the origin to send half the body to the holder", origin.halfSent)
	recv(t, "the holder to answer its visitor", answered)
	for _, r := range requesters {
		eventually(t, 20*time.Second, "the holder's download to be announced", func() bool {
			return hasReferral(r.referrals(u, 2, 0), holder.peerID(), coop.StateDownloading)
		})
	}
	holder.close()
	var wg sync.WaitGroup
	for _, r := range requesters {
		wg.Go(func() {
			got := r.fetch(t, u, proxy.DebugHeader, "1")
			if got.err != nil || digest(got.body) != digest(full) {
				t.Errorf("%s: %v, %d bytes: not the file", r.name, got.err, len(got.body))
			}
			t.Logf("%s: %s: %s", r.name, got.cache(), got.trace())
		})
	}
	wg.Wait()
	if reqs := origin.ranges(); len(reqs) != 2 {
		t.Errorf("origin requests %d: want the holder's and one for both requesters", len(reqs))
	}
}
