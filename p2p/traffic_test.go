package p2p

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

func newBudget(t *testing.T, up shaping.Rate) *shaping.Budget {
	t.Helper()
	b, err := shaping.New(shaping.Policy{Upload: up}, shaping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// A circuit this node relays goes through its upload cap and is counted as
// relayed traffic; DSHT messages are counted and not held back.
func TestRelayedCircuitUnderUploadCap(t *testing.T) {
	psk := testSecret(t)
	cutA, cutB := &cutLink{}, &cutLink{}
	relayBudget := newBudget(t, 512<<10)
	bBudget := newBudget(t, 1<<10) // B's own cap is tiny: its DSHT messages are counted, not held
	c := newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPublic; cfg.Budget = relayBudget })
	a := newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPrivate; cfg.ConnectionGater = cutA })
	b := newTestHost(t, psk, func(cfg *Config) { cfg.ConnectionGater = cutB; cfg.Budget = bBudget })
	cutA.block(b.ID())
	cutB.block(a.ID())
	mustConnect(t, a, c)
	mustConnect(t, b, c)
	testkit.Eventually(t, 15*time.Second, "A's reservation on C", func() bool {
		for _, r := range a.Status().RelayReservations {
			if r == c.ID().String() {
				return true
			}
		}
		return false
	})
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := randomBytes(t, 1<<20)
	putObject(t, st, "only-on-a", body)
	a.ServeObjects(storeSource{st})
	a.ServeDSHT(&storeCounter{})

	start := time.Now()
	_, rc, err := b.FetchObject(testCtx(t), a.ID().String(), "only-on-a")
	if err != nil {
		t.Fatalf("fetch through the relay: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	took := time.Since(start)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetch through the relay: %d bytes, %v", len(got), err)
	}
	// 1 MiB through a relay capped at 512 KiB/s takes about 2 s.
	if took < 1600*time.Millisecond {
		t.Errorf("1 MiB relayed in %s through a 512 KiB/s cap", took)
	}
	relayed := relayBudget.Usage().SiteTotals(start.Add(-time.Hour))[RelayedSite]
	if relayed.Sent < 1<<20 {
		t.Errorf("relay counted %d bytes sent for the circuit, want at least 1 MiB", relayed.Sent)
	}
	sentBefore, _ := bBudget.Totals()
	if _, err := b.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq()); err != nil {
		t.Fatalf("DSHT store: %v", err)
	}
	if sent, _ := bBudget.Totals(); sent <= sentBefore {
		t.Errorf("B's DSHT message was not counted (%d → %d bytes)", sentBefore, sent)
	}
}

// An object fetched from a peer comes in through the receiver's download
// cap and is counted as its origin site's traffic (the host is the
// coop.Fetcher itself: no adapter in app/node shapes it any more).
func TestFetchedObjectCountedAsItsSite(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	body := randomBytes(t, 200<<10)
	putObject(t, st, "counted", body) // URL http://example.com/counted
	psk := testSecret(t)
	budget := newBudget(t, 0)
	sender := newTestHost(t, psk)
	receiver := newTestHost(t, psk, func(cfg *Config) { cfg.Budget = budget })
	sender.ServeObjects(storeSource{st})
	mustConnect(t, receiver, sender)

	start := time.Now()
	_, rc, err := receiver.FetchObject(testCtx(t), sender.ID().String(), "counted")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("fetched %d bytes, %v", len(got), err)
	}
	site := budget.Usage().SiteTotals(start.Add(-time.Hour))["example.com"]
	if site.Received != int64(len(body)) {
		t.Errorf("example.com received %d bytes, want the body's %d", site.Received, len(body))
	}
}

// A referral naming something that is not a peer ID is refused with an
// error, before any connection is tried.
func TestFetchFromMalformedPeerID(t *testing.T) {
	h := newTestHost(t, testSecret(t))
	for _, from := range []string{"", "not-a-peer", "12D3KooW"} {
		if _, body, err := h.FetchObject(testCtx(t), from, "k"); err == nil || body != nil {
			t.Errorf("FetchObject(%q) = body %v, err %v; want an error and no body", from, body, err)
		}
	}
}
