package gui

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/coralcdn/coral/app/control"
)

// fakeNode is a node with live settings: it applies a JSON merge patch
// whole or refuses it naming the key, as PUT /api/settings does.
type fakeNode struct {
	fakeAPI
	settings    map[string]any
	patches     []string
	settingsErr error // GET /api/settings fails with it
}

func newFakeNode() *fakeNode {
	var s map[string]any
	json.Unmarshal([]byte(`{"paused":false,"bandwidth":{"upload":"0","download":"0","monthly_quota":"0","quota_reset_day":1,"schedule":[]},"sites":[],"cache":{"max_bytes":"4GiB","data_dir":"/var/lib/coral"}}`), &s)
	return &fakeNode{fakeAPI: fakeAPI{st: busyNode()}, settings: s}
}

func (f *fakeNode) Settings(context.Context) (json.RawMessage, error) {
	if f.settingsErr != nil {
		return nil, f.settingsErr
	}
	return json.Marshal(f.settings)
}

func (f *fakeNode) UpdateSettings(_ context.Context, patch json.RawMessage) (json.RawMessage, error) {
	f.patches = append(f.patches, string(patch))
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	next := merge(clone(f.settings), p).(map[string]any)
	if err := validate(next); err != nil {
		return nil, err
	}
	f.settings = next
	return json.Marshal(f.settings)
}

func merge(dst, patch any) any {
	pm, ok := patch.(map[string]any)
	dm, ok2 := dst.(map[string]any)
	if !ok || !ok2 {
		return patch
	}
	for k, v := range pm {
		dm[k] = merge(dm[k], v)
	}
	return dm
}

func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

var (
	rateRe = regexp.MustCompile(`^(0|off|\d+(KiB|MiB|GiB|kB|MB|GB)/s)$`)
	sizeRe = regexp.MustCompile(`^(0|\d+(MiB|GiB|TiB|MB|GB|TB))$`)
)

// validate checks what the node checks, with its messages' form.
func validate(s map[string]any) error {
	bw := s["bandwidth"].(map[string]any)
	for _, k := range []string{"upload", "download"} {
		if !rateRe.MatchString(fmt.Sprint(bw[k])) {
			return fmt.Errorf(`bandwidth.%s: not a rate (want e.g. "2MiB/s", "0" for no cap or "off"): %q`, k, bw[k])
		}
	}
	if !sizeRe.MatchString(fmt.Sprint(bw["monthly_quota"])) {
		return fmt.Errorf(`bandwidth.monthly_quota: not a size (want e.g. "300GiB" or "0"): %q`, bw["monthly_quota"])
	}
	for i, w := range bw["schedule"].([]any) {
		if up, ok := w.(map[string]any)["upload"]; ok && !rateRe.MatchString(fmt.Sprint(up)) {
			return fmt.Errorf(`bandwidth.schedule[%d].upload: not a rate: %q`, i, up)
		}
	}
	cache := s["cache"].(map[string]any)
	if !sizeRe.MatchString(fmt.Sprint(cache["max_bytes"])) {
		return fmt.Errorf(`cache.max_bytes: not a size (want e.g. "50MiB"): %q`, cache["max_bytes"])
	}
	if dir := fmt.Sprint(cache["data_dir"]); !strings.HasPrefix(dir, "/") {
		return fmt.Errorf("cache.data_dir: want an absolute directory path, got %q", dir)
	}
	for i, site := range s["sites"].([]any) {
		if w := site.(map[string]any)["weight"].(float64); w <= 0 || w > 1000 {
			return fmt.Errorf("sites[%d].weight: want a weight above 0 and at most 1000, got %g", i, w)
		}
	}
	return nil
}

func (f *fakeNode) get(path ...string) any {
	var v any = f.settings
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	return v
}

func newSettingsView(t *testing.T) (*View, *fakeNode) {
	test.NewTempApp(t)
	node := newFakeNode()
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	if v.budget == nil || !v.settingsLoaded {
		t.Fatal("the Settings tab has no budget for a node with live settings")
	}
	return v, node
}

