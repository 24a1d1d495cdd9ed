package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	coralnode "github.com/coralcdn/coral/app/node"
)

// homeLAN is a LAN of five hosts (namespaces n1..n5 on one bridge), each
// running coral with the default config a user gets: proxy on :8080,
// control and DNS on its own loopback, relays and mDNS on, no advertise.
type homeLAN struct {
	ns   []string
	addr []netip.Addr
}

func newHomeLAN(t *testing.T) *homeLAN {
	t.Helper()
	pid := os.Getpid()
	removeLeftovers(func(p int) bool { return p == pid || !processAlive(p) })
	subnet, err := freeSubnet(pid)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() { removeLeftovers(func(p int) bool { return p == pid }) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	br := fmt.Sprintf("%s%d-nbr", nsPrefix, pid)
	if err := run(ctx, "ip", "netns", "add", br); err != nil {
		if strings.Contains(err.Error(), "Operation not permitted") || strings.Contains(err.Error(), "Permission denied") {
			t.Skipf("netns: needs root and iproute2: %v", err)
		}
		t.Fatal(err)
	}
	cmds := [][]string{
		{"ip", "-n", br, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"ip", "-n", br, "link", "set", "br0", "up"},
	}
	h := &homeLAN{}
	base := subnet.Addr().As4()
	for i := 1; i <= 5; i++ {
		ns, port := fmt.Sprintf("%s%d-n%d", nsPrefix, pid, i), fmt.Sprintf("p%d", i)
		a := base
		a[3] = byte(i)
		addr := netip.AddrFrom4(a)
		h.ns, h.addr = append(h.ns, ns), append(h.addr, addr)
		cmds = append(cmds,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "link", "add", "lan0", "netns", ns, "type", "veth", "peer", "name", port, "netns", br},
			[]string{"ip", "-n", br, "link", "set", port, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", netip.PrefixFrom(addr, 24).String(), "dev", "lan0"},
			[]string{"ip", "-n", ns, "link", "set", "lan0", "up"},
		)
	}
	for _, c := range cmds {
		if err := run(ctx, c...); err != nil {
			t.Fatalf("netns: %v", err)
		}
	}
	return h
}

// exec runs a command inside host i's namespace and returns its stdout.
func (h *homeLAN) exec(ctx context.Context, i int, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.ns[i]}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// start runs `coral serve -config cfg` in host i until the test ends.
func (h *homeLAN) start(t *testing.T, i int, bin, cfg string, logs *logBuffer) {
	runInNamespace(t, h.ns[i], bin, cfg, logs, fmt.Sprintf("n%d: ", i+1))
}

// status is host i's /api/status, read on its own loopback.
func (h *homeLAN) status(ctx context.Context, i int) (control.Status, error) {
	var st control.Status
	out, err := h.exec(ctx, i, "curl", "-sf", "--max-time", "3", "http://127.0.0.1:8081/api/status")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// eventually polls cond for host i until it holds or ctx ends.
func (h *homeLAN) eventually(ctx context.Context, t *testing.T, i int, what string, cond func(ctx context.Context) bool) {
	t.Helper()
	for !cond(ctx) {
		select {
		case <-ctx.Done():
			t.Fatalf("n%d: timed out waiting for %s", i+1, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Start a network, join it, run it — the README's commands on five hosts
// with the default config: the first node's invite code brings four others
// in; the operator pauses the proxies through any member and every node
// answers 503 with the message; a newer document resumes them all.
func TestStartJoinRunNetwork(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	h := newHomeLAN(t)
	logs := nodeOutput(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "operator.key")
	pub, err := exec.Command(bin, "operator", "keygen", "-out", keyFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	cfgs := make([]string, 5)
	for i := range cfgs {
		cfgs[i] = filepath.Join(dir, fmt.Sprintf("n%d.toml", i+1))
		text := fmt.Sprintf("data_dir = \"n%d\"\n", i+1) // the only key the hosts need to differ in
		if i == 0 {
			text += fmt.Sprintf("[operator]\nkey = %q\n", strings.TrimSpace(string(pub)))
		}
		if err := os.WriteFile(cfgs[i], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	h.start(t, 0, bin, cfgs[0], logs)
	var code string
	h.eventually(ctx, t, 0, "an invite code with the LAN address", func(ctx context.Context) bool {
		out, err := h.exec(ctx, 0, bin, "invite", "-config", cfgs[0])
		code = strings.TrimSpace(out)
		inv, perr := coralnode.ParseInvite(code)
		return err == nil && perr == nil && slices.ContainsFunc(inv.Bootstrap, func(a string) bool {
			return strings.HasPrefix(a, "/ip4/"+h.addr[0].String()+"/tcp/4100/p2p/")
		})
	})
	for i := 1; i < 5; i++ {
		if out, err := exec.Command(bin, "join", "-config", cfgs[i], code).CombinedOutput(); err != nil {
			t.Fatalf("join n%d: %v %s", i+1, err, out)
		}
		h.start(t, i, bin, cfgs[i], logs)
	}
	for i := range 5 {
		h.eventually(ctx, t, i, "a connected member", func(ctx context.Context) bool {
			st, err := h.status(ctx, i)
			return err == nil && st.P2P != nil && st.P2P.ConnectedPeers >= 1 && st.RunState != nil && st.RunState.Operator != ""
		})
	}

	publish := func(from int, doc string) {
		t.Helper()
		f := filepath.Join(dir, "doc.json")
		os.WriteFile(f, []byte(doc), 0o644)
		if out, err := h.exec(ctx, from, bin, "operator", "publish", "-key", keyFile, "-config", cfgs[from], f); err != nil {
			t.Fatalf("publish through n%d: %v %s", from+1, err, out)
		}
	}
	proxyAnswer := func(ctx context.Context, i int) string {
		out, _ := h.exec(ctx, i, "curl", "-s", "--max-time", "5", "-w", " %{http_code}", "-H", "Host: localhost:8080",
			"http://"+netip.AddrPortFrom(h.addr[i], 8080).String()+"/")
		return out
	}
	published := time.Now()
	publish(2, `{"serial": 2, "paused": ["proxy"], "message": "Proxies paused for maintenance."}`)
	for i := range 5 {
		h.eventually(ctx, t, i, "the pause", func(ctx context.Context) bool {
			a := proxyAnswer(ctx, i)
			return strings.HasSuffix(a, " 503") && strings.Contains(a, "Proxies paused for maintenance.")
		})
	}
	t.Logf("pause in force on all 5 hosts %v after publish through n3", time.Since(published).Round(time.Millisecond))
	publish(4, `{"serial": 3}`)
	for i := range 5 {
		h.eventually(ctx, t, i, "the resume", func(ctx context.Context) bool { return strings.HasSuffix(proxyAnswer(ctx, i), " 200") })
	}
}
