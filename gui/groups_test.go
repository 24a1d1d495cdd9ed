package gui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"github.com/coralcdn/coral/app/control"
)

// groupNode is a node with live settings that joins site groups as POST
// /api/groups/join does: a key it cannot parse or a manifest not signed by
// it is refused.
type groupNode struct {
	*fakeNode
	joins []string
}

func (g *groupNode) JoinGroup(_ context.Context, key string, manifest []byte) error {
	if key == "ed25519:notakey" {
		return errors.New("control: 400 Bad Request: group: not an Ed25519 public key")
	}
	if strings.Contains(string(manifest), "forged") {
		return errors.New("control: 400 Bad Request: control: manifest: group: bad signature")
	}
	g.joins = append(g.joins, fmt.Sprintf("%s %s", key, manifest))
	g.st.Groups = append(g.st.Groups, control.Group{ID: "g1", Key: key, Name: "blogs", Serial: 3,
		Members: []control.GroupMember{{Peer: "12D3KooWAlice"}, {Peer: "12D3KooWBob"}}, Sites: []control.GroupSite{{Host: "www.a.org"}}})
	return nil
}

func newGroupView(t *testing.T) (*View, *groupNode) {
	test.NewTempApp(t)
	node := &groupNode{fakeNode: newFakeNode()}
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	if v.groups == nil {
		t.Fatal("no Groups settings for a node that joins groups")
	}
	return v, node
}

// Settings → Groups: invalid input gets a message at its field and nothing
// is sent; a valid key and manifest are sent and the group is listed.
func TestJoinGroupFromSettings(t *testing.T) {
	for _, c := range []struct {
		name, key, manifest string
		field               func(g *groupsBox) string
		want                string
	}{
		{"empty key", "", "", func(g *groupsBox) string { return g.keyErr.Text }, "starts with \"ed25519:\""},
		{"not a key", "AAAA", "", func(g *groupsBox) string { return g.keyErr.Text }, "starts with \"ed25519:\""},
		{"manifest not JSON", "ed25519:abc", "hello", func(g *groupsBox) string { return g.manErr.Text }, "not a signed manifest"},
		{"key refused by the node", "ed25519:notakey", "", func(g *groupsBox) string { return g.keyErr.Text }, "not an Ed25519 public key"},
		{"manifest refused by the node", "ed25519:abc", `{"forged":true}`, func(g *groupsBox) string { return g.manErr.Text }, "bad signature"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, node := newGroupView(t)
			ui := newUILoop(t)
			g := v.groups
			test.Type(g.key, c.key)
			g.manifest.SetText(c.manifest)
			test.Tap(g.join)
			ui.until(t, "the join answered", func() bool { return !g.join.Disabled() })
			if got := c.field(g); !strings.Contains(got, c.want) {
				t.Errorf("message at the field %q, want %q", got, c.want)
			}
			if len(node.joins) != 0 || len(node.st.Groups) != 0 || !strings.Contains(g.list.Text, "no site group") {
				t.Errorf("refused input joined: %v; list %q", node.joins, g.list.Text)
			}
		})
	}
	v, node := newGroupView(t)
	g := v.groups
	test.Type(g.key, "ed25519:AbCd")
	g.manifest.SetText(`{"manifest":"…","sig":"…"}`)
	ui := newUILoop(t)
	test.Tap(g.join)
	ui.until(t, "the join answered", func() bool { return !g.join.Disabled() })
	v.Refresh(context.Background()) // what the kick to Follow does
	if len(node.joins) != 1 || node.joins[0] != `ed25519:AbCd {"manifest":"…","sig":"…"}` {
		t.Fatalf("joins %q; key error %q, manifest error %q", node.joins, g.keyErr.Text, g.manErr.Text)
	}
	if !strings.Contains(g.msg.Text, "Joined") || g.key.Text != "" {
		t.Errorf("after joining: message %q, key field %q", g.msg.Text, g.key.Text)
	}
	for _, want := range []string{"blogs", "serial 3", "2 member nodes", "1 sites"} {
		if !strings.Contains(g.list.Text, want) {
			t.Errorf("group list %q lacks %q", g.list.Text, want)
		}
	}
}

// Settings → Cache: the size is applied through the API; a bad size or a
// relative location is refused at its field and nothing is applied.
func TestCacheSettingsFromWindow(t *testing.T) {
	v, node := newSettingsView(t)
	b := v.budget
	if b.size.Text != "4GiB" || b.dataDir.Text != "/var/lib/coral" {
		t.Fatalf("cache fields show %q, %q", b.size.Text, b.dataDir.Text)
	}
	b.size.SetText("20GiB")
	b.dataDir.SetText("/srv/coral")
	b.apply(context.Background())
	want := `{"cache":{"data_dir":"/srv/coral","max_bytes":"20GiB"}}`
	if last := node.patches[len(node.patches)-1]; last != want || b.result.Text != "Applied and saved." {
		t.Fatalf("patch %s (want %s), result %q", last, want, b.result.Text)
	}
	for _, c := range []struct {
		name, size, dir, field, want string
		sent                         bool
	}{
		{"size not a size", "lots", "/srv/coral", "cache.max_bytes", "not a size", true},
		{"relative location", "20GiB", "coral-data", "cache.data_dir", "absolute directory", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, sent := clone(node.settings), len(node.patches)
			b.size.SetText(c.size)
			b.dataDir.SetText(c.dir)
			b.apply(context.Background())
			if got := b.errs[c.field].Text; !strings.Contains(got, c.want) {
				t.Errorf("message at %s %q, want %q (general %q)", c.field, got, c.want, b.general.Text)
			}
			if fmt.Sprint(node.settings) != fmt.Sprint(before) {
				t.Errorf("refused change applied: %v", node.settings)
			}
			if (len(node.patches) > sent) != c.sent {
				t.Errorf("sent to the node: %v, want %v", len(node.patches) > sent, c.sent)
			}
		})
	}
}

