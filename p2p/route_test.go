package p2p

import (
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
)

// A burst of fetches from a peer not yet connected shares one connection
// attempt: the member asked for the peer's addresses answers as many
// lookups as for a single caller, not one per caller, and every caller
// ends up connected.
func TestConcurrentConnectsShareOneLookup(t *testing.T) {
	psk := testSecret(t)
	member := newTestHost(t, psk)
	targets := []*Host{newTestHost(t, psk), newTestHost(t, psk)}
	for _, x := range targets {
		mustConnect(t, x, member)
	}
	asker := newTestHost(t, psk)
	mustConnect(t, asker, member)
	lookups := func() uint64 {
		for _, s := range member.StreamCounts() {
			if s.Protocol == string(member.protos.peers) {
				return s.Writes + s.Reads
			}
		}
		return 0
	}
	connect := func(x *Host, n int) (asked uint64) {
		if asker.host.Network().Connectedness(x.ID()) == network.Connected {
			t.Fatalf("asker already connected to %s", x.ID())
		}
		before := lookups()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Go(func() { errs <- asker.ensureConnected(testCtx(t), x.ID()) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("connect to %s: %v", x.ID(), err)
			}
		}
		return lookups() - before
	}
	one := connect(targets[0], 1)
	if one == 0 {
		t.Fatal("a single connect asked the member nothing: the test would not see a lookup")
	}
	if burst := connect(targets[1], 8); burst != one {
		t.Errorf("8 concurrent connects cost the member %d lookup messages, one connect %d", burst, one)
	}
}
