package p2p

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// relayLab is A (private, holding a reservation on C), B (cut off from A)
// and C, the relay whose budget the test turns; A serves one object.
type relayLab struct {
	a, b, c *Host
	budget  *shaping.Budget // C's
	body    []byte
	psk     pnet.PSK
}

const relayLabKey = "only-on-a"

func newRelayLab(t *testing.T, p shaping.Policy, size int) *relayLab {
	t.Helper()
	psk := testSecret(t)
	budget, err := shaping.New(p, shaping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { budget.Close() })
	cutA, cutB := &cutLink{}, &cutLink{}
	lab := &relayLab{budget: budget, body: randomBytes(t, size), psk: psk}
	lab.c = newTestHost(t, psk, func(cfg *Config) {
		cfg.Reachability = ReachabilityPublic
		cfg.Budget = budget
		cfg.Serving = budget.Serving
	})
	lab.a = newTestHost(t, psk, func(cfg *Config) { cfg.Reachability = ReachabilityPrivate; cfg.ConnectionGater = cutA })
	lab.b = newTestHost(t, psk, func(cfg *Config) { cfg.ConnectionGater = cutB })
	cutA.block(lab.b.ID())
	cutB.block(lab.a.ID())
	mustConnect(t, lab.a, lab.c)
	mustConnect(t, lab.b, lab.c)
	testkit.Eventually(t, 15*time.Second, "A's reservation on C", func() bool {
		for _, r := range lab.a.Status().RelayReservations {
			if r == lab.c.ID().String() {
				return true
			}
		}
		return false
	})
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	putObject(t, st, relayLabKey, lab.body)
	lab.a.ServeObjects(storeSource{st})
	return lab
}

// relayed is what C has sent for circuits since the test began.
func (lab *relayLab) relayed() int64 {
	return lab.budget.Usage().SiteTotals(time.Now().Add(-time.Hour))[RelayedSite].Sent
}

// notServing are the ways a volunteer's budget stops the node serving;
// each must stop it relaying too.
var notServing = []struct {
	name string
	stop func(b *shaping.Budget)
}{
	{"upload off", func(b *shaping.Budget) { b.SetPolicy(shaping.Policy{Upload: shaping.Off}) }},
	{"download off", func(b *shaping.Budget) { b.SetPolicy(shaping.Policy{Download: shaping.Off}) }},
	{"paused, cap 512KiB/s", func(b *shaping.Budget) { b.SetPolicy(shaping.Policy{Paused: true, Upload: 512 << 10}) }},
	{"quota used up", func(b *shaping.Budget) {
		b.SetPolicy(shaping.Policy{MonthlyQuota: 64 << 10})
		b.CountSent("x", 64<<10)
		b.SetPolicy(shaping.Policy{MonthlyQuota: 64 << 10}) // decide now, not at the next tick
	}},
}

// A node that does not serve relays nothing: no new circuits, no new
// reservations; it relays again once it serves again.
func TestRelayRefusesWhileNotServing(t *testing.T) {
	for _, tc := range notServing {
		t.Run(tc.name, func(t *testing.T) {
			lab := newRelayLab(t, shaping.Policy{}, 1<<20)
			tc.stop(lab.budget)
			if lab.budget.Serving() {
				t.Fatalf("C still serving: %+v", lab.budget.State())
			}
			before, asked := lab.relayed(), time.Now()
			_, rc, err := lab.b.FetchObject(testCtx(t), lab.a.ID().String(), relayLabKey)
			if err == nil {
				got, _ := io.ReadAll(rc)
				rc.Close()
				t.Fatalf("a new circuit through a relay that does not serve carried %d bytes", len(got))
			}
			sent := lab.relayed() - before
			if sent > relayControlBytes {
				t.Errorf("refusing the circuit, C sent %d relayed bytes", sent)
			}
			t.Logf("circuit refused in %v, C sent %d relayed bytes: %v", time.Since(asked).Round(time.Millisecond), sent, err)

			d := newTestHost(t, lab.psk)
			mustConnect(t, d, lab.c)
			_, err = client.Reserve(testCtx(t), d.host, peer.AddrInfo{ID: lab.c.ID(), Addrs: lab.c.Addrs()})
			var re client.ReservationError
			if !errors.As(err, &re) || re.Status != pbv2.Status_PERMISSION_DENIED {
				t.Errorf("reservation on a relay that does not serve: %v, want PERMISSION_DENIED", err)
			}

			// B's own dialer backs off the relay address it just failed
			// on for a few seconds; after that the relay carries it again.
			lab.budget.SetPolicy(shaping.Policy{})
			var got []byte
			took := testkit.Eventually(t, 30*time.Second, "a fetch through the relay serving again", func() bool {
				_, rc, err := lab.b.FetchObject(testCtx(t), lab.a.ID().String(), relayLabKey)
				if err != nil {
					return false
				}
				defer rc.Close()
				got, err = io.ReadAll(rc)
				return err == nil
			})
			if !bytes.Equal(got, lab.body) {
				t.Errorf("serving again, relayed %d bytes, not the object's %d", len(got), len(lab.body))
			}
			t.Logf("serving again: the relay carried the object after %v", took.Round(time.Millisecond))
		})
	}
}

// A circuit open when the node stops serving breaks at its next write: the
// rest of the object is not relayed, at the cap or otherwise.
func TestRelayedCircuitClosesWhenServingStops(t *testing.T) {
	for _, tc := range notServing {
		t.Run(tc.name, func(t *testing.T) {
			const size = 8 << 20
			lab := newRelayLab(t, shaping.Policy{Upload: 1 << 20}, size)
			_, rc, err := lab.b.FetchObject(testCtx(t), lab.a.ID().String(), relayLabKey)
			if err != nil {
				t.Fatalf("fetch through the relay: %v", err)
			}
			defer rc.Close()
			if _, err := io.ReadFull(rc, make([]byte, 256<<10)); err != nil {
				t.Fatalf("first 256 KiB through the relay: %v", err)
			}
			tc.stop(lab.budget)
			stoppedAt := lab.relayed()
			rest, err := io.ReadAll(rc)
			if err == nil {
				t.Errorf("the circuit carried the whole object (%d more bytes) after the relay stopped serving", len(rest))
			}
			// What was already on its way (the copy buffers and stream
			// windows) still arrives; the object's megabytes do not.
			if after := lab.relayed() - stoppedAt; after > 256<<10 {
				t.Errorf("C relayed %d bytes after it stopped serving", after)
			}
			t.Logf("after stopping: %d more bytes arrived, C relayed %d more; err %v", len(rest), lab.relayed()-stoppedAt, err)
		})
	}
}
