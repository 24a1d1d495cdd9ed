package p2p

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/coralcdn/coral/test/testkit"
)

// stallForwarder is a TCP path between two nodes that can stop carrying
// packets without resetting anything, as a dead home router does.
type stallForwarder struct {
	ln      net.Listener
	stalled atomic.Bool
	done    chan struct{}
	once    sync.Once
}

func newStallForwarder(t *testing.T, target ma.Multiaddr) *stallForwarder {
	t.Helper()
	to, err := manet.ToNetAddr(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &stallForwarder{ln: ln, done: make(chan struct{})}
	t.Cleanup(func() { f.once.Do(func() { close(f.done) }); ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", to.String())
			if err != nil {
				in.Close()
				continue
			}
			go f.pipe(in, out)
			go f.pipe(out, in)
		}
	}()
	return f
}

// pipe copies until the path stalls; then it holds what it read and
// never writes or closes again (until the test ends).
func (f *stallForwarder) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if f.stalled.Load() {
			<-f.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *stallForwarder) addr() ma.Multiaddr {
	a, _ := manet.FromNetAddr(f.ln.Addr())
	return a
}

// onlyVia lets this node reach peer only through via (or a relay).
type onlyVia struct {
	mu   sync.Mutex
	peer peer.ID
	via  ma.Multiaddr
}

func (o *onlyVia) set(p peer.ID, via ma.Multiaddr) {
	o.mu.Lock()
	o.peer, o.via = p, via
	o.mu.Unlock()
}

func (o *onlyVia) InterceptPeerDial(peer.ID) bool { return true }
func (o *onlyVia) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return p != o.peer || isRelayed(a) || (o.via != nil && a.Equal(o.via))
}
func (o *onlyVia) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (o *onlyVia) InterceptSecured(network.Direction, peer.ID, network.ConnMultiaddrs) bool {
	return true
}
func (o *onlyVia) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

func directConns(h *Host, p peer.ID) int {
	n := 0
	for _, c := range h.host.Network().ConnsToPeer(p) {
		if !c.Stat().Limited && !isRelayed(c.RemoteMultiaddr()) {
			n++
		}
	}
	return n
}

// stalledPath is three nodes: A and B both reach C (a public relay), and B
// reaches A only through a forwarder that can stall; A holds a reservation
// on C, serves one object, "obj", and B is connected to it directly.
type stalledPath struct {
	a, b, c *Host
	fw      *stallForwarder
	body    []byte
}

func newStalledPath(t *testing.T, mods ...func(*Config)) *stalledPath {
	t.Helper()
	psk := testSecret(t)
	gateA, gateB := &onlyVia{}, &onlyVia{}
	c := newTestHost(t, psk, append([]func(*Config){func(cfg *Config) { cfg.Reachability = ReachabilityPublic }}, mods...)...)
	a := newTestHost(t, psk, append([]func(*Config){func(cfg *Config) { cfg.Reachability = ReachabilityPrivate; cfg.ConnectionGater = gateA }}, mods...)...)
	b := newTestHost(t, psk, append([]func(*Config){func(cfg *Config) { cfg.ConnectionGater = gateB }}, mods...)...)
	fw := newStallForwarder(t, a.listenAddrs()[0])
	gateA.set(b.ID(), nil)
	gateB.set(a.ID(), fw.addr())
	mustConnect(t, a, c)
	mustConnect(t, b, c)
	testkit.Eventually(t, 15*time.Second, "A's reservation on C", func() bool {
		return slices.Contains(a.Status().RelayReservations, c.ID().String())
	})
	if err := b.Connect(testCtx(t), peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{fw.addr()}}); err != nil {
		t.Fatalf("B -> A through the forwarder: %v", err)
	}
	if directConns(b, a.ID()) == 0 {
		t.Fatal("B has no direct connection to A")
	}
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	body := randomBytes(t, 256<<10)
	putObject(t, st, "obj", body)
	a.ServeObjects(storeSource{st})
	return &stalledPath{a: a, b: b, c: c, fw: fw, body: body}
}

// fetch gets "obj" from A on B within the 5 s a referral is given.
func (sp *stalledPath) fetch(t *testing.T) *proxy.Trace {
	t.Helper()
	tr := &proxy.Trace{}
	ctx, cancel := context.WithTimeout(proxy.WithTrace(context.Background(), tr), 5*time.Second)
	defer cancel()
	_, rc, err := sp.b.FetchObject(ctx, sp.a.ID().String(), "obj")
	if err != nil {
		t.Fatalf("fetch: %v (trace: %s)", err, tr)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, sp.body) {
		t.Fatalf("fetch: %d bytes, %v", len(got), err)
	}
	return tr
}