// Valid input is applied through the API (only what changed) and kept.
func TestSettingsValidChangesAreApplied(t *testing.T) {
	v, node := newSettingsView(t)
	b := v.budget
	b.upload.slider.SetValue(4) // the slider's stop fills the exact entry
	if b.upload.entry.Text != "2MiB/s" {
		t.Fatalf("slider set the entry to %q", b.upload.entry.Text)
	}
	b.down.entry.SetText("10MiB/s")
	b.quota.SetText("300GiB")
	b.resetDy.SetSelected("15")
	test.Tap(b.paused)
	b.apply(context.Background())
	if got := b.result.Text; got != "Applied and saved." {
		t.Fatalf("result %q; general %q", got, b.general.Text)
	}
	want := `{"bandwidth":{"download":"10MiB/s","monthly_quota":"300GiB","quota_reset_day":15,"upload":"2MiB/s"},"paused":true}`
	if last := node.patches[len(node.patches)-1]; last != want {
		t.Errorf("patch %s\nwant  %s", last, want)
	}
	if node.get("bandwidth", "upload") != "2MiB/s" || node.get("paused") != true {
		t.Errorf("node holds %v", node.settings)
	}
	// Nothing changed: nothing sent.
	n := len(node.patches)
	b.apply(context.Background())
	if len(node.patches) != n || b.result.Text != "Nothing changed." {
		t.Errorf("an unchanged form sent %d patches, says %q", len(node.patches)-n, b.result.Text)
	}
}

// Invalid input: a message next to the field, nothing applied.
func TestSettingsInvalidInputIsRefusedAtTheField(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(b *budgetForm)
		field func(b *budgetForm) string
		want  string
		sent  bool // refused by the node (true) or by the window
	}{
		{"upload", func(b *budgetForm) { b.upload.entry.SetText("lots") }, func(b *budgetForm) string { return b.upload.err.Text }, "not a rate", true},
		{"download", func(b *budgetForm) { b.down.entry.SetText("5 parsecs") }, func(b *budgetForm) string { return b.down.err.Text }, "not a rate", true},
		{"quota", func(b *budgetForm) { b.quota.SetText("many") }, func(b *budgetForm) string { return b.errs["bandwidth.monthly_quota"].Text }, "not a size", true},
		{"site weight not a number", func(b *budgetForm) { b.sites.addRow("www.example.com", "heavy") }, func(b *budgetForm) string { return b.sites.err.Text }, "Site 1, weight: want a number", false},
		{"site weight zero", func(b *budgetForm) { b.sites.addRow("www.example.com", "0") }, func(b *budgetForm) string { return b.sites.err.Text }, "Site 1, weight: want a weight above 0", true},
		{"schedule window", func(b *budgetForm) {
			up := "fast"
			b.sched.set([]windowDoc{{Days: []string{"mon"}, From: "08:00", To: "18:00", Upload: &up}})
		}, func(b *budgetForm) string { return b.sched.err.Text }, "Window 1, upload: not a rate", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, node := newSettingsView(t)
			before := clone(node.settings)
			c.edit(v.budget)
			v.budget.apply(context.Background())
			if got := c.field(v.budget); !strings.Contains(got, c.want) {
				t.Errorf("message at the field %q, want %q (general %q)", got, c.want, v.budget.general.Text)
			}
			if fmt.Sprint(node.settings) != fmt.Sprint(before) {
				t.Errorf("applied anyway: %v", node.settings)
			}
			if sent := len(node.patches) > 0; sent != c.sent {
				t.Errorf("sent to the node: %v, want %v", sent, c.sent)
			}
			if v.budget.result.Text == "Applied and saved." {
				t.Errorf("says applied")
			}
		})
	}
}

