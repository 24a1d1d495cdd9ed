package coop

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
)

// Peers without headroom (paused, over quota, saturated) come last and are
// asked only after every peer with room has failed.
func TestPeersWithoutRoomAskedLast(t *testing.T) {
	full := map[string]bool{peerID("a"): true}
	h := newHarness(t, func(c *Config) { c.HasRoom = func(p string) bool { return !full[p] } })
	const url = "http://example.com/room"
	// a is the best referral by level, but has no room.
	h.d.set(url, value(peerID("a"), StateCached, 2), value(peerID("b"), StateCached, 1), value(peerID("c"), StateCached, 0))
	h.f.scripts[peerID("b")] = fails(errors.New("stream reset"))
	h.f.scripts[peerID("c")] = fails(errors.New("stream reset"))
	h.f.scripts[peerID("a")] = delivers(newBody("from a"))
	_, b, err := h.c.Fetch(proxy.WithTrace(context.Background(), &proxy.Trace{}), object.KeyOf(url), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "from a" {
		t.Errorf("body %q", got)
	}
	var order []string
	for range 3 {
		order = append(order, recv(t, "an attempt", h.f.calls))
	}
	if first := order[:2]; !slices.Contains(first, peerID("b")) || !slices.Contains(first, peerID("c")) || order[2] != peerID("a") {
		t.Errorf("attempt order %v: the peer without room was not asked last", order)
	}
}
