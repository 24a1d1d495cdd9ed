package gui

import (
	"context"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
)

type fakeAPI struct {
	st  control.Status
	err error
}

func (f *fakeAPI) Status(context.Context) (control.Status, error) { return f.st, f.err }

// busyNode is a node a volunteer would see after a while: peers, a relay,
// clusters, traffic, a cache a quarter full.
func busyNode() control.Status {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	return control.Status{
		Version: "v1.0", NodeID: "12D3KooWQx9v1aZ3Fj8kP0LmN7tq", Zone: "nyud.net", Uptime: 90 * time.Minute,
		Listen: control.Listen{HTTP: "[::]:8080", Control: "127.0.0.1:8081"},
		Proxy:  control.ProxyStatus{Requests: 1042, Hits: 900, Misses: 40, Peer: 100, Stale: 2, OriginFetches: 40, BytesServed: 3 << 30},
		Cache:  control.CacheStatus{Objects: 7, Bytes: 1 << 30, MaxBytes: 4 << 30, FreeBytes: 50 << 30, MinFreeBytes: 1 << 30, Storing: true},
		P2P:    &control.P2PStatus{PeerID: "12D3KooWQx9v1aZ3Fj8kP0LmN7tq", Reachability: "private", Relayed: true, RelayAddrs: []string{"/ip4/1.2.3.4/tcp/4001/p2p/x/p2p-circuit"}, ConnectedPeers: 5},
		DSHT: &control.DSHTStatus{Levels: []control.LevelStatus{
			{Level: 0, RoutingSize: 40}, {Level: 1, ClusterID: "a1b2c3d4e5f6", ClusterSize: 12, RoutingSize: 11}, {Level: 2, RoutingSize: 0},
		}},
		Events: []control.Event{{Time: now.Add(-time.Hour), Level: "warn", Component: "p2p",
			Message: "created a new network secret: this node starts its own network; copy the file to every member"}},
		Recent: []control.Trace{
			{Time: now, URL: "http://example.com/a", Result: "HIT"},
			{Time: now, URL: "http://example.com/b", Result: "MISS"},
			{Time: now, URL: "https://news.example.org/", Result: "PEER"},
		},
	}
}

func TestOverviewSaysHealthInWords(t *testing.T) {
	diskFull := busyNode()
	diskFull.Cache.Storing, diskFull.Cache.DiskNote = false, "disk nearly full: passing through"
	alone := busyNode()
	alone.P2P, alone.DSHT = nil, nil
	public := busyNode()
	public.P2P.Reachability, public.P2P.Relayed = "public", false
	for _, c := range []struct {
		name   string
		st     control.Status
		health string
		more   []string
	}{
		{"relayed", busyNode(), "Not reachable from the Internet: serving through relays",
			[]string{"Connected to 5 other nodes, reached by visitors through 1 relay", "region: cluster of 12", "nearby: no cluster yet", "1,042 requests", "3.0 GiB sent"}},
		{"public", public, "Serving visitors", []string{"whole network: 40 known"}},
		{"disk full", diskFull, "Disk almost full", nil},
		{"alone", alone, "peer-to-peer is off", []string{"Peer-to-peer is off: this node works alone"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			test.NewTempApp(t)
			v := NewView(&fakeAPI{st: c.st}, Info{})
			test.NewTempWindow(t, v.Content())
			v.Refresh(context.Background())
			o := v.overview
			if !strings.Contains(o.health.Text, c.health) {
				t.Errorf("health %q, want %q", o.health.Text, c.health)
			}
			all := strings.Join([]string{o.name.Text, o.peers.Text, o.clusters.Text, o.visitors.Text}, "\n")
			for _, w := range c.more {
				if !strings.Contains(all, w) {
					t.Errorf("overview lacks %q:\n%s", w, all)
				}
			}
			if strings.Contains(o.name.Text, "12D3KooW") || !strings.Contains(o.name.Text, control.NodeName(c.st.NodeID)) {
				t.Errorf("node named %q, want its short name %q", o.name.Text, control.NodeName(c.st.NodeID))
			}
		})
	}
}

