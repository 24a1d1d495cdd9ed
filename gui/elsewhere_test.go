package gui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/coralcdn/coral/app/control"
)

// siteAOnly is a node whose settings weigh one site, a.example.
func siteAOnly(t *testing.T) (*View, *fakeNode) {
	test.NewTempApp(t)
	node := newFakeNode()
	node.settings["sites"] = []any{map[string]any{"host": "a.example", "weight": 1.0}}
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	return v, node
}

// changeElsewhere is another client's PUT: site b and an upload cap.
func changeElsewhere(node *fakeNode) {
	node.settings["sites"] = []any{map[string]any{"host": "a.example", "weight": 1.0}, map[string]any{"host": "b.example", "weight": 2.0}}
	node.settings["bandwidth"].(map[string]any)["upload"] = "5MiB/s"
	node.settings["bandwidth"].(map[string]any)["download"] = "1MiB/s"
}

// A change made elsewhere shows at the next refresh in every field the
// volunteer is not editing; a field being edited keeps their text; Apply
// then keeps the other client's site.
func TestSettingsChangedElsewhereShowAtRefresh(t *testing.T) {
	v, node := siteAOnly(t)
	b := v.budget
	b.down.entry.SetText("7MiB/s") // being edited
	changeElsewhere(node)
	v.Refresh(context.Background()) // a Follow tick
	if b.upload.entry.Text != "5MiB/s" || capSteps[int(b.upload.slider.Value)] != "5MiB/s" {
		t.Errorf("upload shows %q at stop %v, the node has 5MiB/s", b.upload.entry.Text, b.upload.slider.Value)
	}
	if b.down.entry.Text != "7MiB/s" {
		t.Errorf("the download being edited became %q", b.down.entry.Text)
	}
	if len(b.sites.hosts) != 2 || b.sites.hosts[1].Text != "b.example" {
		t.Fatalf("site weights not reloaded: %d rows", len(b.sites.hosts))
	}
	b.sites.weights[0].SetText("3")
	b.apply(context.Background())
	if got := fmt.Sprint(node.get("sites")); got != "[map[host:a.example weight:3] map[host:b.example weight:2]]" || b.result.Text != "Applied and saved." {
		t.Errorf("node's sites %s (%q %q)", got, b.result.Text, b.general.Text)
	}
	if bw := node.get("bandwidth").(map[string]any); bw["upload"] != "5MiB/s" || bw["download"] != "7MiB/s" {
		t.Errorf("node's caps %v", bw)
	}
}

// Apply before any refresh saw the other change: a list that changed on
// the node is not sent over it; the form reloads and says so.
func TestApplyDoesNotWipeListsChangedElsewhere(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(b *budgetForm)
	}{
		{"site weights", func(b *budgetForm) { b.sites.weights[0].SetText("3") }},
		{"schedule", func(b *budgetForm) {
			up := "1MiB/s"
			b.sched.set([]windowDoc{{Days: []string{"mon"}, From: "08:00", To: "18:00", Upload: &up}})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, node := siteAOnly(t)
			b := v.budget
			c.edit(b)
			changeElsewhere(node)
			node.settings["bandwidth"].(map[string]any)["schedule"] = []any{map[string]any{"days": []any{"sun"}, "from": "00:00", "to": "24:00", "upload": "off"}}
			b.apply(context.Background())
			if len(node.patches) != 0 {
				t.Errorf("sent over the other change: %v", node.patches)
			}
			if !strings.Contains(b.general.Text, "changed elsewhere: reloaded, check and apply again") || b.result.Text == "Applied and saved." {
				t.Errorf("said %q / %q", b.general.Text, b.result.Text)
			}
			if len(b.sites.hosts) != 2 || b.upload.entry.Text != "5MiB/s" || len(b.sched.list) != 1 || b.sched.list[0].Days[0] != "sun" {
				t.Errorf("form not reloaded: %d sites, upload %q, schedule %v", len(b.sites.hosts), b.upload.entry.Text, b.sched.list)
			}
			b.sites.weights[0].SetText("3")
			b.apply(context.Background())
			if got := fmt.Sprint(node.get("sites")); got != "[map[host:a.example weight:3] map[host:b.example weight:2]]" {
				t.Errorf("second apply: node's sites %s (%q)", got, b.general.Text)
			}
		})
	}
}

