package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// Broken links and rejoining, on five hosts with the configuration a new
// volunteer gets: `:8080`, relays on, mDNS on, reachability auto, no
// advertise. The only departures: the control listener is on the host's
// bridge address (the test reads /api/status from outside), origins on
// private addresses are allowed (the test's origin is one), and every node
// shares one network secret, as the README tells volunteers to.

var fiveHosts = []string{"A", "B", "C", "D", "E"}

// fiveAtOrigin is five nodes with the default configuration on a wide lab,
// joined, and an origin serving one object (max-age 600) that counts its
// requests.
type fiveAtOrigin struct {
	l          *lab
	nodes      map[string]*node
	ids        map[string]string // role -> peer ID
	logs       *logClock
	body       []byte
	host       string // the origin's Coralized host name
	originHits atomic.Int64
}

func startFiveAtOrigin(t *testing.T, ctx context.Context) *fiveAtOrigin {
	t.Helper()
	bin := buildCoral(t)
	f := &fiveAtOrigin{logs: newLogClock(t), l: newWideLab(t, fiveHosts), body: objectBody(), nodes: map[string]*node{}}
	originAddr := startOrigin(t, f.l, func(w http.ResponseWriter, r *http.Request) {
		f.originHits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(f.body)
	})
	f.host = fmt.Sprintf("%s.%d.localhost", f.l.origin, originAddr.Port())
	secret := writeSecret(t)
	for _, r := range fiveHosts {
		f.nodes[r] = startLinkNode(t, f.l, bin, secret, r, "", f.logs)
	}
	f.ids = waitJoined(ctx, t, f.nodes)
	return f
}

// TestDeadLinkIsNoticedAndFetchGoesThroughRelay: B holds a direct
// connection to A; then every packet between them is dropped (no reset).
// A fetch on B right after the cut is still a PEER answer — through a
// relay, which X-Coral-Trace names — with one origin request in total, and
// both ends close the dead connection within seconds. Once the path
// carries packets again, B reaches A directly again.
func TestDeadLinkIsNoticedAndFetchGoesThroughRelay(t *testing.T) {
	requireNetAdmin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	five := startFiveAtOrigin(t, ctx)
	l, nodes, ids, logs, body, host := five.l, five.nodes, five.ids, five.logs, five.body, five.host
	a, b := nodes["A"], nodes["B"]
	if _, err := a.waitFor(ctx, "a relay reservation", func(st control.Status) bool {
		return st.P2P != nil && len(st.P2P.RelayAddrs) > 0
	}); err != nil {
		t.Fatal(err)
	}

	const path = "/dead-link/object.bin"
	resp, got, err := a.get(ctx, host, path)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(got) != string(body) {
		t.Fatalf("via A: %d, %d bytes; want 200 with the origin's body%s", resp.StatusCode, len(got), errorText(resp, got))
	}

	if err := l.cut(ctx, "A", "B"); err != nil {
		t.Fatalf("netns: %v", err)
	}
	cut := time.Now()
	deadOnB := logs.when(b.role, "link stopped carrying packets", "peer="+ids["A"])
	deadOnA := logs.when(a.role, "link stopped carrying packets", "peer="+ids["B"])

	resp, got, err = getTraced(ctx, b, host, path)
	if err != nil {
		t.Fatal(err)
	}
	firstPeer := time.Since(cut)
	trace := resp.Header.Get("X-Coral-Trace")
	if resp.StatusCode != 200 || resp.Header.Get("X-Coral-Cache") != "PEER" || string(got) != string(body) {
		t.Fatalf("via B right after the cut: %d, X-Coral-Cache %q, %d bytes (body ok %v); want 200 PEER%s\ntrace: %s",
			resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(got), string(got) == string(body), errorText(resp, got), trace)
	}
	if !strings.Contains(trace, "via relay ") {
		t.Errorf("X-Coral-Trace does not name a relay: %s", trace)
	}
	if n := five.originHits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want exactly 1 (from A)", n)
	}

	noticed := map[string]time.Duration{}
	for role, ch := range map[string]<-chan time.Time{"B": deadOnB, "A": deadOnA} {
		select {
		case at := <-ch:
			noticed[role] = at.Sub(cut)
		case <-time.After(30 * time.Second):
			t.Errorf("%s never closed its dead connection (the 30 s yamux keepalive would have done that)", role)
		}
	}
	// The answer came through a relay because the cut holds.
	if err := l.dial(ctx, "B", netip.AddrPortFrom(a.addr, p2pPort)); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("B -> A should time out (packets dropped), got: %v", err)
	}

	// When the path carries packets again, A and B go back to it (the
	// first to try dials; the other sees the connection).
	backOnB := logs.when(b.role, "direct link is back", "peer="+ids["A"])
	backOnA := logs.when(a.role, "direct link is back", "peer="+ids["B"])
	if err := l.uncut(ctx, "A", "B"); err != nil {
		t.Fatalf("netns: %v", err)
	}
	healed := time.Now()
	back := "never (within 45s)"
	select {
	case at := <-backOnB:
		back = at.Sub(healed).Round(time.Millisecond).String()
	case at := <-backOnA:
		back = at.Sub(healed).Round(time.Millisecond).String()
	case <-time.After(45 * time.Second):
		t.Errorf("A and B did not reach each other directly again after the path healed")
	}
	t.Logf("FIGURES dead_link_noticed_B=%v dead_link_noticed_A=%v first_peer_answer_after_cut=%v direct_again_after_heal=%s trace=%q",
		noticed["B"].Round(time.Millisecond), noticed["A"].Round(time.Millisecond), firstPeer.Round(time.Millisecond), back, trace)
}

