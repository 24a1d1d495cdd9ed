// Package cooptest runs several Coral nodes in one process on the real
// stack — libp2p hosts on loopback with the network secret, the DSHT over
// libp2p streams, a Badger store, the proxy and cooperation — wired the way
// app/node wires them, to test what cooperating proxies do together: fetch
// from each other, survive a peer dying mid-transfer, prefer nearby copies.
//
// Latency for cluster tests is injected in-process, in front of the DSHT's
// network, where the DSHT measures its RTTs (kernel netem is not available).
package cooptest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/p2p"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
	"github.com/libp2p/go-libp2p/core/peer"
)

const zone = "coral.test"

func logger() *slog.Logger {
	if os.Getenv("CORAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// node is one in-process Coral node.
type node struct {
	name  string
	host  *p2p.Host
	dht   *dsht.Node
	coop  *coop.Coop
	store *store.Store
	proxy *proxy.Proxy
	srv   *httptest.Server

	closeOnce sync.Once
}

// tracedAs reports whether one of n's recent request traces has a path
// containing step and, unless want is empty, the result want.
func (n *node) tracedAs(want, step string) bool {
	for _, tr := range n.proxy.RecentTraces() {
		if (want == "" || tr.Result == want) && strings.Contains(tr.Path, step) {
			return true
		}
	}
	return false
}

// latencyNet delays every DSHT RPC by the round-trip time between the two
// nodes' planted locations, before the real call; the DSHT times Call, so
// its RTT samples (and the clusters it forms) see the planted latency.
type latencyNet struct {
	inner dsht.Network
	self  dsht.ID
	rtt   func(a, b dsht.ID) time.Duration
}

func (n latencyNet) Call(ctx context.Context, to dsht.NodeInfo, req *dsht.Request) (*dsht.Response, error) {
	d := n.rtt(n.self, to.ID)
	if d < 0 {
		return nil, errCut
	}
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return n.inner.Call(ctx, to, req)
}

// errCut is a DSHT call between two nodes the test has cut apart.
var errCut = errors.New("cut by the test")

type netOptions struct {
	// rtt, if set, plants latency between nodes (by index); negative cuts
	// the DSHT calls from a to b.
	rtt func(a, b int) time.Duration
	// dsht adjusts each node's DSHT configuration.
	dsht func(*dsht.Config)
	// proxy adjusts each node's proxy options.
	proxy func(*proxy.Options)
	// coop adjusts each node's cooperation options.
	coop func(*coop.Config)
	// p2p adjusts each node's libp2p host options.
	p2p func(*p2p.Config)
}

// network is a set of in-process nodes that know each other.
type network struct {
	t     *testing.T
	nodes []*node
	index map[dsht.ID]int
	mu    sync.Mutex
}

// newNetwork starts n nodes, connects every pair, and bootstraps their DSHTs.
func newNetwork(t *testing.T, n int, opts netOptions) *network {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "network.key")
	if err := cluster.WriteSecret(secret); err != nil {
		t.Fatal(err)
	}
	nw := &network{t: t, index: map[dsht.ID]int{}}
	rtt := func(a, b dsht.ID) time.Duration {
		if opts.rtt == nil {
			return 0
		}
		nw.mu.Lock()
		i, ok1 := nw.index[a]
		j, ok2 := nw.index[b]
		nw.mu.Unlock()
		if !ok1 || !ok2 {
			return 0
		}
		return opts.rtt(i, j)
	}
	for i := range n {
		nd := nw.start(fmt.Sprintf("n%d", i), filepath.Join(dir, fmt.Sprintf("node%d", i)), secret, rtt, opts)
		nw.mu.Lock()
		nw.index[nd.host.Self().ID] = i
		nw.mu.Unlock()
		nw.nodes = append(nw.nodes, nd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, a := range nw.nodes {
		for _, b := range nw.nodes[i+1:] {
			if err := a.host.Connect(ctx, peer.AddrInfo{ID: b.host.ID(), Addrs: b.host.Addrs()}); err != nil {
				t.Fatalf("connect %s -> %s: %v", a.name, b.name, err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(nw.nodes))
	for i, nd := range nw.nodes {
		var seeds []dsht.NodeInfo
		for j, o := range nw.nodes {
			if j != i {
				seeds = append(seeds, o.host.Self())
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nd.dht.Bootstrap(ctx, seeds)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bootstrap %s: %v", nw.nodes[i].name, err)
		}
	}
	return nw
}

func (nw *network) start(name, dir, secret string, rtt func(a, b dsht.ID) time.Duration, opts netOptions) *node {
	t := nw.t
	t.Helper()
	log := logger().With("node", name)
	pcfg := p2p.Config{
		DataDir:             dir,
		ListenAddrs:         []string{"/ip4/127.0.0.1/tcp/0"},
		SecretFile:          secret,
		DisableMDNS:         true,
		DisableNATPortMap:   true,
		DisableRelayService: true,
		RelayReservations:   -1,
		Reachability:        p2p.ReachabilityPublic,
		Logger:              log,
	}
	if opts.p2p != nil {
		opts.p2p(&pcfg)
	}
	h, err := p2p.New(context.Background(), pcfg)
	if err != nil {
		t.Fatalf("%s: p2p: %v", name, err)
	}
	nd := &node{name: name, host: h}
	t.Cleanup(nd.close)
	dcfg := dsht.DefaultConfig(h.Self())
	dcfg.Logger = log
	if opts.dsht != nil {
		opts.dsht(&dcfg)
	}
	if nd.dht, err = dsht.New(dcfg, latencyNet{inner: h.DSHTNetwork(), self: h.Self().ID, rtt: rtt}); err != nil {
		t.Fatalf("%s: dsht: %v", name, err)
	}
	h.ServeDSHT(nd.dht)
	ccfg := coop.Config{Self: h.ID().String(), Logger: log}
	if opts.coop != nil {
		opts.coop(&ccfg)
	}
	nd.coop = coop.New(ccfg, nd.dht, h)
	if nd.store, err = store.Open(filepath.Join(dir, "store"), store.Options{
		Logger: log,
		OnEvict: func(key string) {
			if nd.proxy != nil {
				nd.proxy.Evicted(key)
			}
		},
	}); err != nil {
		t.Fatalf("%s: store: %v", name, err)
	}
	popts := proxy.Options{
		Zone:                zone,
		NodeToken:           "coral-" + name,
		SpoolDir:            t.TempDir(),
		Peers:               nd.coop,
		HeuristicTTL:        time.Hour,
		AllowPrivateOrigins: true,
		StripCookies:        true,
		OriginTimeout:       20 * time.Second,
		Logger:              log,
	}
	if opts.proxy != nil {
		opts.proxy(&popts)
	}
	if nd.proxy, err = proxy.New(popts, nd.store); err != nil {
		t.Fatalf("%s: proxy: %v", name, err)
	}
	h.ServeObjects(nd.proxy)
	nd.srv = httptest.NewServer(nd.proxy)
	return nd
}

// close stops the node in the order app/node does. Closing the host first
// drops every connection at once, as a crash would for the other nodes.
func (nd *node) close() {
	nd.closeOnce.Do(func() {
		if nd.host != nil {
			_ = nd.host.Close()
		}
		if nd.srv != nil {
			nd.srv.CloseClientConnections()
			nd.srv.Close()
		}
		if nd.proxy != nil {
			_ = nd.proxy.Close()
		}
		if nd.coop != nil {
			_ = nd.coop.Close()
		}
		if nd.dht != nil {
			_ = nd.dht.Close()
		}
		if nd.store != nil {
			_ = nd.store.Close()
		}
	})
}

func (nd *node) peerID() string { return nd.host.ID().String() }
func (nd *node) short() string  { return proxy.ShortPeer(nd.peerID()) }

// get sends a GET for origin URL u through nd's proxy; kv are header pairs.
func (nd *node) get(t *testing.T, u string, kv ...string) *http.Response {
	t.Helper()
	ou, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, nd.srv.URL+ou.RequestURI(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = strings.ReplaceAll(ou.Hostname(), ":", "") + "." + ou.Port() + "." + zone
	for i := 0; i < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s: %v", nd.name, u, err)
	}
	return resp
}

type result struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r result) cache() string { return r.header.Get("X-Coral-Cache") }
func (r result) trace() string { return r.header.Get(proxy.TraceHeader) }

func (nd *node) fetch(t *testing.T, u string, kv ...string) result {
	t.Helper()
	resp := nd.get(t, u, kv...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, b, err}
}

// referrals returns the peers nd's DSHT finds for u at levels start..stop.
func (nd *node) referrals(u string, start, stop int) []coop.Referral {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	vals, err := nd.dht.Get(ctx, dsht.ID(object.KeyOf(u)), dsht.Levels(start, stop))
	if err != nil {
		return nil
	}
	var out []coop.Referral
	for _, v := range vals {
		if r, err := coop.DecodeReferral(v.Data); err == nil {
			out = append(out, r)
		}
	}
	return out
}

func hasReferral(rs []coop.Referral, peerID string, state int) bool {
	return slices.ContainsFunc(rs, func(r coop.Referral) bool { return r.Peer == peerID && r.State == state })
}

var eventually = testkit.Eventually

func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

func digest(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
