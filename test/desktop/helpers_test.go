package desktop

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
	"golang.org/x/image/draw"
)

// need fails the test unless the named program is installed.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not found: install the Debian package %s (bash packaging/install-deps.sh does)", prog, pkg)
	}
	return p
}

func coralBin(t *testing.T) string {
	t.Helper()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// writeConfig is a node on loopback ports the system picks.
func writeConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "coral.toml")
	body := fmt.Sprintf(`data_dir = %q
[http]
listen = "127.0.0.1:0"
[control]
listen = "127.0.0.1:0"
[dns]
listen = ""
[cache]
allow_private_origins = true
[p2p]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
nat_port_map = false
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// proc is a running coral process.
type proc struct {
	cmd     *exec.Cmd
	out     *cluster.LogBuffer
	done    chan struct{}
	exit    error
	HTTP    string // host:port of the proxy
	Control string // host:port of the control listener
	Token   string // path of the control token file
}

var (
	controlLine = regexp.MustCompile(`^\s+control\s{2,}http://(\S+)`)
	proxyLine   = regexp.MustCompile(`^\s+proxy\s{2,}http://(\S+)`)
	tokenLine   = regexp.MustCompile(`^\s+control token in (\S+)`)
)

// startCoral runs coral with args and env and waits until the node
// listens (its "control token in" line).
func startCoral(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), out: &cluster.LogBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = p.out
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.out, line)
			if m := proxyLine.FindStringSubmatch(line); m != nil {
				p.HTTP = m[1]
			}
			if m := controlLine.FindStringSubmatch(line); m != nil {
				p.Control = m[1]
			}
			if m := tokenLine.FindStringSubmatch(line); m != nil {
				p.Token = m[1]
				close(ready)
			}
		}
		p.exit = p.cmd.Wait()
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case <-ready:
		return p
	case <-p.done:
		t.Fatalf("coral %v exited during start: %v\n%s", args, p.exit, p.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("coral %v did not start\n%s", args, p.out)
	}
	return nil
}

// stop ends the process with SIGTERM and fails the test unless it exits
// cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("coral did not shut down in 30s")
	}
	if p.exit != nil {
		t.Errorf("coral exited with %v\n%s", p.exit, p.out)
	}
}

func (p *proc) status(t *testing.T) control.Status {
	t.Helper()
	c := &control.Client{BaseURL: "http://" + p.Control, HTTP: &http.Client{Timeout: 10 * time.Second}}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitStatus polls the status until ok holds (a generous deadline, not a
// timed assertion).
func (p *proc) waitStatus(t *testing.T, what string, ok func(control.Status) bool) control.Status {
	t.Helper()
	var st control.Status
	testkit.Eventually(t, 30*time.Second, what, func() bool {
		st = p.status(t)
		return ok(st)
	})
	return st
}

// startXvfb runs an X server on a display number it picks itself
// (-displayfd) and returns DISPLAY for it.
func startXvfb(t *testing.T) string {
	t.Helper()
	need(t, "Xvfb", "xvfb")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb exited without a display")
		}
		return ":" + n
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not start")
	}
	return ""
}

// captureScreen dumps the X screen with xwd.
func captureScreen(t *testing.T, display string) image.Image {
	t.Helper()
	out, err := exec.Command(need(t, "xwd", "x11-apps"), "-root", "-silent", "-display", display).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := decodeXWD(out)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// colours counts the distinct colours of img, up to limit: a blank screen
// has one or two.
func colours(img image.Image, limit int) int {
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r, g, bl}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}

// ocr reads the text in a PNG with tesseract, from a copy scaled up three
// times: screen text is small for OCR, and misreads it now and then at 1×.
func ocr(t *testing.T, pngPath string) string {
	t.Helper()
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	big := image.NewGray(image.Rect(0, 0, 3*b.Dx(), 3*b.Dy()))
	draw.CatmullRom.Scale(big, big.Bounds(), img, b, draw.Src, nil)
	scaled := filepath.Join(t.TempDir(), "ocr.png")
	writePNG(t, scaled, big)
	out, err := exec.Command(need(t, "tesseract", "tesseract-ocr"), scaled, "-").Output()
	if err != nil {
		t.Fatalf("tesseract: %v", err)
	}
	return string(out)
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// keepShot copies a screenshot into $CORAL_SHOTS, if set.
func keepShot(t *testing.T, src, name string) {
	t.Helper()
	dir := os.Getenv("CORAL_SHOTS")
	if dir == "" {
		return
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}