func TestUnreachableNodeIsSaidAndLogged(t *testing.T) {
	test.NewTempApp(t)
	api := &fakeAPI{st: busyNode()}
	v := NewView(api, Info{})
	test.NewTempWindow(t, v.Content())
	v.Refresh(context.Background())
	api.err = errors.New("connection refused")
	v.Refresh(context.Background())
	if v.overview.health.Text != "Cannot reach the node" || !strings.Contains(v.overview.errText.Text, "connection refused") {
		t.Errorf("health %q, error %q", v.overview.health.Text, v.overview.errText.Text)
	}
	api.err = nil
	api.st.Budget = &control.BudgetStatus{Serving: true, QuotaWarn: true, QuotaBytes: 100, QuotaUsed: 91, Note: "91 % of the monthly quota used (resets 1 Jan 00:00)."}
	v.Refresh(context.Background())
	log := v.log.text.Text
	if n := strings.Count(log, "network secret"); n != 1 {
		t.Errorf("the node's warning shown %d times", n)
	}
	for _, w := range []string{"Not reachable from the Internet", "Cannot reach the node: connection refused", "Reached the node again",
		"Created a new network secret", "Budget: 91 % of the monthly quota used"} {
		if !strings.Contains(log, w) {
			t.Errorf("log lacks %q:\n%s", w, log)
		}
	}
}

func TestSitesTabCountsRecentRequestsBySite(t *testing.T) {
	test.NewTempApp(t)
	v := NewView(&fakeAPI{st: busyNode()}, Info{})
	test.NewTempWindow(t, v.Content())
	v.Refresh(context.Background())
	lines := strings.Split(v.sites.table.Text, "\n")
	if len(lines) < 3 || !strings.Contains(lines[1], "example.com ") || !strings.Contains(lines[1], "66%") ||
		!strings.Contains(lines[2], "news.example.org") {
		t.Errorf("sites table:\n%s", v.sites.table.Text)
	}
}

func TestOpenStatusPageReportsBrowserFailure(t *testing.T) {
	test.NewTempApp(t)
	v := NewView(&fakeAPI{st: busyNode()}, Info{ControlURL: "http://127.0.0.1:8081"})
	test.NewTempWindow(t, v.Content())
	opened := 0
	v.openPage = func() error { opened++; return errors.New("no browser found") }
	v.openStatusPage()
	if opened != 1 || !strings.Contains(v.overview.pageErr.Text, "no browser found") || !strings.Contains(v.overview.pageErr.Text, "http://127.0.0.1:8081") {
		t.Errorf("after a failed open: %q", v.overview.pageErr.Text)
	}
	v.openPage = func() error { opened++; return nil }
	v.openStatusPage()
	if opened != 2 || v.overview.pageErr.Text != "" {
		t.Errorf("after a good open: %q", v.overview.pageErr.Text)
	}
}

func newTestShell(t *testing.T, hasTray bool, info Info) (*shell, *int) {
	a := test.NewTempApp(t)
	d := newShell(a, &fakeAPI{st: busyNode()}, info, hasTray)
	quits := 0
	d.quit = func() { quits++ }
	return d, &quits
}

// With a tray, closing the window hides it, the node keeps running, and
// the volunteer is told once.
func TestCloseWithTrayHidesAndTellsOnce(t *testing.T) {
	d, quits := newTestShell(t, true, Info{})
	want := fyne.NewNotification("Coral keeps running", "Your node is still serving visitors. Open the window or quit from the Coral icon in the tray.")
	test.AssertNotificationSent(t, want, d.closeWindow)
	test.AssertNotificationSent(t, nil, d.closeWindow)
	if *quits != 0 {
		t.Errorf("closing the window quit the app")
	}
}

