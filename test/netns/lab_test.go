package netns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Names. Everything a run creates carries its PID, so concurrent runs do
// not collide and a later run can tell a dead run's leftovers from a live
// one's: network namespaces are "coralns-<pid>-<role>" and the two links
// in the root namespace are "cns<pid>h" (the test's port on the bridge) and
// "cns<pid>o" (the origin link to A). Interface names stay under 15 bytes.
const (
	nsPrefix   = "coralns-"
	linkPrefix = "cns"
)

// dialEnv switches the test binary into a one-shot TCP probe (see
// TestMain): run inside a namespace it tells whether an address is
// reachable from there, with no tool but the binary itself.
const dialEnv = "CORAL_NETNS_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(dialEnv); addr != "" {
		os.Exit(probeMain(addr))
	}
	// On Ctrl-C or a kill from outside, tear this run's network down
	// before dying; the coral children die with us (Pdeathsig).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		removeLeftovers(func(pid int) bool { return pid == os.Getpid() })
		fmt.Fprintf(os.Stderr, "netns: %v: removed this run's namespaces\n", s)
		os.Exit(1)
	}()
	os.Exit(m.Run())
}

func probeMain(addr string) int {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	c.Close()
	fmt.Println("connected")
	return 0
}

// requireNetAdmin skips unless the test can build namespaces.
func requireNetAdmin(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("netns: starts namespaces and coral processes; skipped with -short")
	}
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("netns: needs root and iproute2/iptables: running as uid %d", uid)
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns: needs root and iproute2/iptables: %v", err)
		}
	}
}

// lab is the network: namespaces A, B, C on a bridge in namespace "br",
// the test process on the same bridge through its own veth, and an origin
// link between the test process and A only.
//
//	           root ns (test): .126/25 ──┐
//	A .1/25 ── ┐                         │
//	B .2/25 ── ┼── br0 (ns "br") ────────┘
//	C .3/25 ── ┘
//	root ns (origin) .129/30 ── .130/30 A
type lab struct {
	pid     int
	subnet  netip.Prefix
	ns      map[string]string     // role -> namespace name
	addr    map[string]netip.Addr // A, B, C on the bridge
	host    netip.Addr            // the test process on the bridge
	origin  netip.Addr            // the test process on the origin link
	originA netip.Addr            // A on the origin link

	closeOnce sync.Once
}

// newLab builds the network; it is torn down when the test ends, whatever
// happened.
func newLab(t *testing.T) *lab {
	t.Helper()
	pid := os.Getpid()
	removeLeftovers(func(p int) bool { return p == pid || !processAlive(p) })
	subnet, err := freeSubnet(pid)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	base := subnet.Addr().As4()
	at := func(n byte) netip.Addr { b := base; b[3] = n; return netip.AddrFrom4(b) }
	l := &lab{
		pid:    pid,
		subnet: subnet,
		ns:     map[string]string{},
		addr:   map[string]netip.Addr{"A": at(1), "B": at(2), "C": at(3)},
		host:   at(126),
		origin: at(129), originA: at(130),
	}
	for _, r := range []string{"br", "A", "B", "C"} {
		l.ns[r] = fmt.Sprintf("%s%d-%s", nsPrefix, pid, strings.ToLower(r))
	}
	t.Cleanup(l.close)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The first namespace tells whether we may build any: uid 0 without
	// CAP_SYS_ADMIN (an unprivileged container) is "not root" here.
	if err := run(ctx, "ip", "netns", "add", l.ns["br"]); err != nil {
		if strings.Contains(err.Error(), "Operation not permitted") || strings.Contains(err.Error(), "Permission denied") {
			t.Skipf("netns: needs root and iproute2/iptables: %v", err)
		}
		t.Fatalf("netns: %v", err)
	}
	if err := l.build(ctx); err != nil {
		t.Fatalf("netns: build network: %v", err)
	}
	return l
}

func (l *lab) hostLink() string   { return fmt.Sprintf("%s%dh", linkPrefix, l.pid) }
func (l *lab) originLink() string { return fmt.Sprintf("%s%do", linkPrefix, l.pid) }

