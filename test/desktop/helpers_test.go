package desktop

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
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

// proc is a running coral process and its output.
type proc struct {
	*cluster.Process
	out *cluster.LogBuffer
}

// startCoral runs coral with args and env and waits until the node
// listens; the test's cleanup stops it and checks it exits cleanly.
func startCoral(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &cluster.LogBuffer{}
	return &proc{Process: cluster.Run(t, cmd, out), out: out}
}

// stop ends the process with SIGTERM and fails the test unless it exits
// cleanly.
func (p *proc) stop(t *testing.T) { p.Stop(t, p.out) }

func (p *proc) status(t *testing.T) control.Status {
	t.Helper()
	st, err := p.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitStatus polls the status until ok holds (a generous deadline, not a
// timed assertion).
func (p *proc) waitStatus(t *testing.T, what string, ok func(control.Status) bool) control.Status {
	t.Helper()
	return p.WaitStatusT(t, what, ok)
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