// Without a tray, closing asks, and only "yes" stops the node.
func TestCloseWithoutTrayAsks(t *testing.T) {
	for _, answer := range []bool{false, true} {
		d, quits := newTestShell(t, false, Info{})
		d.win.Resize(DefaultSize)
		d.closeWindow()
		confirm := findDialogButton(t, d.win.Canvas(), map[bool]string{true: "Yes", false: "No"}[answer])
		test.Tap(confirm)
		if got := *quits == 1; got != answer {
			t.Errorf("answer %v: quit %d times", answer, *quits)
		}
	}
}

func TestTrayActions(t *testing.T) {
	d, quits := newTestShell(t, true, Info{ControlURL: "http://127.0.0.1:8081"})
	opened := 0
	d.view.openPage = func() error { opened++; return nil }
	items := map[string]*fyne.MenuItem{}
	for _, it := range d.trayMenu().Items {
		items[strings.SplitN(it.Label, " (", 2)[0]] = it
	}
	d.win.Hide()
	items["Open Coral"].Action()
	items["Open status page"].Action()
	if opened != 1 {
		t.Errorf("status page opened %d times", opened)
	}
	if p := items["Pause serving"]; p == nil || !p.Disabled {
		t.Errorf("pause item %+v: want present and disabled until the node offers pausing", p)
	}
	q := items["Quit Coral"]
	if q == nil || !q.IsQuit {
		t.Fatalf("no quit item")
	}
	q.Action()
	if *quits != 1 {
		t.Errorf("quit from the tray: %d quits", *quits)
	}
}

func TestStartAtLoginSwitch(t *testing.T) {
	test.NewTempApp(t)
	as := Autostart{Dir: filepath.Join(t.TempDir(), "autostart"), Exec: []string{"/opt/my apps/coral", "-config", "/home/v/coral.toml"}}
	v := NewView(&fakeAPI{st: busyNode()}, Info{Autostart: as})
	test.NewTempWindow(t, v.Content())
	test.Tap(v.settings.login)
	b, err := os.ReadFile(as.Path())
	if err != nil {
		t.Fatalf("switch on: %v", err)
	}
	if !strings.Contains(string(b), "Exec=\"/opt/my apps/coral\" -config /home/v/coral.toml\n") || !strings.HasPrefix(string(b), "[Desktop Entry]\n") {
		t.Errorf("entry:\n%s", b)
	}
	test.Tap(v.settings.login)
	if as.Enabled() {
		t.Errorf("switch off left %s", as.Path())
	}
	// A directory that cannot be written: the message is next to the switch.
	bad := Autostart{Dir: "/proc/no-such-dir", Exec: []string{"coral"}}
	v2 := NewView(&fakeAPI{st: busyNode()}, Info{Autostart: bad})
	test.NewTempWindow(t, v2.Content())
	test.Tap(v2.settings.login)
	if v2.settings.login.Checked || !strings.Contains(v2.settings.loginErr.Text, "autostart") {
		t.Errorf("failed switch: checked %v, message %q", v2.settings.login.Checked, v2.settings.loginErr.Text)
	}
}

func TestExecQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/bin/coral": "/usr/bin/coral", "/a b/c": `"/a b/c"`, `x"y`: `"x\"y"`, "50%": "50%%", "$HOME": `"\$HOME"`, "": `""`,
	} {
		if got := execQuote(in); got != want {
			t.Errorf("execQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNothingCutOff renders every tab at the default size in the light and
// dark themes: each fits, and (CORAL_GUI_SHOTS=dir) its picture is kept
// for the README.
func TestNothingCutOff(t *testing.T) {
	for _, th := range []struct {
		name  string
		theme fyne.Theme
	}{{"light", theme.LightTheme()}, {"dark", theme.DarkTheme()}} { //nolint:staticcheck // fixed variants for the pictures
		t.Run(th.name, func(t *testing.T) {
			test.NewTempApp(t)
			test.ApplyTheme(t, th.theme)
			node := newUsageNode()
			node.settings["bandwidth"].(map[string]any)["schedule"] = []any{
				map[string]any{"days": []any{"mon", "tue", "wed", "thu", "fri"}, "from": "08:00", "to": "18:00", "upload": "1MiB/s"},
				map[string]any{"days": []any{"sat", "sun"}, "from": "00:00", "to": "24:00", "upload": "off"},
			}
			node.settings["sites"] = []any{map[string]any{"host": "www.example.com", "weight": 2.0}, map[string]any{"host": "news.example.org", "weight": 1.0}}
			node.st.Groups = sampleGroups()
			v := NewView(joiningNode{node}, Info{ControlURL: "http://127.0.0.1:8081", Autostart: Autostart{Dir: t.TempDir()}})
			w := test.NewTempWindow(t, v.Content())
			v.SetWindow(w)
			w.Resize(DefaultSize)
			v.Refresh(context.Background())
			for i, tab := range v.tabs.Items {
				v.tabs.SelectIndex(i)
				for _, inner := range innerTabs(tab.Content) {
					shot := func() {}
					if dir := os.Getenv("CORAL_GUI_SHOTS"); dir != "" {
						shot = func() {
							f, _ := os.Create(filepath.Join(dir, "gui-settings-"+strings.ReplaceAll(strings.ToLower(inner.Text), " ", "-")+"-"+th.name+".png"))
							png.Encode(f, w.Canvas().Capture())
							f.Close()
						}
					}
					inner.tabs.Select(inner.TabItem)
					if need, have := inner.Content.MinSize(), inner.Content.Size(); need.Height > have.Height+1 || need.Width > have.Width+1 {
						t.Errorf("tab %s/%s needs %v, shows %v", tab.Text, inner.Text, need, have)
					}
					shot()
				}
				v.tabs.SelectIndex(i)
				if min := tab.Content.MinSize(); min.Width > DefaultSize.Width || min.Height > DefaultSize.Height-40 {
					t.Errorf("tab %s needs %v, more than the window's %v", tab.Text, min, DefaultSize)
				}
				img := w.Canvas().Capture()
				// A scrolled area that must scroll hides part of the tab.
				walk(tab.Content, func(o fyne.CanvasObject) {
					if sc, ok := o.(*container.Scroll); ok {
						if need, have := sc.Content.MinSize(), sc.Size(); need.Height > have.Height+1 || need.Width > have.Width+1 {
							t.Errorf("tab %s: a scrolled area needs %v, shows %v", tab.Text, need, have)
						}
					}
				})
				if dir := os.Getenv("CORAL_GUI_SHOTS"); dir != "" {
					f, err := os.Create(filepath.Join(dir, "gui-"+strings.ToLower(tab.Text)+"-"+th.name+".png"))
					if err != nil {
						t.Fatal(err)
					}
					png.Encode(f, img)
					f.Close()
				}
			}
		})
	}
}

type innerTab struct {
	*container.TabItem
	tabs *container.AppTabs
}

// innerTabs are the tabs within a tab (Settings has some).
func innerTabs(o fyne.CanvasObject) []innerTab {
	var out []innerTab
	walk(o, func(obj fyne.CanvasObject) {
		if at, ok := obj.(*container.AppTabs); ok {
			for _, it := range at.Items {
				out = append(out, innerTab{it, at})
			}
		}
	})
	return out
}

func findDialogButton(t *testing.T, c fyne.Canvas, text string) *widget.Button {
	t.Helper()
	var found *widget.Button
	for _, o := range c.Overlays().List() {
		walk(o, func(obj fyne.CanvasObject) {
			if b, ok := obj.(*widget.Button); ok && b.Text == text {
				found = b
			}
		})
	}
	if found == nil {
		t.Fatalf("no %q button in a dialog", text)
	}
	return found
}

func walk(o fyne.CanvasObject, f func(fyne.CanvasObject)) {
	f(o)
	switch x := o.(type) {
	case *fyne.Container:
		for _, c := range x.Objects {
			walk(c, f)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(x).Objects() {
			walk(c, f)
		}
	}
}
