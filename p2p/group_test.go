package p2p

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/signed"
	"github.com/coralcdn/coral/test/testkit"
)

type groupMember struct {
	h  *Host
	tr *group.Tracker
	ch *SignedTopic
}

func joinGroup(t *testing.T, h *Host, key ed25519.PublicKey) groupMember {
	t.Helper()
	tr, err := group.NewTracker(filepath.Join(t.TempDir(), "group"), key)
	if err != nil {
		t.Fatal(err)
	}
	ch := joinTracked(t, func(cfg SignedTopicConfig) (*SignedTopic, error) { return h.JoinGroup(group.ID(key), cfg) },
		func(raw []byte) error { _, err := tr.Offer(raw); return err },
		func() []byte { _, raw, _ := tr.Current(); return raw })
	return groupMember{h, tr, ch}
}

// joinTracked joins a signed-document topic wired to a tracker's Offer and
// Current, republishing every second, left at the test's end.
func joinTracked(t *testing.T, join func(SignedTopicConfig) (*SignedTopic, error), offer func([]byte) error, current func() []byte) *SignedTopic {
	t.Helper()
	ch, err := join(SignedTopicConfig{Offer: offer, Current: current, RepublishInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

func manifestSerial(m groupMember) uint64 { d, _, _ := m.tr.Current(); return d.Serial }

// A group's manifest reaches members two hops away and a member that joins
// later, on the same host as the run-state topic (one gossip router); a
// manifest signed with another key stops at the first hop; a node in
// another group never sees it.
func TestGroupGossip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, forger, _ := ed25519.GenerateKey(rand.Reader)
	psk := testSecret(t)
	ha, hb, hc := newTestHost(t, psk), newTestHost(t, psk), newTestHost(t, psk)
	joinRunState(t, ha, pub)
	a, b, c := joinGroup(t, ha, pub), joinGroup(t, hb, pub), joinGroup(t, hc, pub)
	stranger := joinGroup(t, newTestHost(t, psk), otherPub)
	mustConnect(t, a.h, b.h)
	mustConnect(t, b.h, c.h)
	mustConnect(t, stranger.h, b.h)
	testkit.Eventually(t, 10*time.Second, "topic meshes", func() bool { return a.ch.Peers() == 1 && c.ch.Peers() == 1 })

	raw, err := os.ReadFile("testdata/group-manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := group.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Serial = 40
	forged, _ := group.Sign(m, forger)
	if err := a.ch.Publish(testCtx(t), forged); err != nil {
		t.Fatal(err)
	}
	m.Serial = 3
	signedM, _ := group.Sign(m, priv)
	if _, err := a.tr.Offer(signedM); err != nil {
		t.Fatal(err)
	}
	if err := a.ch.Publish(testCtx(t), signedM); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "the manifest two hops away", func() bool { return manifestSerial(c) == 3 })
	if manifestSerial(b) != 3 {
		t.Errorf("middle node has serial %d", manifestSerial(b))
	}
	late := joinGroup(t, newTestHost(t, psk), pub)
	mustConnect(t, late.h, c.h)
	testkit.Eventually(t, 15*time.Second, "the manifest at a member that joined later", func() bool { return manifestSerial(late) == 3 })
	if _, _, ok := stranger.tr.Current(); ok {
		t.Error("a node of another group holds this group's manifest")
	}
}

// On the directory topic the receiver learns each document's author (the
// peer that published it, not the neighbour that relayed it), and a
// document it does not keep (signed.ErrNotKept) is not passed on while
// the sender's later documents still are.
func TestGroupDirectoryOfferFromAuthorAndNotKept(t *testing.T) {
	psk := testSecret(t)
	ha, hb, hc := newTestHost(t, psk), newTestHost(t, psk), newTestHost(t, psk)
	type heard struct{ author, doc string }
	var mu sync.Mutex
	var atB, atC []heard
	join := func(h *Host, offer func(author string, raw []byte) error) *SignedTopic {
		ch, err := h.JoinGroupDirectory(SignedTopicConfig{OfferFrom: offer, Current: func() []byte { return nil }, RepublishInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ch.Close() })
		return ch
	}
	a := join(ha, func(string, []byte) error { return nil })
	b := join(hb, func(author string, raw []byte) error {
		mu.Lock()
		defer mu.Unlock()
		atB = append(atB, heard{author, string(raw)})
		if string(raw) == "not kept" {
			return fmt.Errorf("%w: a bound", signed.ErrNotKept)
		}
		return nil
	})
	c := join(hc, func(author string, raw []byte) error {
		mu.Lock()
		defer mu.Unlock()
		atC = append(atC, heard{author, string(raw)})
		return nil
	})
	mustConnect(t, ha, hb)
	mustConnect(t, hb, hc)
	testkit.Eventually(t, 10*time.Second, "topic meshes", func() bool { return a.Peers() == 1 && b.Peers() == 2 && c.Peers() == 1 })
	// A publication made while the mesh still forms can be lost, so each
	// round sends both again, as republishing does.
	testkit.Eventually(t, 20*time.Second, "the kept document at C", func() bool {
		for _, doc := range []string{"not kept", "kept"} {
			if err := a.Publish(testCtx(t), []byte(doc)); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return len(atC) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	want := ha.host.ID().String()
	for _, h := range atB {
		if h.author != want {
			t.Errorf("at B: %+v, want every document from %s", h, want)
		}
	}
	for _, h := range atC {
		if h != (heard{want, "kept"}) {
			t.Errorf("at C: %+v, want only the kept document, from its author %s", h, want)
		}
	}
}
