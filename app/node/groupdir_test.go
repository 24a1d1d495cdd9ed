package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/signed"
	"github.com/coralcdn/coral/test/testkit"
	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// madeUpGroup is a group key and its announcement at serial 1.
type madeUpGroup struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	ann  []byte
}

func (g madeUpGroup) id() string { return group.ID(g.pub) }

func (g madeUpGroup) announce(t testing.TB, m group.Manifest) []byte {
	raw, err := group.Sign(m, g.priv)
	if err != nil {
		t.Fatal(err)
	}
	return group.Announce(group.FormatPublicKey(g.pub), raw)
}

func newMadeUpGroup(t testing.TB, m group.Manifest) madeUpGroup {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	g := madeUpGroup{pub: pub, priv: priv}
	g.ann = g.announce(t, m)
	return g
}

// randomPeerID is a made-up libp2p peer ID (a manifest checks only the form).
func randomPeerID() string {
	const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	b := []byte("12D3KooW")
	for len(b) < 52 {
		b = append(b, b58[rand.IntN(len(b58))])
	}
	return string(b)
}

// largestManifest is a valid manifest at the limits: 64 sites, 256 member
// nodes (an announcement of about 34 KB).
func largestManifest(serial uint64) group.Manifest {
	m := group.Manifest{Name: "flood", Serial: serial}
	for i := range group.MaxSites {
		m.Sites = append(m.Sites, group.Site{Host: fmt.Sprintf("s%02d.flood.example", i), Origin: "http://origin.flood.example", Weight: 1})
	}
	for range group.MaxMembers {
		m.Members = append(m.Members, group.Member{Peer: randomPeerID(), UploadMbps: 1})
	}
	return m
}

func smallManifest(serial uint64) group.Manifest {
	return group.Manifest{Name: "small blogs", Serial: serial,
		Sites: []group.Site{{Host: "www.site.org", Origin: "http://origin.site.net", Weight: 1}}}
}

// answers reports whether the node maps a group's site's self-certifying
// name (the proxy's and DNS's lookup).
func answers(n *Node, groupID string) bool {
	_, ok := n.siteMembers("www.site.org." + groupID)
	return ok
}

// The directory takes other groups' manifests signed by the key their ID
// names, and refuses forged or stale ones.
func TestGroupDirectoryTakesSignedRefusesForgedAndStale(t *testing.T) {
	n := startNode(t, testConfig(t))
	g := newMadeUpGroup(t, smallManifest(2))
	if err := n.offerAnnouncement("peerA", g.ann); err != nil {
		t.Fatal(err)
	}
	if !answers(n, g.id()) {
		t.Error("directory site not answered")
	}
	if _, ok := n.siteMembers("www.site.org"); ok {
		t.Error("a directory group claimed the bare name")
	}
	otherPub, _ := operatorKeys(t)
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"the same again", g.ann, signed.ErrNotNewer},
		{"the same from another peer", g.ann, signed.ErrNotNewer},
		{"older serial", g.announce(t, smallManifest(1)), signed.ErrNotNewer},
		{"forged", group.Announce(group.FormatPublicKey(otherPub), signManifest(t, smallManifest(1), g.priv)), signed.ErrBadSignature},
		{"garbage", []byte("\xff{"), signed.ErrMalformed},
	} {
		if err := n.offerAnnouncement("peerB", tc.raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// One sender's made-up groups take at most its share of the directory, by
// count and by bytes; the rest is ignored (not rejected: gossip flows on),
// and a real group announced by another peer is still taken and answered.
func TestGroupDirectoryOneSendersShare(t *testing.T) {
	for _, tc := range []struct {
		name     string
		manifest func(uint64) group.Manifest
		maxKept  int
	}{
		{"many small groups", smallManifest, maxDirectoryGroups / dirSenderShare},
		{"groups at the limits", largestManifest, maxDirectoryBytes / dirSenderShare / 30000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, testConfig(t))
			n.groups.mu.Lock()
			n.groups.dir.every = rate.Inf // the share, not the rate, is under test
			n.groups.mu.Unlock()
			kept := 0
			for i := range maxDirectoryGroups / 4 {
				err := n.offerAnnouncement("rogue", newMadeUpGroup(t, tc.manifest(1)).ann)
				switch {
				case err == nil:
					kept++
				case !errors.Is(err, signed.ErrNotKept):
					t.Fatalf("flood announcement %d: %v, want it ignored (not kept)", i, err)
				}
			}
			if kept == 0 || kept > tc.maxKept {
				t.Errorf("kept %d of one sender's groups, want 1..%d", kept, tc.maxKept)
			}
			real := newMadeUpGroup(t, smallManifest(1))
			if err := n.offerAnnouncement("honest", real.ann); err != nil || !answers(n, real.id()) {
				t.Errorf("a real group after the flood: %v, answered: %v", err, answers(n, real.id()))
			}
		})
	}
}

