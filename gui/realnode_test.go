package gui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// startServe runs a real `coral serve` and returns a control client with
// its token, as `coral gui -attach` builds one.
func startServe(t *testing.T, bin string) *control.Client {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "coral.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir = %q
[http]
listen = "127.0.0.1:0"
[control]
listen = "127.0.0.1:0"
[dns]
listen = ""
[p2p]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
nat_port_map = false
`, filepath.Join(dir, "data"))), 0o600)
	cmd := exec.Command(bin, "serve", "-config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	ctl, tok := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := regexp.MustCompile(`^\s+control\s+http://(\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				ctl <- m[1]
			}
			if m := regexp.MustCompile(`control token in (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
				tok <- m[1]
			}
		}
	}()
	c := &control.Client{}
	for _, ch := range []chan string{ctl, tok} {
		select {
		case v := <-ch:
			if c.BaseURL == "" {
				c.BaseURL = "http://" + v
			} else {
				b, _ := os.ReadFile(v)
				c.Token = strings.TrimSpace(string(b))
			}
		case <-time.After(60 * time.Second):
			t.Fatal("coral serve did not start")
		}
	}
	return c
}

// The window attached to a real headless node shows it and drives it
// through the control API: the invite code behind the token, joining
// another node's network.
func TestWindowDrivesARealNode(t *testing.T) {
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, b := startServe(t, bin), startServe(t, bin)
	test.NewTempApp(t)
	ui := newUILoop(t)
	v := NewView(a, Info{ControlURL: a.BaseURL, Attached: true})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(context.Background())
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v.overview.name.Text, control.NodeName(st.NodeID)) {
		t.Errorf("overview names %q, the node is %s", v.overview.name.Text, control.NodeName(st.NodeID))
	}
	if !strings.Contains(v.log.text.Text, "Created a new network secret") {
		t.Errorf("the node's first warning is not in the log:\n%s", v.log.text.Text)
	}
	if v.network == nil {
		t.Fatal("no invite/join for a real node")
	}
	test.Tap(v.network.show)
	ui.until(t, "the invite code", func() bool { return !v.network.show.Disabled() })
	code := v.network.code.Text
	if want, _ := a.Invite(context.Background()); code == "" || code != want {
		t.Fatalf("invite shown %q (error %q), node says %q", code, v.network.err.Text, want)
	}

	// Node b's window joins a's network with that code.
	vb := NewView(b, Info{ControlURL: b.BaseURL, Attached: true})
	vb.SetWindow(test.NewTempWindow(t, vb.Content()))
	vb.network.paste.SetText(code)
	test.Tap(vb.network.join)
	ui.until(t, "the join", func() bool { return !vb.network.join.Disabled() })
	if vb.network.err.Text != "" || vb.network.msg.Text == "" {
		t.Errorf("join: error %q, answer %q", vb.network.err.Text, vb.network.msg.Text)
	}
	// Without the token the code stays hidden.
	stranger := NewView(&control.Client{BaseURL: a.BaseURL}, Info{})
	stranger.SetWindow(test.NewTempWindow(t, stranger.Content()))
	test.Tap(stranger.network.show)
	ui.until(t, "the refusal", func() bool { return !stranger.network.show.Disabled() })
	if stranger.network.code.Text != "" || !strings.Contains(stranger.network.err.Text, "token") {
		t.Errorf("without the token: code %q, message %q", stranger.network.code.Text, stranger.network.err.Text)
	}
}

// The Settings tab changes a real node: a valid cap is applied and kept
// (GET /api/settings, data_dir/settings.json), an invalid one is refused
// at its field and changes nothing; the tray pauses the node and the
// Overview says so.
func TestSettingsChangeARealNode(t *testing.T) {
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startServe(t, bin)
	a := test.NewTempApp(t)
	ui := newUILoop(t)
	d := newShell(a, node, Info{ControlURL: node.BaseURL, Attached: true}, true)
	d.trayMenu()
	v := d.view
	v.Refresh(context.Background())
	if v.budget == nil || !v.settingsLoaded {
		t.Fatalf("no live settings for a real node: %q", v.budget.general.Text)
	}
	setting := func(key string) string {
		raw, err := node.Settings(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var doc settingsDoc
		json.Unmarshal(raw, &doc)
		return map[string]string{"upload": doc.Bandwidth.Upload, "quota": doc.Bandwidth.MonthlyQuota}[key]
	}

	v.budget.upload.entry.SetText("lots")
	v.budget.apply(context.Background())
	if !strings.Contains(v.budget.upload.err.Text, "not a rate") || setting("upload") != "0" {
		t.Errorf("invalid cap: message %q, node has %q", v.budget.upload.err.Text, setting("upload"))
	}
	v.budget.upload.entry.SetText("2MiB/s")
	v.budget.quota.SetText("300GiB")
	v.budget.apply(context.Background())
	if v.budget.result.Text != "Applied and saved." || setting("upload") != "2MiB/s" || setting("quota") != "300GiB" {
		t.Errorf("valid change: %q / %q, node has %q %q", v.budget.result.Text, v.budget.general.Text, setting("upload"), setting("quota"))
	}
	if v.budget.upload.err.Text != "" {
		t.Errorf("the old message stayed: %q", v.budget.upload.err.Text)
	}

	d.pause.Action()
	ui.until(t, "the pause", func() bool { return !d.pending })
	v.Refresh(context.Background())
	if v.overview.health.Text != "Paused" || d.pause.Label != "Resume serving" {
		t.Errorf("after pausing from the tray: health %q, item %q", v.overview.health.Text, d.pause.Label)
	}
	d.pause.Action()
	ui.until(t, "the resume", func() bool { return !d.pending })
	v.Refresh(context.Background())
	if strings.HasPrefix(v.overview.health.Text, "Paused") {
		t.Errorf("after resuming: %q", v.overview.health.Text)
	}
	if !v.overview.traffic.Visible() || !strings.Contains(v.overview.trafficText.Text, "upload cap 2MiB/s") {
		t.Errorf("traffic: %q", v.overview.trafficText.Text)
	}
}

// The Cache and Groups settings drive a real node: the cache size reaches
// the store at once (its status reports the new budget), a bad size is
// refused at its field; a manifest made by `coral group init` joins the
// group and the Groups list shows it, a tampered one is refused.
func TestCacheAndGroupsChangeARealNode(t *testing.T) {
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startServe(t, bin)
	test.NewTempApp(t)
	v := NewView(node, Info{ControlURL: node.BaseURL, Attached: true})
	v.Refresh(context.Background())
	if v.budget == nil || v.groups == nil {
		t.Fatal("no live settings or groups for a real node")
	}
	v.budget.size.SetText("4MB")
	v.budget.apply(context.Background())
	if msg := v.budget.errs["cache.max_bytes"].Text; !strings.Contains(msg, "at least 64MiB") {
		t.Errorf("too small a cache: message %q (general %q)", msg, v.budget.general.Text)
	}
	v.budget.size.SetText("1GiB")
	v.budget.apply(context.Background())
	st, err := node.Status(context.Background())
	if err != nil || st.Cache.MaxBytes != 1<<30 || v.budget.result.Text != "Applied and saved." {
		t.Errorf("cache size: %q / %q, the store's budget is %d (%v)", v.budget.result.Text, v.budget.general.Text, st.Cache.MaxBytes, err)
	}

	dir := t.TempDir()
	out, err := exec.Command(bin, "group", "init", "-name", "blogs", "-site", "www.a.org=http://127.0.0.1:9,1",
		"-key", filepath.Join(dir, "g.key"), "-out", filepath.Join(dir, "g.json"), "-signed", filepath.Join(dir, "g.signed")).CombinedOutput()
	if err != nil {
		t.Fatalf("coral group init: %v\n%s", err, out)
	}
	key := regexp.MustCompile(`key = "(ed25519:[^"]+)"`).FindStringSubmatch(string(out))
	signed, err := os.ReadFile(filepath.Join(dir, "g.signed"))
	if key == nil || err != nil {
		t.Fatalf("no key in %q or no manifest: %v", out, err)
	}
	g := v.groups
	g.key.SetText(key[1])
	g.manifest.SetText(strings.Replace(string(signed), `"signature":"`, `"signature":"AAAA`, 1))
	ui := newUILoop(t)
	g.joinGroup(context.Background())
	ui.until(t, "the refusal", func() bool { return !g.join.Disabled() })
	if !strings.Contains(g.manErr.Text, "Not joined") {
		t.Errorf("tampered manifest: message %q / %q", g.manErr.Text, g.keyErr.Text)
	}
	g.key.SetText(key[1])
	g.manifest.SetText(string(signed))
	g.joinGroup(context.Background())
	ui.until(t, "the join", func() bool { return !g.join.Disabled() })
	v.Refresh(context.Background())
	if !strings.Contains(g.msg.Text, "Joined") || !strings.Contains(g.list.Text, "blogs · serial 1") {
		t.Errorf("after joining: %q / %q / %q; list %q", g.msg.Text, g.keyErr.Text, g.manErr.Text, g.list.Text)
	}
}