// uncut removes the rules cut added.
func (l *lab) uncut(ctx context.Context, a, b string) error {
	for _, p := range [][2]string{{a, b}, {b, a}} {
		ns, other := l.ns[p[0]], l.addr[p[1]].String()
		for _, rule := range [][]string{
			{"INPUT", "-s", other, "-j", "DROP"},
			{"OUTPUT", "-d", other, "-j", "DROP"},
		} {
			args := append([]string{"ip", "netns", "exec", ns, "iptables", "-w", "5", "-D"}, rule...)
			if err := run(ctx, args...); err != nil {
				return fmt.Errorf("iptables in %s: %w", p[0], err)
			}
		}
	}
	return nil
}

// TestKilledNodeRejoinsWithoutBootstrap: E joins (found over mDNS), is
// killed with SIGKILL soon after, and comes back on a network where mDNS
// cannot reach it and nobody can dial it (as behind a home NAT): it finds
// the others again from the peers it saved when it met them.
func TestKilledNodeRejoinsWithoutBootstrap(t *testing.T) {
	requireNetAdmin(t)
	bin := buildCoral(t)
	logs := newLogClock(t)
	l := newWideLab(t, fiveHosts)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	secret := writeSecret(t)
	nodes := map[string]*node{}
	started := time.Now()
	for _, r := range fiveHosts {
		nodes[r] = startLinkNode(t, l, bin, secret, r, "", logs)
	}
	waitJoined(ctx, t, nodes)
	e := nodes["E"]
	peersFile := filepath.Join(e.dir, "data", "peers.json")
	// Saved when first connected: well before the 2-minute timer.
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := waitPeersFile(pctx, peersFile); err != nil {
		t.Fatal(err)
	}
	joinedFor := time.Since(started)
	e.Kill()

	// From now on E can only dial out: no mDNS (over IPv4 or IPv6: the
	// link-local IPv6 address carries announcements of IPv4 addresses),
	// no inbound connections.
	for _, rule := range [][]string{
		{"iptables", "INPUT", "-p", "udp", "--dport", "5353", "-j", "DROP"},
		{"iptables", "OUTPUT", "-p", "udp", "--dport", "5353", "-j", "DROP"},
		{"ip6tables", "INPUT", "-p", "udp", "--dport", "5353", "-j", "DROP"},
		{"ip6tables", "OUTPUT", "-p", "udp", "--dport", "5353", "-j", "DROP"},
		{"iptables", "INPUT", "-p", "tcp", "--dport", fmt.Sprint(p2pPort), "--syn", "-j", "DROP"},
	} {
		args := append([]string{"ip", "netns", "exec", l.ns["E"], rule[0], "-w", "5", "-A"}, rule[1:]...)
		if err := run(ctx, args...); err != nil {
			t.Fatalf("netns: %v", err)
		}
	}
	restart := time.Now()
	e2 := startLinkNode(t, l, bin, secret, "E", e.dir, logs)
	if _, err := e2.waitFor(ctx, "a peer after the restart", func(st control.Status) bool {
		return st.P2P != nil && st.P2P.ConnectedPeers >= 1
	}); err != nil {
		t.Fatalf("E did not rejoin from its saved peers: %v", err)
	}
	first := time.Since(restart)
	all := "not within 30s"
	actx, acancel := context.WithTimeout(ctx, 30*time.Second)
	defer acancel()
	if _, err := e2.waitFor(actx, "all four peers", func(st control.Status) bool {
		return st.P2P != nil && st.P2P.ConnectedPeers >= 4
	}); err == nil {
		all = time.Since(restart).Round(time.Millisecond).String()
	}
	t.Logf("FIGURES killed_after=%v rejoin_first_peer=%v rejoin_all_peers=%s",
		joinedFor.Round(time.Millisecond), first.Round(time.Millisecond), all)
}

