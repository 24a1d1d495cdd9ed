package netns

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// dnsLiveWindow is the bound the README states for a dead proxy to leave
// every answer (heartbeat every 5 s with a 2 s timeout, then a ping before
// handing it out; a process that dies leaves when its connections close).
const dnsLiveWindow = 10 * time.Second

// Five real coral processes, one per namespace on one bridge, with the
// configuration a user gets (HTTP on ":8080", relay service on, mDNS on,
// no advertise; only the bootstrap, the network key and listeners the test
// can reach for control and DNS are set):
//
//   - every node's DNS answers hold 3 distinct records (the configured
//     count, 5 being alive), all of them nodes' own bridge addresses, and
//     across answers every live node appears;
//   - a killed node (a relay, when one is in use) is gone from every
//     answer within dnsLiveWindow, and answers keep 3 records;
//   - so is a node that hangs with its connections open; with 3 nodes
//     left, answers still hold 3 records, with 2 left, 2.
func TestDNSAnswersNameLiveProxies(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	logs := nodeOutput(t)
	roles := []string{"A", "B", "C", "D", "E"}
	l := newBridgeLab(t, roles)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, byIP := startFive(t, ctx, l, bin, roles, logs)
	live := slices.Clone(roles)
	checkAnswers(t, l, live, live, byIP, 10)

	victim := relayInUse(t, ctx, nodes, roles)
	t.Logf("killing %s (%s)", victim, l.addr[victim])
	killed := time.Now()
	nodes[victim].Kill()
	live = slices.DeleteFunc(live, func(r string) bool { return r == victim })
	if d := leftAfter(t, ctx, l, live, l.addr[victim], killed); d > dnsLiveWindow {
		t.Errorf("the killed node %s left the answers after %v, more than the README's %v", victim, d.Round(time.Millisecond), dnsLiveWindow)
	}
	checkAnswers(t, l, live, live, byIP, 10)

	// A node that hangs (SIGSTOP: its connections stay open, nothing
	// answers) leaves within the same bound.
	hung := live[len(live)-1]
	pg := -nodes[hung].Pid()
	t.Cleanup(func() { _ = syscall.Kill(pg, syscall.SIGCONT) })
	stopped := time.Now()
	_ = syscall.Kill(pg, syscall.SIGSTOP)
	t.Logf("stopping %s (%s) at %s", hung, l.addr[hung], stopped.UTC().Format("15:04:05.000"))
	live = live[:len(live)-1]
	if d := leftAfter(t, ctx, l, live, l.addr[hung], stopped); d > dnsLiveWindow {
		t.Errorf("the hung node %s left the answers after %v, more than the README's %v", hung, d.Round(time.Millisecond), dnsLiveWindow)
	}
	checkAnswers(t, l, live, live, byIP, 10)

	// Two left alive: answers hold both.
	last := live[len(live)-1]
	killed = time.Now()
	nodes[last].Kill()
	live = live[:len(live)-1]
	if d := leftAfter(t, ctx, l, live, l.addr[last], killed); d > dnsLiveWindow {
		t.Errorf("the killed node %s left the answers after %v, more than the README's %v", last, d.Round(time.Millisecond), dnsLiveWindow)
	}
	checkAnswers(t, l, live, live, byIP, 10)
}

