package desktop

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
)

// deadDisplay names an X display no server listens on.
func deadDisplay(t *testing.T) string {
	for n := 250; n < 400; n++ {
		if _, err := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n)); os.IsNotExist(err) {
			return fmt.Sprintf(":%d", n)
		}
	}
	t.Fatal("no free display number")
	return ""
}

// guiEnv is the environment of a GUI process: this display only, and a
// home of its own for Fyne's preferences.
func guiEnv(t *testing.T, display string) []string {
	home := t.TempDir()
	return []string{"DISPLAY=" + display, "WAYLAND_DISPLAY=", "XDG_CONFIG_HOME=" + filepath.Join(home, "config"), "HOME=" + home, "DBUS_SESSION_BUS_ADDRESS="}
}

// With no usable display `coral gui` says so in one line and exits non-zero;
// plain `coral` runs headless and says why, once; nothing panics.
func TestNoDisplayNoPanic(t *testing.T) {
	bin := coralBin(t)
	dead := deadDisplay(t)
	for _, c := range []struct{ name, display, why string }{
		{"dead X server", dead, "Failed to open display " + dead},
		{"no DISPLAY", "", "neither DISPLAY nor WAYLAND_DISPLAY is set"},
	} {
		t.Run("gui/"+c.name, func(t *testing.T) {
			cmd := exec.Command(bin, "gui", "-config", writeConfig(t))
			cmd.Env = append(os.Environ(), guiEnv(t, c.display)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			msg := strings.TrimSpace(stderr.String())
			if code != 1 || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "no usable display") ||
				!strings.Contains(msg, c.why) || strings.Contains(msg, "panic") {
				t.Errorf("exit %d (err %v), stderr:\n%s", code, err, msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("a node started: %s", stdout.String())
			}
		})
		t.Run("coral/"+c.name, func(t *testing.T) {
			p := startCoral(t, bin, guiEnv(t, c.display), "-config", writeConfig(t))
			if st := p.status(t); st.NodeID == "" {
				t.Errorf("headless node has no ID")
			}
			p.stop(t)
			out := p.out.String()
			if n := strings.Count(out, "no usable display"); n != 1 || !strings.Contains(out, c.why+"") ||
				!strings.Contains(out, "running headless") || strings.Contains(out, "panic") {
				t.Errorf("%d lines about the display; output:\n%s", n, out)
			}
		})
	}
}

// The real window on an X server: for a node in the same process (`coral
// gui` and plain `coral`) and for one attached over its control API, the screen shows the tabs and the
// node's health, and SIGTERM ends the app cleanly.
func TestRealWindowUnderXvfb(t *testing.T) {
	bin := coralBin(t)
	display := startXvfb(t)
	headless := startCoral(t, bin, nil, "serve", "-config", writeConfig(t))
	for _, c := range []struct {
		name string
		args []string
	}{
		{"attached", []string{"gui", "-attach", "http://" + headless.Control, "-token-file", headless.TokenFile}},
		{"in-process", []string{"gui", "-config", writeConfig(t)}},
		{"plain coral", []string{"-config", writeConfig(t)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			gui := startGUI(t, bin, display, c.args...)
			name := control.NodeName(guiNode(t, gui, headless).status(t).NodeID)
			shot := filepath.Join(t.TempDir(), "window.png")
			var text string
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the screen read last:\n%s", text)
				}
			})
			testkit.Eventually(t, 60*time.Second, "the window showing its tabs, the node's name and health", func() bool {
				img := captureScreen(t, display)
				if colours(img, 50) < 50 {
					return false // not drawn yet: a blank screen
				}
				writePNG(t, shot, img)
				text = ocr(t, shot)
				return hasAll(text, "Overview", "Settings", "Sites", "Log", "Serving visitors") &&
					strings.Contains(ocrFold(text), ocrFold(name))
			})
			keepShot(t, shot, "window-"+strings.ReplaceAll(c.name, " ", "-")+".png")
			gui.stop(t)
		})
	}
	if st := headless.status(t); st.NodeID == "" {
		t.Errorf("the attached node stopped with its window")
	}
}

// guiNode is the node a GUI process shows: the one it attached to, or the
// one it runs (found from the control address it prints).
func guiNode(t *testing.T, gui, attached *proc) *proc {
	t.Helper()
	if strings.Contains(strings.Join(gui.Args(), " "), "-attach") {
		return attached
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := gui.WaitReady(ctx); err != nil {
		t.Fatalf("the GUI's node: %v\n%s", err, gui.out)
	}
	return gui
}

// startGUI runs `coral gui ...` on display and returns once it runs.
func startGUI(t *testing.T, bin, display string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), guiEnv(t, display)...)
	out := &cluster.LogBuffer{}
	return &proc{Process: cluster.SpawnT(t, cmd, out), out: out}
}

// The status page as a browser renders it: a screenshot that is not blank,
// and the live node's name and health in the rendered page.
func TestStatusPageInChromium(t *testing.T) {
	chromium := need(t, "chromium", "chromium")
	bin := coralBin(t)
	p := startCoral(t, bin, nil, "serve", "-config", writeConfig(t))
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer origin.Close()
	visit(t, p, origin.URL, "/hello.txt")
	visit(t, p, origin.URL, "/hello.txt")
	st := p.waitStatus(t, "both visits on the status", func(st control.Status) bool { return st.Proxy.Hits == 1 && len(st.Recent) == 2 })
	url := "http://" + p.Control + "/"
	browse := func(extra ...string) []byte {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--user-data-dir=" + t.TempDir(), "--window-size=1100,1500"}, extra...)
		cmd := exec.Command(chromium, append(args, url)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, stderr.String())
		}
		return out
	}
	dom := string(browse("--dump-dom"))
	for _, want := range []string{control.NodeName(st.NodeID), control.HealthOf(st).Words, "Whole network",
		"fetched from the origin", "from this node's cache", "/hello.txt",
		"this month ", `aria-label="upload and download, last hour"`, `aria-label="upload and download, last 24 hours"`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	shot := filepath.Join(t.TempDir(), "status.png")
	browse("--screenshot=" + shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n := colours(img, 50); n < 50 {
		t.Errorf("screenshot has %d colours: blank", n)
	}
	if text := ocr(t, shot); !strings.Contains(text, control.NodeName(st.NodeID)[:4]) || !strings.Contains(text, "Coral node") {
		t.Errorf("screenshot reads:\n%s", text)
	}
	keepShot(t, shot, "status-page.png")
}

// visit GETs path from origin through the node's proxy.
func visit(t *testing.T, p *proc, origin, path string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.HTTP+path, nil)
	req.Host = strings.Replace(strings.TrimPrefix(origin, "http://"), ":", ".", 1) + ".localhost"
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("GET %s: %d %q", path, resp.StatusCode, b)
	}
}

// ocrFold maps the letters OCR confuses in a node name's hex suffix
// ("d1" read as "dl", "0" as "O") to one of each.
func ocrFold(s string) string {
	return strings.NewReplacer("l", "1", "I", "1", "|", "1", "O", "0", "o", "0").Replace(s)
}

func hasAll(s string, words ...string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}
