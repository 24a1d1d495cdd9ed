package gui

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
	"github.com/dustin/go-humanize"
)

// groupsAPI is what the Settings tab needs to join site groups:
// control.Client's JoinGroup (POST /api/groups/join, with the token). The
// groups the node is in come with its status.
type groupsAPI interface {
	JoinGroup(ctx context.Context, key string, manifest []byte) error
}

// groupsBox lists the node's site groups and joins one from a pasted
// public key and (optionally) a signed manifest.
type groupsBox struct {
	api            groupsAPI
	list           *widget.Label
	key, manifest  *widget.Entry
	keyErr, manErr *widget.Label
	msg            *widget.Label
	join           *widget.Button
	content        fyne.CanvasObject
	onJoined       func() // refreshes the status, so the list shows the group
}

func newGroupsBox(api groupsAPI) *groupsBox {
	g := &groupsBox{api: api, list: wrapped("This node is in no site group."), key: widget.NewEntry(),
		manifest: widget.NewMultiLineEntry(), keyErr: errLabel(), manErr: errLabel(), msg: wrapped("")}
	g.key.SetPlaceHolder("the group's public key, ed25519:…")
	g.manifest.SetPlaceHolder("the signed manifest (group.signed); may stay empty")
	g.manifest.Wrapping = fyne.TextWrapWord
	g.manifest.SetMinRowsVisible(3)
	g.join = widget.NewButton("Join group", func() { g.joinGroup(context.Background()) })
	g.content = container.NewVBox(
		widget.NewLabel("Site groups pool their nodes' upload for each other's sites."),
		g.list,
		heading("Join a group"), g.key, g.keyErr, g.manifest, g.manErr,
		container.NewHBox(g.join), g.msg)
	return g
}

// show lists the groups of st: name, serial, member nodes and sites.
func (g *groupsBox) show(st control.Status) {
	if len(st.Groups) == 0 {
		g.list.SetText("This node is in no site group.")
		return
	}
	var lines []string
	for _, gr := range st.Groups {
		lines = append(lines, groupLine(gr))
	}
	g.list.SetText(strings.Join(lines, "\n"))
}

func groupLine(gr control.Group) string {
	if gr.Serial == 0 {
		why := cmpOr(gr.Why, "waiting for the manifest from the group's members")
		return fmt.Sprintf("%s: no manifest yet (%s)", shortKey(gr.Key), why)
	}
	role := "this node is not one of its member nodes"
	if gr.Member {
		role = "this node is a member node"
	}
	line := fmt.Sprintf("%s · serial %d · %d member nodes, %d sites · %s · hears %d members",
		cmpOr(gr.Name, shortKey(gr.Key)), gr.Serial, len(gr.Members), len(gr.Sites), role, gr.Peers)
	for _, s := range gr.Sites {
		if s.Conflict != "" { // two of the node's groups list it: served by neither
			line += "\n    " + s.Host + " not served: " + s.Conflict
		}
	}
	return line
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func shortKey(k string) string {
	if len(k) > 20 {
		return k[:20] + "…"
	}
	return k
}

// joinGroup checks what was pasted, then asks the node; a key or manifest
// it cannot use gets a message next to its field and nothing is sent.
func (g *groupsBox) joinGroup(ctx context.Context) {
	g.keyErr.SetText("")
	g.manErr.SetText("")
	g.msg.SetText("")
	key := strings.TrimSpace(g.key.Text)
	manifest := []byte(strings.TrimSpace(g.manifest.Text))
	ok := true
	if !strings.HasPrefix(key, "ed25519:") || len(key) == len("ed25519:") {
		g.keyErr.SetText(`Paste the group's public key: it starts with "ed25519:".`)
		ok = false
	}
	if len(manifest) > 0 && !json.Valid(manifest) {
		g.manErr.SetText("This is not a signed manifest: paste the whole file (JSON) `coral group init` or `coral group sign` wrote, or leave it empty.")
		ok = false
	}
	if !ok {
		return
	}
	var err error
	inBackground(g.join, g.msg, "Joining…", func() { err = g.api.JoinGroup(ctx, key, manifest) }, func() {
		g.msg.SetText("")
		switch {
		case noAnswer(err):
			g.keyErr.SetText(noAnswerText + err.Error())
		case err != nil:
			g.showRefusal(err)
		default:
			g.key.SetText("")
			g.manifest.SetText("")
			g.msg.SetText("Joined: the node is in the group now and at every start.")
			if g.onJoined != nil {
				g.onJoined()
			}
		}
	})
}

// showRefusal puts the node's refusal next to the field it is about.
func (g *groupsBox) showRefusal(err error) {
	msg := "Not joined: " + err.Error()
	if strings.Contains(err.Error(), "manifest") {
		g.manErr.SetText(msg)
		return
	}
	g.keyErr.SetText(msg)
}

// ledgerText words the group ledgers of st for the Sites tab: per member
// node its upload 95th percentiles, bytes contributed and received, then
// per site the bytes each member served. "" when the node is in no group.
func ledgerText(groups []control.Group) string {
	var b strings.Builder
	for _, gr := range groups {
		if gr.Serial == 0 {
			continue
		}
		fmt.Fprintf(&b, "Group %s (serial %d)\n", cmpOr(gr.Name, shortKey(gr.Key)), gr.Serial)
		if len(gr.Ledger) == 0 {
			b.WriteString("  No member has published its figures yet.\n\n")
			continue
		}
		fmt.Fprintf(&b, "  %-16s %10s %10s %11s %10s\n", "Member", "p95 day", "p95 month", "Contributed", "Received")
		sites := map[string]bool{}
		for _, r := range gr.Ledger {
			fmt.Fprintf(&b, "  %-16s %10s %10s %11s %10s\n", control.NodeName(r.Peer),
				rate(r.P95Day), rate(r.P95Month), bytesOf(r.Contributed), bytesOf(r.Received))
			for s := range r.Sites {
				sites[s] = true
			}
		}
		hosts := make([]string, 0, len(sites))
		for s := range sites {
			hosts = append(hosts, s)
		}
		sort.Strings(hosts)
		if len(hosts) > 0 {
			b.WriteString("  Bytes per site this month, by member:\n")
		}
		for _, h := range hosts {
			fmt.Fprintf(&b, "  %s\n", h)
			for _, r := range gr.Ledger {
				if n := r.Sites[h]; n > 0 {
					fmt.Fprintf(&b, "    %-16s %10s\n", control.NodeName(r.Peer), bytesOf(n))
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func rate(bps int64) string  { return bytesOf(bps) + "/s" }
func bytesOf(n int64) string { return strings.ReplaceAll(humanize.IBytes(uint64(max(n, 0))), " ", "") }