// leftAfter asks every asker in turn until none has named proxy in its
// last 8 answers, and returns how long after since proxy was last named by
// any of them.
func leftAfter(t *testing.T, ctx context.Context, l *lab, askers []string, proxy netip.Addr, since time.Time) time.Duration {
	t.Helper()
	lastSeen, lastBy := since, "none"
	clean := map[string]int{}
	deadline := since.Add(dnsLiveWindow + 20*time.Second)
	for {
		done := true
		for _, r := range askers {
			ans, err := queryA(ctx, l.addr[r])
			switch {
			case err != nil:
				clean[r] = 0
				t.Logf("query %s: %v", r, err)
			case slices.Contains(ans, proxy):
				clean[r] = 0
				lastSeen, lastBy = time.Now(), r
			default:
				clean[r]++
			}
			done = done && clean[r] >= 8
		}
		if done {
			d := lastSeen.Sub(since)
			t.Logf("%s last named %v after it went away, by %s's DNS (bound %v)", proxy, d.Round(time.Millisecond), lastBy, dnsLiveWindow)
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still named %v after it went away", proxy, time.Since(since).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond) // pacing between rounds, not synchronisation
	}
}

// newBridgeLab builds namespaces for roles on one bridge, with the test
// process on the bridge too (no origin link). Names follow lab's scheme,
// so lab.close and removeLeftovers tear it down.
func newBridgeLab(t *testing.T, roles []string) *lab {
	t.Helper()
	pid := os.Getpid()
	removeLeftovers(func(p int) bool { return p == pid || !processAlive(p) })
	subnet, err := freeSubnet(pid)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	base := subnet.Addr().As4()
	at := func(n byte) netip.Addr { b := base; b[3] = n; return netip.AddrFrom4(b) }
	l := &lab{pid: pid, subnet: subnet, ns: map[string]string{}, addr: map[string]netip.Addr{}, host: at(126)}
	for i, r := range roles {
		l.addr[r] = at(byte(i + 1))
	}
	for _, r := range append([]string{"br"}, roles...) {
		l.ns[r] = fmt.Sprintf("%s%d-%s", nsPrefix, pid, strings.ToLower(r))
	}
	t.Cleanup(l.close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, "ip", "netns", "add", l.ns["br"]); err != nil {
		if strings.Contains(err.Error(), "Operation not permitted") || strings.Contains(err.Error(), "Permission denied") {
			t.Skipf("netns: needs root and iproute2/iptables: %v", err)
		}
		t.Fatalf("netns: %v", err)
	}
	cmds := l.bridgeCommands(roles)
	for _, c := range cmds {
		if err := run(ctx, c...); err != nil {
			t.Fatalf("netns: build network: %v", err)
		}
	}
	return l
}

// startDefaultNode runs `coral serve` in role's namespace with the default
// configuration except: data_dir, the network key, the bootstrap peer, and
// the control and DNS listeners on the bridge address (by default they
// listen on the namespace's loopback, out of the test's reach).
func startDefaultNode(t *testing.T, l *lab, bin, secret, role, boot string, logs io.Writer) *node {
	t.Helper()
	addr := l.addr[role]
	dir := filepath.Join(t.TempDir(), strings.ToLower(role))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "[control]\nlisten = %q\n", netip.AddrPortFrom(addr, controlPort))
	fmt.Fprintf(&b, "[dns]\nlisten = %q\n", netip.AddrPortFrom(addr, dnsPort))
	fmt.Fprintf(&b, "[p2p]\nsecret_file = %q\n", secret)
	if boot != "" {
		fmt.Fprintf(&b, "bootstrap = [%q]\n", boot)
	}
	fmt.Fprintf(&b, "[log]\nlevel = \"debug\"\n")
	cfg := filepath.Join(dir, "coral.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &node{
		Process: runInNamespace(t, l.ns[role], bin, cfg, logs, role+": "),
		role:    role, addr: addr, dir: dir,
		hc: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

const dnsPort = 5354

// queryN numbers the names queryA asks for: each query asks for a new
// origin, as visitors of many sites would.
var queryN atomic.Int64

// The test paces its queries to one server as a caching resolver's are:
// the response rate limiter counts answers for all synthesised names
// together per client network (README: 20 a second after a burst of 40),
// so an asker of new names at a flood's pace is dropped or sent to TCP,
// as a flood of random names is. Under 16 a second after a burst of 30,
// the test never is.
var (
	paceMu sync.Mutex
	pacers = map[netip.Addr]*rate.Limiter{}
)

// pace waits for addr's next query slot.
func pace(ctx context.Context, addr netip.Addr) error {
	paceMu.Lock()
	p := pacers[addr]
	if p == nil {
		p = rate.NewLimiter(16, 30)
		pacers[addr] = p
	}
	paceMu.Unlock()
	return p.Wait(ctx)
}

// queryA asks the DNS server at addr for a Coralized name in the default
// zone and returns the A records' addresses.
func queryA(ctx context.Context, addr netip.Addr) ([]netip.Addr, error) {
	return queryName(ctx, addr, fmt.Sprintf("site%d.example.com.localhost.", queryN.Add(1)))
}

// queryName asks the DNS server at addr for name's A records.
func queryName(ctx context.Context, addr netip.Addr, name string) ([]netip.Addr, error) {
	if err := pace(ctx, addr); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.ExchangeContext(ctx, m, netip.AddrPortFrom(addr, dnsPort).String())
	if err != nil {
		return nil, err
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
	}
	var out []netip.Addr
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ip, _ := netip.AddrFromSlice(a.A)
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// waitAnswers polls until every live node's answers, over a few queries,
// name every live node with 3 records each.
func waitAnswers(ctx context.Context, l *lab, live []string, byIP map[netip.Addr]string) error {
	var last string
	for {
		ok := true
		for _, r := range live {
			seen := map[string]bool{}
			for range 3 * len(live) {
				ans, err := queryA(ctx, l.addr[r])
				if err != nil || len(ans) != 3 {
					last = fmt.Sprintf("%s answered %v (%v)", r, ans, err)
					ok = false
					break
				}
				for _, a := range ans {
					seen[byIP[a]] = true
				}
			}
			if ok && len(seen) != len(live) {
				last = fmt.Sprintf("%s names only %v", r, seen)
				ok = false
			}
			if !ok {
				break
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("DNS never named every live node with 3 records: %w (last: %s)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond): // pacing between polls
		}
	}
}

// checkAnswers asks each node per times and checks every answer: 3
// distinct records (the default count; 2 when only 2 are alive),
// each the bridge address of a live node; across answers every live node
// appears. It logs the figures.
func checkAnswers(t *testing.T, l *lab, askers, live []string, byIP map[netip.Addr]string, per int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hist := map[int]int{}
	count := map[string]int{}
	for _, r := range askers {
		for range per {
			ans, err := queryA(ctx, l.addr[r])
			if err != nil {
				t.Fatalf("query %s: %v", r, err)
			}
			hist[len(ans)]++
			uniq := map[netip.Addr]bool{}
			for _, a := range ans {
				owner, ok := byIP[a]
				if !ok || !slices.Contains(live, owner) {
					t.Errorf("%s answered %v: %s is not a live node's own address", r, ans, a)
				}
				uniq[a] = true
				count[owner]++
			}
			if want := min(3, len(live)); len(ans) != want || len(uniq) != want {
				t.Errorf("%s answered %v: want %d distinct records", r, ans, want)
			}
		}
	}
	for _, r := range live {
		if count[r] == 0 {
			t.Errorf("live node %s never appears in %d answers", r, len(askers)*per)
		}
	}
	t.Logf("%d answers: records per answer %v; appearances per node %v", len(askers)*per, hist, count)
}

// relayInUse returns the node most others hold a relay reservation on (as
// their relayed addresses say), or C when none is in use.
func relayInUse(t *testing.T, ctx context.Context, nodes map[string]*node, roles []string) string {
	ids := map[string]string{}
	votes := map[string]int{}
	for _, r := range roles {
		if st, err := nodes[r].status(ctx); err == nil && st.P2P != nil {
			ids[st.P2P.PeerID] = r
			for _, a := range append(slices.Clone(st.P2P.RelayAddrs), st.P2P.Addrs...) {
				if i := strings.Index(a, "/p2p-circuit"); i > 0 {
					head := a[:i]
					votes[head[strings.LastIndex(head, "/")+1:]]++
				}
			}
		}
	}
	best, n := "C", 0
	for id, v := range votes {
		if r, ok := ids[id]; ok && r != "A" && v > n {
			best, n = r, v
		}
	}
	t.Logf("relay reservations held on: %v (peer IDs -> nodes %v); the victim: %s", votes, ids, best)
	return best
}
