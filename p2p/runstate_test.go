package p2p

import (
	"crypto/ed25519"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/test/testkit"
)

type runStateMember struct {
	h  *Host
	tr *runstate.Tracker
	ch *RunStateChannel
}

func joinRunState(t *testing.T, h *Host, key ed25519.PublicKey) runStateMember {
	t.Helper()
	tr, err := runstate.NewTracker(filepath.Join(t.TempDir(), "runstate"), key)
	if err != nil {
		t.Fatal(err)
	}
	ch := joinTracked(t, h.JoinRunState,
		func(raw []byte) error { _, err := tr.Offer(raw); return err },
		func() []byte { _, raw, _ := tr.Current(); return raw })
	return runStateMember{h, tr, ch}
}

func serial(m runStateMember) uint64 { d, _, _ := m.tr.Current(); return d.Serial }

// A document published on one node reaches members it is not directly
// connected to, and a member that joins later; a forged one stops at the
// first hop and changes nothing.
func TestRunStateGossip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	psk := testSecret(t)
	a, b, c := joinRunState(t, newTestHost(t, psk), pub), joinRunState(t, newTestHost(t, psk), pub), joinRunState(t, newTestHost(t, psk), pub)
	mustConnect(t, a.h, b.h)
	mustConnect(t, b.h, c.h)
	testkit.Eventually(t, 10*time.Second, "topic meshes", func() bool { return a.ch.Peers() == 1 && c.ch.Peers() == 1 })

	forged, _ := runstate.Sign(runstate.Document{Serial: 50, Paused: runstate.Components}, forger)
	if err := a.ch.Publish(testCtx(t), forged); err != nil {
		t.Fatal(err)
	}
	doc, _ := runstate.Sign(runstate.Document{Serial: 7, Paused: []string{runstate.Proxy}, Message: "maintenance"}, priv)
	if _, err := a.tr.Offer(doc); err != nil {
		t.Fatal(err)
	}
	if err := a.ch.Publish(testCtx(t), doc); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "the document two hops away", func() bool { return serial(c) == 7 })
	if serial(b) != 7 {
		t.Errorf("middle node has serial %d", serial(b))
	}

	late := joinRunState(t, newTestHost(t, psk), pub)
	mustConnect(t, late.h, c.h)
	testkit.Eventually(t, 15*time.Second, "the document at a member that joined later", func() bool { return serial(late) == 7 })
	if d, _, _ := late.tr.Current(); !d.IsPaused(runstate.Proxy) || d.Message != "maintenance" {
		t.Errorf("late member's document: %+v", d)
	}
}
