package netns

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A volunteer's node must never become a way into the volunteer's own
// machine or network. Two namespaces on one link, with
// public-looking documentation addresses (192.0.2.0/24, 2001:db8::/32) so
// the private-range check alone would let them through:
//
//	home  192.0.2.1/24 2001:db8:c0::1/64 ── lan0 ── 192.0.2.77/24 2001:db8:c0::77/64  device
//
// "home" runs `coral serve` with the default config (only data_dir set)
// and a listener holding a secret on its own addresses; "device" is
// another machine in the same on-link prefix with its own secret. Asked by
// IP and by name (each namespace's /etc/hosts), the home node fetches
// neither, answers 403 naming allow_private_origins every time, and the
// secret listeners see no connection at all. A second node, on "device"
// with allow_private_origins = true, shows the listeners do answer, that a
// closed port and an open port speaking something else look the same to a
// visitor, and that a bad port (X11's 6000) is not dialled even then.
func TestNodeRefusesItsOwnNetwork(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	logs := nodeOutput(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home, device := buildHomeLink(t, ctx)

	var secretHits, badPortConns atomic.Int64
	secret := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		fmt.Fprintf(w, "SECRET of %s", r.Host)
	})
	for _, l := range []struct{ ns, addr string }{
		{home, "192.0.2.1:9000"}, {home, "[2001:db8:c0::1]:9000"},
		{device, "192.0.2.77:9000"}, {device, "[2001:db8:c0::77]:9000"},
	} {
		serveIn(t, l.ns, l.addr, secret)
	}
	banner := listenIn(t, home, "192.0.2.1:9022")
	go acceptAll(banner, func(c net.Conn) { io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n") })
	x11 := listenIn(t, home, "192.0.2.1:6000")
	go acceptAll(x11, func(net.Conn) { badPortConns.Add(1) })

	homeNode := startPlainNode(t, ctx, bin, home, "", logs)
	refused := []string{
		"192.0.2.1.9000.localhost",    // its own IPv4 address
		"192.0.2.77.9000.localhost",   // another machine in its on-link prefix
		"self.example.9000.localhost", // a name for its own IPv4 address
		"self6.example.9000.localhost",
		"device6.example.9000.localhost", // a global IPv6 neighbour
		"192.0.2.1.9000.localhost",       // again: not remembered as a dead origin
	}
	for _, host := range refused {
		status, body, err := homeNode.get(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusForbidden || !strings.Contains(body, "allow_private_origins") ||
			strings.Contains(body, "tried recently") || strings.Contains(body, "SECRET") {
			t.Errorf("home node, %s: %d %q; want a 403 naming allow_private_origins", host, status, body)
		}
	}
	if n := secretHits.Load(); n != 0 {
		t.Fatalf("the secret listeners answered %d requests through the home node", n)
	}

	lanNode := startPlainNode(t, ctx, bin, device, "[cache]\nallow_private_origins = true\n", logs)
	status, body, err := lanNode.get(ctx, "192.0.2.1.9000.localhost")
	if err != nil || status != http.StatusOK || !strings.Contains(body, "SECRET") {
		t.Fatalf("with allow_private_origins the secret should be reachable (the listener works): %d %q %v", status, body, err)
	}
	cs, closedBody, err := lanNode.get(ctx, "192.0.2.1.9023.localhost")
	if err != nil {
		t.Fatal(err)
	}
	bs, bannerBody, err := lanNode.get(ctx, "192.0.2.1.9022.localhost")
	if err != nil {
		t.Fatal(err)
	}
	if cs != bs || closedBody != bannerBody || cs != http.StatusBadGateway {
		t.Errorf("closed port: %d %q\nSSH port: %d %q\nwant the same 502 page", cs, closedBody, bs, bannerBody)
	}
	status, body, err = lanNode.get(ctx, "192.0.2.1.6000.localhost")
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusForbidden || !strings.Contains(body, "port 6000") || badPortConns.Load() != 0 {
		t.Errorf("port 6000: %d %q, %d connections; want a 403 and none", status, body, badPortConns.Load())
	}
}

// buildHomeLink makes the two namespaces and their /etc/hosts files; they
// are removed when the test ends.
func buildHomeLink(t *testing.T, ctx context.Context) (home, device string) {
	t.Helper()
	names := addNamespaces(t, ctx, "home", "device")
	home, device = names[0], names[1]
	hosts := "127.0.0.1 localhost\n192.0.2.1 self.example\n2001:db8:c0::1 self6.example\n2001:db8:c0::77 device6.example\n"
	cmds := [][]string{
		{"ip", "-n", home, "link", "set", "lo", "up"},
		{"ip", "-n", device, "link", "set", "lo", "up"},
		{"ip", "link", "add", "lan0", "netns", home, "type", "veth", "peer", "name", "lan0", "netns", device},
		{"ip", "-n", home, "addr", "add", "192.0.2.1/24", "dev", "lan0"},
		{"ip", "-n", home, "addr", "add", "2001:db8:c0::1/64", "dev", "lan0", "nodad"},
		{"ip", "-n", device, "addr", "add", "192.0.2.77/24", "dev", "lan0"},
		{"ip", "-n", device, "addr", "add", "2001:db8:c0::77/64", "dev", "lan0", "nodad"},
		{"ip", "-n", home, "link", "set", "lan0", "up"},
		{"ip", "-n", device, "link", "set", "lan0", "up"},
	}
	for _, c := range cmds {
		if err := run(ctx, c...); err != nil {
			t.Fatal(err)
		}
	}
	// `ip netns exec` mounts /etc/netns/NS/hosts over /etc/hosts.
	for _, ns := range []string{home, device} {
		dir := filepath.Join("/etc/netns", ns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return home, device
}

// inNetns runs fn on an OS thread switched into namespace ns, then
// switches the thread back. Sockets fn creates stay in ns. The thread must
// survive: a child started with Pdeathsig from it would be killed if the
// runtime discarded it. Only if switching back fails is it left locked
// (and discarded).
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func serveIn(t *testing.T, ns, addr string, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(listenIn(t, ns, addr))
	t.Cleanup(func() { srv.Close() })
}

func acceptAll(ln net.Listener, handle func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handle(c)
		c.Close()
	}
}

// plainNode is a `coral serve` with the default config, reached from
// inside its namespace as a visitor on the same machine would.
type plainNode struct {
	ns string
	hc *http.Client
}

// startPlainNode runs coral in ns with a config that only sets data_dir
// (and extra), and waits until its proxy answers on the default :8080.
func startPlainNode(t *testing.T, ctx context.Context, bin, ns, extra string, logs io.Writer) *plainNode {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "coral.toml")
	text := fmt.Sprintf("data_dir = %q\n%s", filepath.Join(dir, "data"), extra)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := runInNamespace(t, ns, bin, cfg, logs, ns+": ")
	n := &plainNode{ns: ns, hc: clientIn(ns, 20*time.Second)}
	for {
		status, _, err := n.get(ctx, "localhost")
		if err == nil && status == http.StatusOK {
			return n
		}
		select {
		case <-proc.Done():
			t.Fatalf("coral in %s exited before serving: %v", ns, proc.ExitError())
		case <-ctx.Done():
			t.Fatalf("coral in %s not serving: %v", ns, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// get asks the node's proxy on 127.0.0.1:8080 for / of a Coralized host.
func (n *plainNode) get(ctx context.Context, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:8080/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host + ":8080"
	resp, err := n.hc.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s in %s: %w", host, n.ns, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// addNamespaces makes one namespace per role (named for this test run),
// removed with their /etc/netns files when the test ends.
func addNamespaces(t *testing.T, ctx context.Context, roles ...string) []string {
	t.Helper()
	var names []string
	t.Cleanup(func() {
		for _, ns := range names {
			_ = run(context.Background(), "ip", "netns", "del", ns)
			_ = os.RemoveAll(filepath.Join("/etc/netns", ns))
		}
	})
	for _, role := range roles {
		ns := fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), role)
		if err := run(ctx, "ip", "netns", "add", ns); err != nil {
			if strings.Contains(err.Error(), "Operation not permitted") || strings.Contains(err.Error(), "Permission denied") {
				t.Skipf("netns: needs root and iproute2/iptables: %v", err)
			}
			t.Fatal(err)
		}
		names = append(names, ns)
	}
	return names
}

// clientIn is an HTTP client whose connections are made inside ns.
func clientIn(ns string, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = inNetns(ns, func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
}
