package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
)

// Process is one running coral command whose start-up banner has been read:
// the addresses it listens on and where it wrote its control token. Every
// multi-process test and benchmark starts coral through Launch, so the
// banner is parsed in one place.
type Process struct {
	HTTP      string // host:port of the proxy
	Control   string // host:port of the control listener
	DNS       string // host:port of the DNS server
	TokenFile string // the control token's path
	cmd       *exec.Cmd
	done      chan struct{} // closed at exit
	ready     chan struct{} // closed at the control token line
	exit      error
}

var (
	listenLine = regexp.MustCompile(`^\s+(proxy|control|dns)\s{2,}(?:http://)?(\S+)`)
	tokenLine  = regexp.MustCompile(`^\s+control token in (\S+)`)
)

// Launch starts cmd and returns once coral has printed its control token
// line (it listens by then), or fails if it exits first or ctx ends.
func Launch(ctx context.Context, cmd *exec.Cmd, log io.Writer, prefix string) (*Process, error) {
	p, err := Spawn(cmd, log, prefix)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(ctx); err != nil {
		p.Kill()
		return nil, fmt.Errorf("cluster: %s: %w", prefixOr(prefix, "coral"), err)
	}
	return p, nil
}

// Spawn starts cmd and reads its output in the background: every line goes
// to log with prefix. The process dies with the test (Pdeathsig) and gets
// its own process group, so Kill takes its children too. cmd.Stdout must be
// unset; cmd.Stderr, if unset, goes to log as well.
func Spawn(cmd *exec.Cmd, log io.Writer, prefix string) (*Process, error) {
	if log == nil {
		log = io.Discard
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if cmd.Stderr == nil {
		cmd.Stderr = prefixWriter(log, prefix)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cluster: start %s: %w", cmd.Path, err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), ready: make(chan struct{})}
	go p.readBanner(stdout, log, prefix)
	return p, nil
}

// WaitReady waits until coral has printed its control token line (the
// listen addresses are known by then); it fails if coral exits first.
func (p *Process) WaitReady(ctx context.Context) error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("exited during start: %v", p.exit)
	case <-ctx.Done():
		return fmt.Errorf("start: %w", ctx.Err())
	}
}

// readBanner copies the output to log, notes the listen addresses and
// closes ready at the control token line; it records the exit status.
func (p *Process) readBanner(stdout io.Reader, log io.Writer, prefix string) {
	defer close(p.done)
	sc := bufio.NewScanner(stdout)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(log, "%s%s\n", prefix, line)
		if m := listenLine.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "proxy":
				p.HTTP = m[2]
			case "control":
				p.Control = m[2]
			case "dns":
				p.DNS = m[2]
			}
		}
		if m := tokenLine.FindStringSubmatch(line); m != nil && !signalled {
			p.TokenFile = m[1]
			signalled = true
			close(p.ready)
		}
	}
	p.exit = p.cmd.Wait()
}

func prefixOr(prefix, fallback string) string {
	if prefix == "" {
		return fallback
	}
	return prefix
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Args are the command's arguments (the program first).
func (p *Process) Args() []string { return p.cmd.Args }

// Pid is the process's ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process alone.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill ends the process and its children at once (SIGKILL), as a crash
// would, and waits for it.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// Terminate asks the process to shut down (SIGTERM) and waits up to grace.
// It returns an error unless coral exited cleanly within it (then it is
// killed): a node that cannot shut down cleanly is a bug a test must see.
func (p *Process) Terminate(grace time.Duration) error {
	if p.Exited() {
		return p.exitError()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitError()
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("coral did not shut down within %v of SIGTERM", grace)
	}
}

func (p *Process) exitError() error {
	if p.exit != nil {
		return fmt.Errorf("coral exited with %w", p.exit)
	}
	return nil
}

// ExitError is how the process ended (nil for a clean exit); it waits for
// the end.
func (p *Process) ExitError() error {
	<-p.done
	return p.exit
}

// Client is a control API client for the process (without a token: the
// token-guarded calls read TokenFile).
func (p *Process) Client() *control.Client {
	return &control.Client{BaseURL: "http://" + p.Control, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Status fetches the process's /api/status.
func (p *Process) Status(ctx context.Context) (control.Status, error) {
	return p.Client().Status(ctx)
}

// WaitStatus polls the status until ok holds, the process exits or ctx
// ends (a deadline, not a timed assertion).
func (p *Process) WaitStatus(ctx context.Context, ok func(control.Status) bool) (control.Status, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := p.Status(ctx)
		if err == nil && ok(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-p.done:
			return st, errors.New("the process exited")
		case <-tick.C:
		}
	}
}

// Run launches cmd for a test and waits until coral listens: the test
// fails if it does not start within a minute. See Spawn for the rest.
func Run(t testing.TB, cmd *exec.Cmd, log *LogBuffer) *Process {
	t.Helper()
	p := SpawnT(t, cmd, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatalf("coral %v: %v\n%s", cmd.Args[1:], err, log)
	}
	return p
}

// SpawnT starts cmd for a test without waiting for it to listen; its output
// goes to log (which may be nil). At cleanup coral is stopped with SIGTERM
// and the test fails unless it exits cleanly.
func SpawnT(t testing.TB, cmd *exec.Cmd, log *LogBuffer) *Process {
	t.Helper()
	if log == nil {
		log = &LogBuffer{}
	}
	p, err := Spawn(cmd, log, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(t, log) })
	return p
}

// Stop ends the process with SIGTERM and fails the test unless it exits
// cleanly within 30 s; log is printed with the failure. Stopping an ended
// process only checks how it ended.
func (p *Process) Stop(t testing.TB, log fmt.Stringer) {
	t.Helper()
	if err := p.Terminate(30 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, log)
	}
}

// WaitStatusT is WaitStatus for a test: it fails the test naming what it
// waited for after 30 s.
func (p *Process) WaitStatusT(t testing.TB, what string, ok func(control.Status) bool) control.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := p.WaitStatus(ctx, ok)
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return st
}

// StartT starts a cluster for a test (see Start; the nodes' output goes to
// a buffer in place of opts.Log): the test fails if the nodes have not
// found each other within timeout, the cluster stops at cleanup, and the
// output is printed when the test failed.
func StartT(t testing.TB, timeout time.Duration, opts Options) *Cluster {
	t.Helper()
	logs := &LogBuffer{}
	opts.Log = logs
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := Start(ctx, opts)
	t.Cleanup(func() {
		if c != nil {
			c.Stop()
		}
		if t.Failed() {
			t.Logf("node logs:\n%s", logs)
		}
	})
	if err != nil {
		t.Fatalf("start cluster: %v\n%s", err, logs)
	}
	return c
}
