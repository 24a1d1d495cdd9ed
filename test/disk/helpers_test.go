package disk

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
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

// proc is one running `coral serve` and its output.
type proc struct {
	*cluster.Process
	out *logBuf
}

// startCoral runs `coral serve -config cfg` and waits until it listens; the
// test's cleanup stops it and checks it exits cleanly.
func startCoral(t *testing.T, bin, cfg string, out *logBuf) *proc {
	t.Helper()
	return &proc{Process: cluster.Run(t, exec.Command(bin, "serve", "-config", cfg), out), out: out}
}

// stop ends the process with SIGTERM (a clean shutdown) and fails the test
// unless it exits cleanly.
func (p *proc) stop(t *testing.T) { p.Stop(t, p.out) }

func (p *proc) status(t *testing.T) control.Status {
	t.Helper()
	st, err := p.Status(context.Background())
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
	return p.WaitStatusT(t, what, ok)
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
type logBuf = cluster.LogBuffer

func buildCoral(t *testing.T) string {
	t.Helper()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