// TestSilentLinkIsClosedAndFetchGoesThroughRelay: B is connected to A over
// a path that then silently stops carrying packets. A fetch B starts right
// after the cut still gets A's object within the 5 s a referral is given,
// through C's relay, and the trace names C; both ends close the dead
// connection.
func TestSilentLinkIsClosedAndFetchGoesThroughRelay(t *testing.T) {
	sp := newStalledPath(t)
	sp.fw.stalled.Store(true)
	cut := time.Now()
	tr := sp.fetch(t)
	t.Logf("first object after the cut: %v (trace: %s)", time.Since(cut).Round(time.Millisecond), tr)
	if want := "via relay " + proxy.ShortPeer(sp.c.ID().String()); !strings.Contains(tr.String(), want) {
		t.Errorf("trace %q does not say %q", tr, want)
	}
	testkit.Eventually(t, 15*time.Second, "B closes the dead connection to A", func() bool { return directConns(sp.b, sp.a.ID()) == 0 })
	testkit.Eventually(t, 15*time.Second, "A closes the dead connection to B", func() bool { return directConns(sp.a, sp.b.ID()) == 0 })
	t.Logf("dead connection closed on both ends %v after the cut", time.Since(cut).Round(time.Millisecond))
}

// TestHealedLinkIsUsedAgain: once the path that was cut carries packets
// again, B reaches A directly again instead of through C's relay.
func TestHealedLinkIsUsedAgain(t *testing.T) {
	sp := newStalledPath(t, func(cfg *Config) { cfg.LinkCheckInterval = 200 * time.Millisecond })
	sp.fw.stalled.Store(true)
	sp.fetch(t)
	testkit.Eventually(t, 15*time.Second, "B closes the dead connection to A", func() bool { return directConns(sp.b, sp.a.ID()) == 0 })
	sp.fw.stalled.Store(false) // new connections through the forwarder work again
	testkit.Eventually(t, 15*time.Second, "B reaches A directly again", func() bool { return directConns(sp.b, sp.a.ID()) > 0 })
	if tr := sp.fetch(t); strings.Contains(tr.String(), "via relay") {
		t.Errorf("fetch after the path healed still went through a relay: %s", tr)
	}
}