func (l *lab) build(ctx context.Context) error {
	cmds := append(l.bridgeCommands([]string{"A", "B", "C"}),
		// The origin link: only A has a route to the origin.
		[]string{"ip", "link", "add", l.originLink(), "type", "veth", "peer", "name", "origin0", "netns", l.ns["A"]},
		[]string{"ip", "addr", "add", netip.PrefixFrom(l.origin, 30).String(), "dev", l.originLink()},
		[]string{"ip", "link", "set", l.originLink(), "up"},
		[]string{"ip", "-n", l.ns["A"], "addr", "add", netip.PrefixFrom(l.originA, 30).String(), "dev", "origin0"},
		[]string{"ip", "-n", l.ns["A"], "link", "set", "origin0", "up"},
	)
	for _, c := range cmds {
		if err := run(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

// cut drops every packet between a and b, in both namespaces and both
// directions, as a broken path between two home routers would.
func (l *lab) cut(ctx context.Context, a, b string) error {
	for _, p := range [][2]string{{a, b}, {b, a}} {
		ns, other := l.ns[p[0]], l.addr[p[1]].String()
		for _, rule := range [][]string{
			{"INPUT", "-s", other, "-j", "DROP"},
			{"OUTPUT", "-d", other, "-j", "DROP"},
		} {
			args := append([]string{"ip", "netns", "exec", ns, "iptables", "-w", "5", "-A"}, rule...)
			if err := run(ctx, args...); err != nil {
				return fmt.Errorf("iptables in %s: %w", p[0], err)
			}
		}
	}
	return nil
}

// dial tries a TCP connection from inside role's namespace, with the test
// binary as the client. It returns nil when the connection was accepted,
// and the dialler's error text otherwise.
func (l *lab) dial(ctx context.Context, role string, addr netip.AddrPort) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.ns[role], self, "-test.run=^$")
	cmd.Env = append(os.Environ(), dialEnv+"="+addr.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -> %s: %s (%v)", role, addr, bytes.TrimSpace(out), err)
	}
	return nil
}

// close removes the namespaces (with their veths, bridge and iptables
// rules) and the root-namespace links. Processes must be gone first for
// the namespaces to vanish at once; the nodes' own cleanups, registered
// later, run earlier.
func (l *lab) close() {
	l.closeOnce.Do(func() {
		removeLeftovers(func(p int) bool { return p == l.pid })
	})
}

// removeLeftovers deletes namespaces and links of runs whose PID match
// selects. Errors are ignored: the objects may already be gone.
func removeLeftovers(match func(pid int) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output(); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
				continue
			}
			pidStr, _, ok := strings.Cut(strings.TrimPrefix(f[0], nsPrefix), "-")
			if pid, err := strconv.Atoi(pidStr); ok && err == nil && match(pid) {
				_ = run(ctx, "ip", "netns", "del", f[0])
			}
		}
	}
	if out, err := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output(); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			// "12: cns1234h@if3: <...>"
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			rest, ok := strings.CutPrefix(name, linkPrefix)
			if !ok || len(rest) < 2 || (rest[len(rest)-1] != 'h' && rest[len(rest)-1] != 'o') {
				continue
			}
			if pid, err := strconv.Atoi(rest[:len(rest)-1]); err == nil && match(pid) {
				_ = run(ctx, "ip", "link", "del", name)
			}
		}
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// freeSubnet picks a 10.x.y.0/24 that overlaps nothing the root namespace
// routes, starting from one derived from pid.
func freeSubnet(pid int) (netip.Prefix, error) {
	out, err := exec.Command("ip", "-4", "-o", "route", "show", "table", "all").Output()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list routes: %w", err)
	}
	routeTypes := map[string]bool{"unicast": true, "local": true, "broadcast": true, "multicast": true,
		"anycast": true, "blackhole": true, "unreachable": true, "prohibit": true, "throw": true, "nat": true}
	var used []netip.Prefix
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 1 && routeTypes[f[0]] {
			f = f[1:]
		}
		if len(f) == 0 || f[0] == "default" {
			continue
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			used = append(used, p.Masked())
		} else if a, err := netip.ParseAddr(f[0]); err == nil {
			used = append(used, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for i := range 50 * 256 {
		n := pid + i
		cand := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + (n/256)%50), byte(n % 256), 0}), 24)
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, nil
		}
	}
	return netip.Prefix{}, errors.New("no free 10.200-249.x.0/24 subnet")
}

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// bridgeCommands build the lab's LAN: one bridge in its own namespace, each
// role's namespace on it through a veth pair (lan0, its address in a /25),
// and a veth from the host so the test itself can reach every node.
func (l *lab) bridgeCommands(roles []string) [][]string {
	br := l.ns["br"]
	lan := func(a netip.Addr) string { return netip.PrefixFrom(a, 25).String() }
	cmds := [][]string{
		{"ip", "-n", br, "link", "set", "lo", "up"},
		// STP off: ports forward at once instead of after a listening delay.
		{"ip", "-n", br, "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"ip", "-n", br, "link", "set", "br0", "up"},
	}
	for _, r := range roles {
		ns, port := l.ns[r], "p"+strings.ToLower(r)
		cmds = append(cmds,
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			// Both ends are created directly in their namespaces.
			[]string{"ip", "link", "add", "lan0", "netns", ns, "type", "veth", "peer", "name", port, "netns", br},
			[]string{"ip", "-n", br, "link", "set", port, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "addr", "add", lan(l.addr[r]), "dev", "lan0"},
			[]string{"ip", "-n", ns, "link", "set", "lan0", "up"},
		)
	}
	return append(cmds,
		[]string{"ip", "link", "add", l.hostLink(), "type", "veth", "peer", "name", "ph", "netns", br},
		[]string{"ip", "-n", br, "link", "set", "ph", "master", "br0", "up"},
		[]string{"ip", "addr", "add", lan(l.host), "dev", l.hostLink()},
		[]string{"ip", "link", "set", l.hostLink(), "up"},
	)
}