// A full directory makes room for a newcomer by dropping a group of the
// sender holding the most, never a group several peers announce; when all
// are such groups, the newcomer is ignored.
func TestGroupDirectoryFullKeepsGroupsSeveralPeersAnnounce(t *testing.T) {
	n := startNode(t, testConfig(t))
	n.groups.mu.Lock()
	n.groups.dir.every = rate.Inf
	n.groups.mu.Unlock()
	perSender := maxDirectoryGroups / dirSenderShare
	var vouched []madeUpGroup // announced by two peers
	for s := range dirSenderShare {
		for i := range perSender {
			g := newMadeUpGroup(t, smallManifest(1))
			if err := n.offerAnnouncement(fmt.Sprintf("sybil%d", s), g.ann); err != nil {
				t.Fatalf("sender %d group %d: %v", s, i, err)
			}
			if s == 0 && i < 10 {
				n.offerAnnouncement("witness", g.ann) // not newer: only heard
				vouched = append(vouched, g)
			}
		}
	}
	newcomer := newMadeUpGroup(t, smallManifest(1))
	if err := n.offerAnnouncement("honest", newcomer.ann); err != nil || !answers(n, newcomer.id()) {
		t.Fatalf("a newcomer at a full directory: %v", err)
	}
	for _, g := range vouched {
		if !answers(n, g.id()) {
			t.Errorf("group %s, announced by two peers, was dropped", g.id())
		}
	}
	n.groups.mu.Lock()
	groups := len(n.groups.dir.entries)
	for _, e := range n.groups.dir.entries {
		e.authors = []string{"a", "b"}
	}
	n.groups.mu.Unlock()
	if groups != maxDirectoryGroups {
		t.Errorf("%d groups, want the directory full at %d", groups, maxDirectoryGroups)
	}
	late := newMadeUpGroup(t, smallManifest(1))
	if err := n.offerAnnouncement("honest2", late.ann); !errors.Is(err, signed.ErrNotKept) || answers(n, late.id()) {
		t.Errorf("a newcomer when every group is vouched for: %v, want it ignored", err)
	}
}