// The Sites tab shows the group ledger when the node is in a group, and
// nothing of it when not.
func TestSitesTabShowsGroupLedger(t *testing.T) {
	test.NewTempApp(t)
	st := busyNode()
	v := NewView(&fakeAPI{st: st}, Info{})
	v.Refresh(context.Background())
	if v.sites.ledger.Visible() {
		t.Fatalf("ledger shown for a node in no group: %q", v.sites.ledger.Text)
	}
	st.Groups = []control.Group{{Key: "ed25519:xyz", Name: "blogs", Serial: 7, Ledger: []control.LedgerRow{
		{Peer: "12D3KooWAliceAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", P95Day: 2 << 20, P95Month: 1 << 20,
			Sites: map[string]int64{"www.a.org": 5 << 30, "www.b.org": 1 << 30}, Contributed: 1 << 30, Received: 0},
		{Peer: "12D3KooWBobBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", P95Day: 512 << 10, P95Month: 256 << 10,
			Sites: map[string]int64{"www.b.org": 3 << 30}, Contributed: 0, Received: 1 << 30},
	}}}
	v = NewView(&fakeAPI{st: st}, Info{})
	v.Refresh(context.Background())
	text := v.sites.ledger.Text
	if !v.sites.ledger.Visible() {
		t.Fatal("ledger hidden for a node in a group")
	}
	alice, bob := control.NodeName(st.Groups[0].Ledger[0].Peer), control.NodeName(st.Groups[0].Ledger[1].Peer)
	for _, want := range []string{"blogs (serial 7)", alice, bob, "2.0MiB/s", "1.0MiB/s", "512KiB/s", "1.0GiB",
		"  www.a.org\n    " + fmt.Sprintf("%-16s %10s", alice, "5.0GiB"),
		"  www.b.org\n    " + fmt.Sprintf("%-16s %10s", alice, "1.0GiB") + "\n    " + fmt.Sprintf("%-16s %10s", bob, "3.0GiB")} {
		if !strings.Contains(text, want) {
			t.Errorf("ledger lacks %q:\n%s", want, text)
		}
	}
}

// joiningNode adds joining groups to a node with usage (the pictures'
// node).
type joiningNode struct{ *usageNode }

func (joiningNode) JoinGroup(context.Context, string, []byte) error { return nil }

// sampleGroups is a group of three member nodes, for the pictures.
func sampleGroups() []control.Group {
	alice, bob, carol := "12D3KooWAliceAAAAAAAAAAAAAAAAAAAAAAAAAAA", "12D3KooWBobBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "12D3KooWCarolCCCCCCCCCCCCCCCCCCCCCCCCCC"
	return []control.Group{{Key: "ed25519:qVm6NaDqKtrvbr8qRQdK_ICHOLV", Name: "small-blogs", Serial: 4, Member: true, Peers: 2,
		Members: []control.GroupMember{{Peer: alice}, {Peer: bob}, {Peer: carol}},
		Sites:   []control.GroupSite{{Host: "www.example.com"}, {Host: "news.example.org"}, {Host: "blog.example.net"}},
		Ledger: []control.LedgerRow{
			{Peer: alice, P95Day: 900 << 10, P95Month: 700 << 10, Sites: map[string]int64{"www.example.com": 30 << 30, "news.example.org": 2 << 30}, Contributed: 2 << 30, Received: 5 << 30},
			{Peer: bob, P95Day: 800 << 10, P95Month: 650 << 10, Sites: map[string]int64{"news.example.org": 8 << 30, "www.example.com": 4 << 30}, Contributed: 4 << 30, Received: 2 << 30},
			{Peer: carol, P95Day: 750 << 10, P95Month: 600 << 10, Sites: map[string]int64{"blog.example.net": 6 << 30, "www.example.com": 1 << 30}, Contributed: 1 << 30, Received: 0},
		}}}
}

// The Groups tab says which site a conflict with another group stops, and
// what to do; undisputed sites add nothing to the group's line.
func TestGroupLineShowsDisputedSite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sites []control.GroupSite
		want  []string
		not   string
	}{
		{"undisputed", []control.GroupSite{{Host: "www.a.org"}}, []string{"1 sites"}, "not served"},
		{"disputed", []control.GroupSite{{Host: "www.a.org"}, {Host: "www.site.org", Conflict: "site groups gy and gx all list www.site.org"}},
			[]string{"2 sites", "\n    www.site.org not served: site groups gy and gx all list www.site.org"}, "www.a.org not served"},
	} {
		line := groupLine(control.Group{Key: "ed25519:k", Name: "blogs", Serial: 2, Sites: tc.sites})
		for _, w := range tc.want {
			if !strings.Contains(line, w) {
				t.Errorf("%s: %q lacks %q", tc.name, line, w)
			}
		}
		if strings.Contains(line, tc.not) {
			t.Errorf("%s: %q says %q", tc.name, line, tc.not)
		}
	}
}
