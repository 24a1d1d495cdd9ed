package disk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
)

// mountTmpfs mounts a tmpfs of size bytes at a fresh directory, unmounted
// when the test ends.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not root: mounting the small tmpfs this test fills needs root (make test runs as root in CI)")
	}
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// freeBytes is the space left on the filesystem holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fillDisk writes a file at path until the filesystem has no room left, as
// another program filling the disk would; it returns the bytes written.
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	var n int64
	for {
		m, err := f.Write(chunk)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
	}
}

// proc is one running `coral serve`.
type proc struct {
	HTTP, Control string
	cmd           *exec.Cmd
	out           *logBuf
	done          chan struct{}
	exit          error
}

var listenLine = regexp.MustCompile(`^\s+(proxy|control)\s{2,}http://(\S+)`)

// startCoral runs `coral serve -config cfg` and waits until it listens.
func startCoral(t *testing.T, bin, cfg string, out *logBuf) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, "serve", "-config", cfg), out: out, done: make(chan struct{})}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stderr = out
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
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(out, line)
			if m := listenLine.FindStringSubmatch(line); m != nil && m[1] == "proxy" {
				p.HTTP = m[2]
			} else if m != nil {
				p.Control = m[2]
			}
			if !signalled && strings.HasPrefix(line, "  control token") {
				signalled = true
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
		t.Fatalf("coral exited during start: %v\n%s", p.exit, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("coral did not start\n%s", out)
	}
	return nil
}

// stop ends the process with SIGTERM (a clean shutdown) and fails the test
// unless it exits cleanly.
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

// page is the control listener's status page.
func (p *proc) page(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("http://" + p.Control + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
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

// visit GETs path through the proxy for host and checks that the body is
// complete and is the one the origin serves; it returns X-Coral-Cache.
func (p *proc) visit(t *testing.T, host, path string, want [32]byte, size int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.HTTP+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, p.out)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || len(b) != size || sha256.Sum256(b) != want {
		t.Fatalf("GET %s: %d, %d of %d bytes, read error %v, body intact %v\n%s",
			path, resp.StatusCode, len(b), size, err, sha256.Sum256(b) == want, p.out)
	}
	return resp.Header.Get("X-Coral-Cache")
}

// logBuf collects a process's output for failure messages and checks.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func buildCoral(t *testing.T) string {
	t.Helper()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