// A sender is heard at a bounded rate; another sender is not held back.
func TestGroupDirectorySenderRate(t *testing.T) {
	n := startNode(t, testConfig(t))
	refused := 0
	for range dirSenderBurst + 10 {
		if err := n.offerAnnouncement("rogue", newMadeUpGroup(t, smallManifest(1)).ann); errors.Is(err, signed.ErrNotKept) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused < 5 {
		t.Errorf("%d of %d announcements sent at once were ignored, want the burst (%d) kept and the rest ignored", refused, dirSenderBurst+10, dirSenderBurst)
	}
	if g := newMadeUpGroup(t, smallManifest(1)); n.offerAnnouncement("honest", g.ann) != nil {
		t.Error("another sender held back by the rogue's rate")
	}
}

// A group nobody re-announces leaves the directory; one re-announced stays.
func TestGroupDirectoryExpires(t *testing.T) {
	n := startNodeWith(t, testConfig(t), Options{RunStateRepublish: 50 * time.Millisecond})
	n.groups.mu.Lock()
	n.groups.dir.every = rate.Inf
	n.groups.mu.Unlock()
	gone, kept := newMadeUpGroup(t, smallManifest(1)), newMadeUpGroup(t, smallManifest(1))
	for _, g := range []madeUpGroup{gone, kept} {
		if err := n.offerAnnouncement("peerA", g.ann); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for answers(n, gone.id()) {
		if time.Now().After(deadline) {
			t.Fatal("a group nobody re-announced is still answered")
		}
		n.offerAnnouncement("peerB", kept.ann) // its members' republish
		time.Sleep(10 * time.Millisecond)      // the pace of the republish, not a wait for the result
	}
	if !answers(n, kept.id()) {
		t.Error("a re-announced group expired")
	}
}

// The highest serial seen survives a restart: a member replaying a
// group's older (validly signed) manifest cannot roll its names back.
func TestGroupDirectoryNoRollbackAfterRestart(t *testing.T) {
	g := newMadeUpGroup(t, siteManifest(t, 5, "http://new-origin.example"))
	old := g.announce(t, siteManifest(t, 1, "http://old-origin.example"))
	cfg := testConfig(t)
	n := startNode(t, cfg)
	if err := n.offerAnnouncement("peerA", g.ann); err != nil {
		t.Fatal(err)
	}
	if err := n.offerAnnouncement("peerB", old); !errors.Is(err, signed.ErrNotNewer) {
		t.Fatalf("replay accepted while running: %v", err)
	}
	n.Close()
	if _, err := os.Stat(n.dirSerialsPath()); err != nil {
		t.Fatalf("serials not on disk at close: %v", err)
	}
	n2 := startNode(t, cfg)
	if err := n2.offerAnnouncement("peerB", old); !errors.Is(err, signed.ErrNotNewer) {
		t.Errorf("after a restart, serial 1 replayed over serial 5: %v", err)
	}
	if o, ok := n2.siteOrigin("www.site.org." + g.id()); ok {
		t.Errorf("after the replay the name maps to %s", o.Host)
	}
	if err := n2.offerAnnouncement("peerA", g.ann); err != nil {
		t.Fatalf("serial 5 again after the restart: %v", err)
	}
	if o, _ := n2.siteOrigin("www.site.org." + g.id()); o.Host != "new-origin.example" {
		t.Errorf("after serial 5 again the name maps to %q", o.Host)
	}
}

// A damaged serials file is reported and does not stop the node.
func TestGroupDirectoryDamagedSerialsFile(t *testing.T) {
	cfg := testConfig(t)
	path := cfg.Path(groupsDir)
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"/"+dirSerialsFile, []byte("{\"serials\": 7"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg)
	if err := n.offerAnnouncement("peerA", newMadeUpGroup(t, smallManifest(1)).ann); err != nil {
		t.Errorf("with a damaged serials file: %v", err)
	}
}

func FuzzParseDirSerials(f *testing.F) {
	f.Add([]byte(`{"serials":{"gabc":{"serial":5,"seen":"2026-12-07T00:00:00Z"}}}`))
	f.Add([]byte(`{"serials":null}`))
	f.Add([]byte(`{"serials":{"x":{"serial":-1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		floors, err := parseDirSerials(b)
		if err == nil && len(floors) > maxDirFloors {
			t.Errorf("%d floors accepted", len(floors))
		}
	})
}

// Over real gossip: a member floods the directory topic with made-up
// groups at the limits; another node still takes a real group announced
// after the flood, and its DNS answers the group site's CNAME target.
func TestGroupDirectoryFloodOverGossip(t *testing.T) {
	rogue := startNode(t, testConfig(t))
	_, invite := controlDo(t, rogue, "GET", "/api/invite", nil)
	var nodes []*Node
	for range 2 {
		cfg := testConfig(t)
		if _, err := Join(cfg, strings.TrimSpace(invite)); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, startNode(t, cfg))
	}
	b, c := nodes[0], nodes[1]
	for _, n := range []*Node{rogue, b, c} {
		testkit.Eventually(t, 20*time.Second, "the directory topic linked", func() bool { return n.groups.dirTopic.Peers() > 0 })
	}
	const flood = 200
	for i := range flood {
		if err := rogue.groups.dirTopic.Publish(t.Context(), newMadeUpGroup(t, largestManifest(1)).ann); err != nil {
			t.Fatalf("flood %d: %v", i, err)
		}
	}
	testkit.Eventually(t, 20*time.Second, "the flood's burst kept at B", func() bool {
		b.groups.mu.Lock()
		defer b.groups.mu.Unlock()
		return len(b.groups.dir.entries) >= dirSenderBurst/2
	})
	real := newMadeUpGroup(t, siteManifest(t, 1, "http://origin.site.net", b.nodeID))
	if err := c.groups.dirTopic.Publish(t.Context(), real.ann); err != nil {
		t.Fatal(err)
	}
	qualified := "www.site.org." + real.id() + ".localhost."
	testkit.Eventually(t, 20*time.Second, "B's DNS answering the real group's name", func() bool {
		m := new(dns.Msg)
		m.SetQuestion(qualified, dns.TypeA)
		r, _, err := new(dns.Client).Exchange(m, b.Addrs().DNS)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	})
	b.groups.mu.Lock()
	kept := len(b.groups.dir.entries) - 1
	b.groups.mu.Unlock()
	t.Logf("B kept %d of the rogue's %d groups", kept, flood)
	if kept > maxDirectoryGroups/dirSenderShare {
		t.Errorf("B kept %d of one sender's groups, its share is %d", kept, maxDirectoryGroups/dirSenderShare)
	}
}
