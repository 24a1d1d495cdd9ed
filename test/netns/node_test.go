package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// buildCoral builds the coral binary for the test (CORAL_BIN overrides).
func buildCoral(t testing.TB) string {
	t.Helper()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// nodeSpec is what differs between the three nodes' configs.
type nodeSpec struct {
	role         string
	reachability string
	relayService bool
	bootstrap    []string
}

// node is one `coral serve` process inside its namespace.
type node struct {
	*cluster.Process
	role  string
	addr  netip.Addr
	dir   string
	token string
	hc    *http.Client
}

const (
	httpPort    = 8080
	controlPort = 8081
	p2pPort     = 4100
)

func (n *node) proxyAddr() string { return netip.AddrPortFrom(n.addr, httpPort).String() }
func (n *node) controlURL() string {
	return "http://" + netip.AddrPortFrom(n.addr, controlPort).String()
}
func (n *node) p2pAddr() netip.AddrPort { return netip.AddrPortFrom(n.addr, p2pPort) }

// startNode writes the config and runs `ip netns exec NS coral serve`. The
// process is stopped when the test ends.
func startNode(t *testing.T, l *lab, bin, secret string, spec nodeSpec, logs io.Writer) *node {
	t.Helper()
	addr := l.addr[spec.role]
	dir := filepath.Join(t.TempDir(), strings.ToLower(spec.role))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "[http]\nlisten = %q\n", netip.AddrPortFrom(addr, httpPort))
	fmt.Fprintf(&b, "[control]\nlisten = %q\n", netip.AddrPortFrom(addr, controlPort))
	fmt.Fprintf(&b, "[dns]\nlisten = \"\"\n")
	fmt.Fprintf(&b, "[cache]\nallow_private_origins = true\n")
	fmt.Fprintf(&b, "[p2p]\nlisten = [\"/ip4/%s/tcp/%d\"]\n", addr, p2pPort)
	fmt.Fprintf(&b, "secret_file = %q\nmdns = false\nnat_port_map = false\n", secret)
	fmt.Fprintf(&b, "reachability = %q\nrelay_service = %v\n", spec.reachability, spec.relayService)
	q := make([]string, len(spec.bootstrap))
	for i, s := range spec.bootstrap {
		q[i] = fmt.Sprintf("%q", s)
	}
	fmt.Fprintf(&b, "bootstrap = [%s]\n", strings.Join(q, ", "))
	fmt.Fprintf(&b, "[log]\nlevel = \"debug\"\n")
	cfg := filepath.Join(dir, "coral.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	n := &node{
		Process: runInNamespace(t, l.ns[spec.role], bin, cfg, logs, spec.role+": "),
		role:    spec.role, addr: addr, dir: dir,
		hc: &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	return n
}

// runInNamespace runs `coral serve -config cfg` inside the namespace ns
// until the test ends: `ip netns exec` execs coral in place, so the
// process, its signals and its process group are coral's own. At cleanup it
// gets SIGTERM and, after 5 s, SIGKILL (tests kill and hang nodes on
// purpose, so how it ended is not checked here).
func runInNamespace(t *testing.T, ns, bin, cfg string, logs io.Writer, prefix string) *cluster.Process {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "serve", "-config", cfg)
	p, err := cluster.Spawn(cmd, logs, prefix)
	if err != nil {
		t.Fatalf("start %s: %v", strings.TrimSuffix(prefix, ": "), err)
	}
	t.Cleanup(func() { _ = p.Terminate(5 * time.Second) })
	return p
}

// status fetches /api/status.
func (n *node) status(ctx context.Context) (control.Status, error) {
	c := &control.Client{BaseURL: n.controlURL(), HTTP: &http.Client{Timeout: 3 * time.Second}}
	return c.Status(ctx)
}

// waitFor polls the node's status until ok holds, the node exits or ctx
// ends.
func (n *node) waitFor(ctx context.Context, what string, ok func(control.Status) bool) (control.Status, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := n.status(ctx)
		if err == nil && ok(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			last := "no status"
			if err != nil {
				last = err.Error()
			} else if b, jerr := json.Marshal(st); jerr == nil {
				last = string(b)
			}
			return st, fmt.Errorf("node %s: waiting for %s: %w (last: %s)", n.role, what, ctx.Err(), last)
		case <-n.Done():
			return st, fmt.Errorf("node %s exited while waiting for %s", n.role, what)
		case <-tick.C:
		}
	}
}

// loadToken reads the control token the node created in its data dir.
func (n *node) loadToken() error {
	b, err := os.ReadFile(filepath.Join(n.dir, "data", "control.token"))
	if err != nil {
		return fmt.Errorf("node %s: control token: %w", n.role, err)
	}
	n.token = strings.TrimSpace(string(b))
	return nil
}

func (n *node) controlDo(ctx context.Context, method, path string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, n.controlURL()+path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("node %s: %s %s: %w", n.role, method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// dshtPut stores value under key through the node's control API.
func (n *node) dshtPut(ctx context.Context, key, value string) error {
	body, _ := json.Marshal(map[string]string{"key": key, "value": value, "ttl": "5m"})
	code, b, err := n.controlDo(ctx, http.MethodPost, "/api/dsht/put", bytes.NewReader(body))
	if err != nil {
		return err
	}
	if code != http.StatusNoContent {
		return fmt.Errorf("node %s: dsht put: %d %s", n.role, code, bytes.TrimSpace(b))
	}
	return nil
}

// dshtGet returns the values the DSHT holds under key, seen from the node.
func (n *node) dshtGet(ctx context.Context, key string) ([]string, error) {
	code, b, err := n.controlDo(ctx, http.MethodGet, "/api/dsht/get?key="+url.QueryEscape(key), nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("node %s: dsht get: %d %s", n.role, code, bytes.TrimSpace(b))
	}
	var vals []struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &vals); err != nil {
		return nil, fmt.Errorf("node %s: dsht get: %w: %s", n.role, err, b)
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = v.Value
	}
	return out, nil
}

// get asks the node's proxy for a Coralized URL.
func (n *node) get(ctx context.Context, host, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.proxyAddr()+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Host = host
	resp, err := n.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s%s via %s: %w", host, path, n.role, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, b, fmt.Errorf("GET %s%s via %s: read body: %w", host, path, n.role, err)
	}
	return resp, b, nil
}

// logBuffer collects the nodes' output for the failure report.
type logBuffer = cluster.LogBuffer

// nodeOutput is a buffer for the nodes' output, printed when the test fails
// (or always, with CORAL_NETNS_LOG set).
func nodeOutput(t *testing.T) *logBuffer {
	logs := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CORAL_NETNS_LOG") != "" {
			t.Logf("node output:\n%s", logs.String())
		}
	})
	return logs
}