func TestScheduleAddEditRemove(t *testing.T) {
	v, node := newSettingsView(t)
	s := v.budget.sched
	s.open(-1)
	d := s.editing
	d.days.SetSelected([]string{"sat", "mon"})
	d.from.SetText("08:00")
	d.to.SetText("08:00")
	if s.save(d) || !strings.Contains(d.err.Text, "empty") {
		t.Fatalf("an empty window was kept (%q)", d.err.Text)
	}
	d.to.SetText("18:00")
	d.up.SetText("1MiB/s")
	if !s.save(d) {
		t.Fatalf("a good window refused: %q", d.err.Text)
	}
	v.budget.apply(context.Background())
	sched := node.get("bandwidth", "schedule").([]any)
	if len(sched) != 1 || fmt.Sprint(sched[0]) != "map[days:[mon sat] from:08:00 to:18:00 upload:1MiB/s]" {
		t.Fatalf("node's schedule after add: %v (%q)", sched, v.budget.general.Text)
	}
	s.open(0)
	if s.editing.from.Text != "08:00" || s.editing.up.Text != "1MiB/s" {
		t.Fatalf("edit dialog opened with %q %q", s.editing.from.Text, s.editing.up.Text)
	}
	s.editing.up.SetText("")
	s.editing.dn.SetText("off")
	s.save(s.editing)
	v.budget.apply(context.Background())
	if w := node.get("bandwidth", "schedule").([]any)[0]; fmt.Sprint(w) != "map[days:[mon sat] download:off from:08:00 to:18:00]" {
		t.Fatalf("node's window after edit: %v", w)
	}
	s.remove(0)
	v.budget.apply(context.Background())
	if sched := node.get("bandwidth", "schedule").([]any); len(sched) != 0 {
		t.Fatalf("node's schedule after remove: %v", sched)
	}
}

func TestSiteWeightsAddRemove(t *testing.T) {
	v, node := newSettingsView(t)
	e := v.budget.sites
	e.addRow("www.example.com", "2.5")
	e.addRow("news.example.org", "1")
	v.budget.apply(context.Background())
	if got := fmt.Sprint(node.get("sites")); got != "[map[host:www.example.com weight:2.5] map[host:news.example.org weight:1]]" {
		t.Fatalf("node's sites %s (%q)", got, v.budget.general.Text)
	}
	e.remove(0)
	v.budget.apply(context.Background())
	if got := fmt.Sprint(node.get("sites")); got != "[map[host:news.example.org weight:1]]" {
		t.Fatalf("after remove: %s", got)
	}
}

func TestTrayPausesAndResumes(t *testing.T) {
	a := test.NewTempApp(t)
	ui := newUILoop(t)
	node := newFakeNode()
	d := newShell(a, node, Info{}, true)
	d.trayMenu()
	d.view.Refresh(context.Background())
	if d.pause.Disabled || d.pause.Label != "Pause serving" {
		t.Fatalf("pause item %q disabled %v", d.pause.Label, d.pause.Disabled)
	}
	d.pause.Action()
	ui.until(t, "the pause", func() bool { return !d.pending })
	if node.get("paused") != true || d.pause.Label != "Resume serving" || !d.view.budget.paused.Checked {
		t.Errorf("after pause: node %v, item %q", node.get("paused"), d.pause.Label)
	}
	d.pause.Action()
	ui.until(t, "the resume", func() bool { return !d.pending })
	if node.get("paused") != false || d.pause.Label != "Pause serving" {
		t.Errorf("after resume: node %v, item %q", node.get("paused"), d.pause.Label)
	}
}

var _ control.API = (*fakeNode)(nil)

// fakeMember is a node that shares and joins networks.
type fakeMember struct {
	fakeNode
	joined []string
}

func (f *fakeMember) Invite(context.Context) (string, error) { return "coral1-INVITE-CODE", nil }

func (f *fakeMember) Join(_ context.Context, code string) (string, error) {
	if !strings.HasPrefix(code, "coral1-") {
		return "", fmt.Errorf("control: /api/join: not an invite code")
	}
	f.joined = append(f.joined, code)
	return "joined: restart the node to use the new network", nil
}

func TestInviteCodeShownAndJoined(t *testing.T) {
	test.NewTempApp(t)
	ui := newUILoop(t)
	node := &fakeMember{fakeNode: *newFakeNode()}
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	n := v.network
	if n == nil {
		t.Fatal("no network box for a node that shares networks")
	}
	if n.code.Text != "" {
		t.Fatal("the code is shown before anyone asked")
	}
	test.Tap(n.show)
	ui.until(t, "the code", func() bool { return !n.show.Disabled() })
	if n.code.Text != "coral1-INVITE-CODE" {
		t.Errorf("code shown %q", n.code.Text)
	}
	n.paste.SetText("garbage")
	test.Tap(n.join)
	ui.until(t, "the refusal", func() bool { return !n.join.Disabled() })
	if !strings.Contains(n.err.Text, "not an invite code") || len(node.joined) != 0 {
		t.Errorf("bad code: message %q, joined %v", n.err.Text, node.joined)
	}
	n.paste.SetText("  coral1-OTHER  ")
	test.Tap(n.join)
	ui.until(t, "the join", func() bool { return !n.join.Disabled() })
	if len(node.joined) != 1 || node.joined[0] != "coral1-OTHER" || !strings.Contains(n.msg.Text, "restart") || n.err.Text != "" {
		t.Errorf("good code: joined %v, message %q, error %q", node.joined, n.msg.Text, n.err.Text)
	}
}