// TestLinkWatchKeepsHealthyConnections: a hub pinging a dozen peers ten
// times a second (and each of them pinging it) stays within the ping
// protocol's limits and closes nothing.
func TestLinkWatchKeepsHealthyConnections(t *testing.T) {
	psk := testSecret(t)
	fast := func(cfg *Config) { cfg.LinkCheckInterval, cfg.LinkPingTimeout = 100*time.Millisecond, time.Second }
	hub := newTestHost(t, psk, fast)
	var peers []*Host
	for range 12 {
		p := newTestHost(t, psk, fast)
		mustConnect(t, p, hub)
		peers = append(peers, p)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range peers {
			if directConns(p, hub.ID()) == 0 {
				t.Fatal("a healthy connection was closed")
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := hub.links.closed.Load()
	for _, p := range peers {
		n += p.links.closed.Load()
	}
	if n != 0 {
		t.Fatalf("%d healthy connections closed as dead", n)
	}
}

// TestLinkPingsOpenNoStreams: link pings are yamux ping frames, not
// streams: many pings on a watched link open no stream and negotiate no
// protocol (libp2p's ping handler ended a kept stream idle for 10 s, so
// every idle ping used to open one), and the link stays up.
func TestLinkPingsOpenNoStreams(t *testing.T) {
	psk := testSecret(t)
	// No relay service: a reservation and the identify push of the new
	// relay address would open streams within the count.
	fast := func(cfg *Config) { cfg.LinkCheckInterval, cfg.DisableRelayService = 100*time.Millisecond, true }
	a, b := newTestHost(t, psk, fast), newTestHost(t, psk, fast)
	mustConnect(t, a, b)
	// Watched, so pinged every interval: many pings in a short test.
	a.WatchLinks([]string{b.ID().String()}, time.Minute)
	b.WatchLinks([]string{a.ID().String()}, time.Minute)
	count := func(proto string) (n uint64) {
		for _, h := range []*Host{a, b} {
			for _, c := range h.StreamCounts() {
				if c.Protocol == proto {
					n += c.Writes
				}
			}
		}
		return n
	}
	pings := func() uint64 { return count(string(muxerPingProtocol)) }
	testkit.Eventually(t, 10*time.Second, "a first ping", func() bool { return pings() > 0 })
	pings0, negotiations0, streams0 := pings(), count("(negotiating)"), count(string(ping.ID))
	testkit.Eventually(t, 10*time.Second, "forty more pings", func() bool { return pings() >= pings0+40 })
	n, negotiations, streams := pings()-pings0, count("(negotiating)")-negotiations0, count(string(ping.ID))-streams0
	if negotiations != 0 || streams != 0 {
		t.Errorf("%d link pings took %d protocol negotiations and %d ping stream writes; want none", n, negotiations, streams)
	}
	if closed := a.links.closed.Load() + b.links.closed.Load(); closed != 0 || directConns(a, b.ID()) == 0 {
		t.Errorf("%d connections closed as dead, %d direct left; want a healthy link kept", closed, directConns(a, b.ID()))
	}
	if a.HeardFrom(b.ID().String()).IsZero() || b.HeardFrom(a.ID().String()).IsZero() {
		t.Error("an answered ping does not count as hearing from the peer")
	}
	// The DSHT is told connected peers' RTTs from Latency (app/node
	// followPeers): the pings must feed it.
	if a.Latency(b.ID()) == 0 && b.Latency(a.ID()) == 0 {
		t.Error("after the pings neither end knows the round trip to the other (Latency 0)")
	}
}

// TestWatchedLinksArePingedMoreOften: an idle link to a peer nobody
// vouches for is pinged every linkIdleEvery intervals; once the node
// watches the peer (its DNS answers hand it out), every interval.
func TestWatchedLinksArePingedMoreOften(t *testing.T) {
	psk := testSecret(t)
	fast := func(cfg *Config) { cfg.LinkCheckInterval = 100 * time.Millisecond }
	a, b := newTestHost(t, psk, fast), newTestHost(t, psk, fast)
	mustConnect(t, a, b)
	pings := func() (n uint64) {
		for _, h := range []*Host{a, b} {
			for _, c := range h.StreamCounts() {
				if c.Protocol == string(muxerPingProtocol) {
					n += c.Writes
				}
			}
		}
		return n
	}
	testkit.Eventually(t, 10*time.Second, "a first ping", func() bool { return pings() > 0 })
	// Observation windows, not synchronisation: rates over two seconds.
	const window = 2 * time.Second
	p0 := pings()
	time.Sleep(window)
	idle := pings() - p0
	a.WatchLinks([]string{b.ID().String()}, time.Minute)
	p1 := pings()
	time.Sleep(window)
	watched := pings() - p1
	t.Logf("ping writes in %v: %d idle, %d watched", window, idle, watched)
	if want := 2 * window / (100 * time.Millisecond) / linkIdleEvery; idle > uint64(want)*2 {
		t.Errorf("%d pings on an idle unwatched link; want at most about %d (each end every %d intervals)", idle, want, linkIdleEvery)
	}
	if watched < 2*max(idle, 1) {
		t.Errorf("%d ping writes on the watched link against %d before; want it pinged every interval", watched, idle)
	}
}

// TestPeersSavedWhenFirstConnected: a node writes peers.json as soon as it
// has met a peer, not minutes later, so a crash right after joining does
// not make it forget the network.
func TestPeersSavedWhenFirstConnected(t *testing.T) {
	psk := testSecret(t)
	a := newTestHost(t, psk)
	b := newTestHost(t, psk) // PeerSaveInterval: the default 2 minutes
	mustConnect(t, b, a)
	path := filepath.Join(b.cfg.DataDir, peersFile)
	testkit.Eventually(t, 5*time.Second, "peers.json naming A with an address", func() bool {
		data, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		var f peerFileV1
		if json.Unmarshal(data, &f) != nil {
			return false
		}
		return slices.ContainsFunc(f.Peers, func(e peerFileEntry) bool {
			return e.ID == a.ID().String() && len(e.Addrs) > 0
		})
	})
	// No temporary file is left behind (written atomically).
	entries, _ := os.ReadDir(b.cfg.DataDir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("leftover temporary file %s", e.Name())
		}
	}
}

// TestDialRankerPutsRelaysBehindDirectAddresses: libp2p dials a relay at
// once when the peer has only private direct addresses and spaces relays
// 250 ms apart; Coral waits relayDialDelay for the direct addresses, then
// tries the relays relayStagger apart, and never delays a relay that is the
// only route.
func TestDialRankerPutsRelaysBehindDirectAddresses(t *testing.T) {
	relay := func(n int) string {
		ids := []string{"12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN", "12D3KooWLB12JY5KuE4p7shheMR8n1RR1S3Gg3y4ywL7METTEtZv"}
		return fmt.Sprintf("/ip4/10.0.0.%d/tcp/4100/p2p/%s/p2p-circuit", n+3, ids[n])
	}
	for _, tc := range []struct {
		name       string
		addrs      []string
		wantRelays []time.Duration
	}{
		{"private direct", []string{"/ip4/10.0.0.1/tcp/4100", relay(0), relay(1)}, []time.Duration{relayDialDelay, relayDialDelay + relayStagger}},
		{"public direct", []string{"/ip4/1.2.3.4/tcp/4100", relay(0)}, []time.Duration{relayDialDelay}},
		{"relays only", []string{relay(0), relay(1)}, []time.Duration{0, relayStagger}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addrs []ma.Multiaddr
			for _, s := range tc.addrs {
				addrs = append(addrs, ma.StringCast(s))
			}
			ranked := dialRanker(addrs)
			if len(ranked) != len(addrs) {
				t.Fatalf("ranked %d of %d addresses", len(ranked), len(addrs))
			}
			var relays []time.Duration
			for i, ad := range ranked {
				if i > 0 && ad.Delay < ranked[i-1].Delay {
					t.Errorf("not in dial order: %v", ranked)
				}
				if isRelayed(ad.Addr) {
					relays = append(relays, ad.Delay)
				} else if ad.Delay != 0 {
					t.Errorf("direct %s delayed %v", ad.Addr, ad.Delay)
				}
			}
			if !slices.Equal(relays, tc.wantRelays) {
				t.Errorf("relay delays %v, want %v", relays, tc.wantRelays)
			}
		})
	}
}

func TestRecvClock(t *testing.T) {
	r := &recvClock{last: map[peer.ID]*atomic.Int64{}}
	p := peer.ID("peer")
	start := time.Now()
	if r.since(p, start) {
		t.Fatal("a peer never heard from counts as sending")
	}
	r.LogRecvMessageStream(0, "", p) // a failed read
	if r.since(p, start) {
		t.Fatal("a failed read counts as bytes received")
	}
	r.LogRecvMessageStream(10, "", p)
	if !r.since(p, start) {
		t.Fatal("bytes received after start do not count")
	}
	if r.since(p, time.Now().Add(time.Second)) {
		t.Fatal("bytes count for a later start")
	}
	r.TrimIdle(time.Now().Add(time.Second))
	if len(r.last) != 0 {
		t.Fatal("TrimIdle kept an idle peer")
	}
}

func TestRelayOf(t *testing.T) {
	const relay = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	for _, tc := range []struct {
		addr string
		want string
	}{
		{"/ip4/10.0.0.3/tcp/4100/p2p/" + relay + "/p2p-circuit", relay},
		{"/p2p/" + relay + "/p2p-circuit", relay},
		{"/ip4/10.0.0.3/tcp/4100/p2p/" + relay, ""},
		{"/ip4/10.0.0.3/tcp/4100", ""},
		{"/p2p-circuit", ""},
	} {
		got, ok := relayOf(ma.StringCast(tc.addr))
		if ok != (tc.want != "") || (ok && got.String() != tc.want) {
			t.Errorf("relayOf(%s) = %s, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
}

// TestBeingPingedCountsAsHearing: A's link ping is a yamux frame that B's
// muxer answers, no stream; B still counts it as hearing from A, so B's
// own ping of that idle link is spared (heardOn).
func TestBeingPingedCountsAsHearing(t *testing.T) {
	psk := testSecret(t)
	still := func(cfg *Config) { cfg.LinkCheckInterval = time.Hour } // no pings but the test's
	a, b := newTestHost(t, psk, still), newTestHost(t, psk, still)
	mustConnect(t, a, b)
	conn := a.host.Network().ConnsToPeer(b.ID())[0]
	// yamux measures the round trip once at the start, and a ping made
	// while one is out joins it: this one makes sure none is.
	if err := a.links.ping(conn, 5*time.Second); err != nil {
		t.Fatalf("ping: %v", err)
	}
	for range 3 {
		before := time.Now()
		if err := a.links.ping(conn, 5*time.Second); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if !b.links.recv.since(a.ID(), before) {
			t.Fatalf("B last heard from A at %v, before A's ping at %v", b.links.recv.lastFrom(a.ID()), before)
		}
		if !b.links.heardOn(b.host.Network().ConnsToPeer(a.ID())[0], before) {
			t.Fatal("B would ping the link A just pinged")
		}
	}
}

// TestLatencyIsTheLastPing: the DSHT is told the last ping's round trip,
// not libp2p's slow average, which remembers a stall of a busy start for
// many minutes and kept near peers "far" (clusters changing 15 min after
// nodefig's crowd started; issue 17).
func TestLatencyIsTheLastPing(t *testing.T) {
	psk := testSecret(t)
	noPings := func(cfg *Config) { cfg.LinkCheckInterval = time.Hour } // only the test's samples
	a, b := newTestHost(t, psk, noPings), newTestHost(t, psk, noPings)
	mustConnect(t, a, b)
	a.links.measured(b.ID(), 2*time.Second) // a stall while the machine was busy
	a.links.measured(b.ID(), time.Millisecond)
	if got := a.Latency(b.ID()); got != time.Millisecond {
		t.Errorf("Latency after pings of 2s then 1ms = %v, want 1ms", got)
	}
	if ewma := a.host.Peerstore().LatencyEWMA(b.ID()); ewma < 100*time.Millisecond {
		t.Errorf("libp2p's average %v: the test no longer shows the difference", ewma)
	}
}