// newWideLab is newBridgeLab (any number of hosts on the bridge) plus
// newLab's origin link between the test process and the first host.
func newWideLab(t *testing.T, roles []string) *lab {
	t.Helper()
	l := newBridgeLab(t, roles)
	base := l.subnet.Addr().As4()
	base[3] = 129
	l.origin = netip.AddrFrom4(base)
	base[3] = 130
	l.originA = netip.AddrFrom4(base)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := l.ns[roles[0]]
	for _, c := range [][]string{
		{"ip", "link", "add", l.originLink(), "type", "veth", "peer", "name", "origin0", "netns", first},
		{"ip", "addr", "add", netip.PrefixFrom(l.origin, 30).String(), "dev", l.originLink()},
		{"ip", "link", "set", l.originLink(), "up"},
		{"ip", "-n", first, "addr", "add", netip.PrefixFrom(l.originA, 30).String(), "dev", "origin0"},
		{"ip", "-n", first, "link", "set", "origin0", "up"},
	} {
		if err := run(ctx, c...); err != nil {
			t.Fatalf("netns: origin link: %v", err)
		}
	}
	return l
}

// startOrigin serves h on the origin link (only the first host reaches it).
func startOrigin(t *testing.T, l *lab, h http.HandlerFunc) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(l.origin, 0).String())
	if err != nil {
		t.Fatalf("origin listener: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(ln.Addr().String())
}

func writeSecret(t *testing.T) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "network.key")
	if err := cluster.WriteSecret(secret); err != nil {
		t.Fatal(err)
	}
	return secret
}

// startLinkNode runs `coral serve` in role's namespace with the default
// configuration (see the top of this file). dir reuses a stopped node's
// directory (its data, identity and saved peers); "" makes a new one.
func startLinkNode(t *testing.T, l *lab, bin, secret, role, dir string, logs io.Writer) *node {
	t.Helper()
	addr := l.addr[role]
	if dir == "" {
		dir = filepath.Join(t.TempDir(), strings.ToLower(role))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n", filepath.Join(dir, "data"))
	fmt.Fprintf(&b, "[control]\nlisten = %q\n", netip.AddrPortFrom(addr, controlPort))
	fmt.Fprintf(&b, "[cache]\nallow_private_origins = true\n")
	fmt.Fprintf(&b, "[p2p]\nsecret_file = %q\n", secret)
	if os.Getenv("CORAL_NETNS_DEBUG") != "" {
		fmt.Fprintf(&b, "[log]\nlevel = \"debug\"\n")
	}
	cfg := filepath.Join(dir, "coral.toml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return &node{
		Process: runInNamespace(t, l.ns[role], bin, cfg, logs, role+": "),
		role:    role, addr: addr, dir: dir,
		hc: &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// waitJoined waits until every node is connected to all the others and
// knows them in its DSHT; it returns the peer IDs by role.
func waitJoined(ctx context.Context, t *testing.T, nodes map[string]*node) map[string]string {
	t.Helper()
	start := time.Now()
	ids := map[string]string{}
	for r, n := range nodes {
		st, err := n.waitFor(ctx, "connected to every other node", func(st control.Status) bool {
			return st.P2P != nil && st.P2P.ConnectedPeers >= len(nodes)-1 &&
				st.DSHT != nil && len(st.DSHT.Levels) > 0 && st.DSHT.Levels[0].RoutingSize >= len(nodes)-1
		})
		if err != nil {
			t.Fatal(err)
		}
		ids[r] = st.P2P.PeerID
	}
	t.Logf("%d nodes joined (mDNS, no bootstrap) after %v", len(nodes), time.Since(start).Round(time.Millisecond))
	return ids
}

// waitPeersFile waits for the node's peers.json to name at least one peer.
func waitPeersFile(ctx context.Context, path string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var f struct {
			Peers []struct {
				ID    string   `json:"id"`
				Addrs []string `json:"addrs"`
			} `json:"peers"`
		}
		data, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(data, &f) == nil && len(f.Peers) > 0 && len(f.Peers[0].Addrs) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s never named a peer while the node was joined: %w (last read error: %v)", path, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// getTraced is node.get with X-Coral-Debug on.
func getTraced(ctx context.Context, n *node, host, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.proxyAddr()+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Host = host
	req.Header.Set("X-Coral-Debug", "1")
	resp, err := n.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s%s via %s: %w", host, path, n.role, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// logClock collects the nodes' output (shown when the test fails or
// CORAL_NETNS_LOG is set) and tells when a line first matched.
type logClock struct {
	logBuffer
	mu    sync.Mutex
	waits []logWait
}

type logWait struct {
	parts []string
	ch    chan time.Time
}

func newLogClock(t *testing.T) *logClock {
	c := &logClock{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CORAL_NETNS_LOG") != "" {
			t.Logf("node output:\n%s", c.String())
		}
	})
	return c
}

func (c *logClock) Write(b []byte) (int, error) {
	now := time.Now()
	line := string(b)
	c.mu.Lock()
	kept := c.waits[:0]
	for _, w := range c.waits {
		if containsAll(line, w.parts) {
			w.ch <- now
			continue
		}
		kept = append(kept, w)
	}
	c.waits = kept
	c.mu.Unlock()
	return c.logBuffer.Write(b)
}

// when delivers the time of the first line, written after the call, whose
// text holds the node's prefix and every part.
func (c *logClock) when(role string, parts ...string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.waits = append(c.waits, logWait{parts: append([]string{role + ": "}, parts...), ch: ch})
	c.mu.Unlock()
	return ch
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