// usageNode is a fake node with a budget and usage buckets.
type usageNode struct {
	fakeNode
	asked []string // sites asked for
}

func (u *usageNode) Usage(_ context.Context, site string, since time.Time) ([]control.UsageBucket, error) {
	u.asked = append(u.asked, site)
	per := map[string]int64{"": 300 << 20, "www.example.com": 200 << 20, "news.example.org": 100 << 20}[site]
	var out []control.UsageBucket
	for i, t := 0, since.Truncate(5*time.Minute); t.Before(time.Now()); i, t = i+1, t.Add(5*time.Minute) {
		// Waves by bucket index, not by the time of day the test runs at:
		// every hour of buckets holds a peak of 2 MiB/s.
		wave := int64(i%6+1) * int64(i%4+1)
		out = append(out, control.UsageBucket{Start: t, Sent: per * wave / 12, Received: per * wave / 60})
	}
	return out, nil
}

func newUsageNode() *usageNode {
	u := &usageNode{fakeNode: *newFakeNode()}
	u.st.Budget = &control.BudgetStatus{Serving: true, Upload: "2MiB/s", Download: "0", SentRate: 1 << 20, MonthSent: 40 << 30,
		QuotaBytes: 300 << 30, QuotaUsed: 40 << 30, QuotaResetAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.Local),
		Sites: map[string]control.SiteUsage{"www.example.com": {Sent: 30 << 30}, "news.example.org": {Sent: 10 << 30}}}
	return u
}

func TestOverviewShowsTrafficAndGraphs(t *testing.T) {
	test.NewTempApp(t)
	node := newUsageNode()
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	o := v.overview
	if !o.traffic.Visible() {
		t.Fatal("no Traffic section for a node with a budget")
	}
	for _, want := range []string{"Now: up 1.0 MiB/s", "upload cap 2MiB/s", "today ", "this month 40 GiB sent of 300 GiB (13 %), resets on the 1st"} {
		if !strings.Contains(o.trafficText.Text, want) {
			t.Errorf("traffic %q lacks %q", o.trafficText.Text, want)
		}
	}
	hour := len(o.graph.points)
	if hour < 12 || hour > 14 || o.graph.peak() < 1<<20 {
		t.Errorf("last hour: %d points, peak %v", hour, o.graph.peak())
	}
	o.period.SetSelected(periodDay)
	if n := len(o.graph.points); n < 280 || o.graph.now.Sub(o.graph.since) != 24*time.Hour {
		t.Errorf("last 24 hours: %d points over %v", n, o.graph.now.Sub(o.graph.since))
	}
	// The buckets are read again only every usageEvery, not every refresh.
	asked := len(node.asked)
	v.Refresh(context.Background())
	if len(node.asked) != asked {
		t.Errorf("usage read again after a 2 s refresh")
	}
}

func TestSitesTabShowsPerSiteUsageOverAPeriod(t *testing.T) {
	test.NewTempApp(t)
	node := newUsageNode()
	v := NewView(node, Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	lines := strings.Split(v.sites.table.Text, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "www.example.com") || !strings.Contains(lines[1], "30 GiB") || !strings.Contains(lines[1], "75%") {
		t.Fatalf("this month:\n%s", v.sites.table.Text)
	}
	v.tabs.SelectIndex(2)
	v.sites.period.SetSelected(sitesHour)
	v.Refresh(context.Background()) // what the kick to Follow does
	lines = strings.Split(v.sites.table.Text, "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "www.example.com") || !strings.Contains(lines[1], "66%") || !strings.Contains(lines[2], "33%") {
		t.Fatalf("last hour:\n%s", v.sites.table.Text)
	}
	if !slices.Contains(node.asked, "news.example.org") {
		t.Errorf("per-site usage not asked: %v", node.asked)
	}
}