// A pause made elsewhere moves the tray's item and the Settings box at the
// next refresh; one click then resumes.
func TestPauseMadeElsewhereIsFollowed(t *testing.T) {
	a := test.NewTempApp(t)
	ui := newUILoop(t)
	node := newFakeNode()
	node.st.Budget = &control.BudgetStatus{Serving: true}
	d := newShell(a, node, Info{}, true)
	d.trayMenu()
	d.view.Refresh(context.Background())
	node.settings["paused"] = true
	node.st.Budget = &control.BudgetStatus{Reason: "paused"}
	d.view.Refresh(context.Background())
	if d.pause.Label != "Resume serving" || !d.view.budget.paused.Checked {
		t.Fatalf("after a pause elsewhere: item %q, box %v", d.pause.Label, d.view.budget.paused.Checked)
	}
	d.pause.Action()
	ui.until(t, "the resume", func() bool { return !d.pending })
	if node.get("paused") != false || d.pause.Label != "Pause serving" || d.view.budget.paused.Checked {
		t.Errorf("one click: node paused %v, item %q, box %v", node.get("paused"), d.pause.Label, d.view.budget.paused.Checked)
	}
	// A box the volunteer ticked and has not applied is left alone.
	test.Tap(d.view.budget.paused)
	d.view.Refresh(context.Background())
	if !d.view.budget.paused.Checked {
		t.Errorf("a refresh undid the volunteer's tick")
	}
}

// If the first read of the settings fails, Apply waits and the next
// refresh reads them again.
func TestSettingsReadAgainAfterAFailedFirstRead(t *testing.T) {
	test.NewTempApp(t)
	node := newFakeNode()
	node.settingsErr = errors.New("connection refused")
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	b := v.budget
	if !b.applyB.Disabled() || !strings.Contains(b.general.Text, "connection refused") {
		t.Errorf("before the settings are read: Apply disabled %v, message %q", b.applyB.Disabled(), b.general.Text)
	}
	b.apply(context.Background())
	if len(node.patches) != 0 || strings.Contains(b.general.Text, "pick a day") {
		t.Errorf("applied a blank form: %v (%q)", node.patches, b.general.Text)
	}
	node.settingsErr = nil
	v.Refresh(context.Background())
	if b.applyB.Disabled() || b.general.Text != "" || b.resetDy.Selected != "1" || b.size.Text != "4GiB" {
		t.Errorf("after a good read: Apply disabled %v, message %q, day %q, size %q", b.applyB.Disabled(), b.general.Text, b.resetDy.Selected, b.size.Text)
	}
}

// The Sites tab's periods are read by the poller, not when the radio is
// picked on the UI goroutine, only while the tab shows, and a failed read
// says so instead of "Nothing sent".
func TestSitesPeriodReadOffTheUIGoroutine(t *testing.T) {
	test.NewTempApp(t)
	node := &failingUsage{usageNode: newUsageNode()}
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	perSite := func() int {
		return len(slices.DeleteFunc(slices.Clone(node.asked), func(s string) bool { return s == "" }))
	}
	v.sites.period.SetSelected(sitesHour)
	if perSite() != 0 {
		t.Fatalf("picking a period read %d sites on the UI goroutine", perSite())
	}
	v.Refresh(context.Background())
	if perSite() != 0 {
		t.Errorf("read %d sites while the Sites tab is hidden", perSite())
	}
	v.tabs.SelectIndex(2)
	node.fail = errors.New("connection refused")
	v.Refresh(context.Background())
	if !strings.Contains(v.sites.table.Text, "connection refused") || strings.Contains(v.sites.table.Text, "Nothing sent") {
		t.Errorf("a failed read shows %q", v.sites.table.Text)
	}
	node.fail = nil
	v.hidden.Store(true) // the window went to the tray
	v.sites.period.SetSelected(sitesDay)
	n := perSite()
	v.Refresh(context.Background())
	if perSite() != n {
		t.Errorf("read %d sites while the window is hidden", perSite()-n)
	}
	v.hidden.Store(false)
	v.Refresh(context.Background())
	if perSite() == n || !strings.Contains(v.sites.table.Text, "www.example.com") {
		t.Errorf("shown again: %d sites read, table %q", perSite()-n, v.sites.table.Text)
	}
}

type failingUsage struct {
	*usageNode
	fail error
}

func (f *failingUsage) Usage(ctx context.Context, site string, since time.Time) ([]control.UsageBucket, error) {
	if f.fail != nil && site != "" {
		return nil, f.fail
	}
	return f.usageNode.Usage(ctx, site, since)
}
