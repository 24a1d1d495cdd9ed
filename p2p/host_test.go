package p2p

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/coralcdn/coral/test/testkit"
)

func TestIdentitySurvivesRestart(t *testing.T) {
	psk := testSecret(t)
	cfg := testConfig(t, psk)
	h1, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := h1.ID()
	if err := h1.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := startHost(t, cfg)
	if h2.ID() != id {
		t.Fatalf("peer ID changed across restart: %s -> %s", id, h2.ID())
	}
	if h2.Self().ID != dsht.NodeID([]byte(id)) {
		t.Fatal("DSHT node ID is not SHA-256 of the peer ID")
	}
	other := newTestHost(t, psk)
	if other.ID() == id {
		t.Fatal("two data directories produced the same identity")
	}
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, identityFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity key file: %v, mode %v", err, fi.Mode().Perm())
	}
}

func TestCorruptIdentityIsAnError(t *testing.T) {
	cfg := testConfig(t, testSecret(t))
	if err := os.WriteFile(filepath.Join(cfg.DataDir, identityFile), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "identity") {
		t.Fatalf("New with a corrupt identity key: err = %v", err)
	}
}

func TestConfigErrorsNameTheProblem(t *testing.T) {
	psk := testSecret(t)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"no secret", func(c *Config) { c.Secret = nil }, "secret_file"},
		{"quic listen", func(c *Config) { c.ListenAddrs = []string{"/ip4/127.0.0.1/udp/0/quic-v1"} }, "only TCP"},
		{"bad listen", func(c *Config) { c.ListenAddrs = []string{"127.0.0.1:4100"} }, "listen address"},
		{"bad bootstrap", func(c *Config) { c.Bootstrap = []string{"/ip4/127.0.0.1/tcp/1"} }, "bootstrap"},
		{"bad reachability", func(c *Config) { c.Reachability = "sometimes" }, "reachability"},
		{"watermarks", func(c *Config) { c.ConnLow, c.ConnHigh = 10, 5 }, "watermarks"},
		{"version", func(c *Config) { c.ProtocolVersion = "1/2" }, "protocol version"},
		{"short secret", func(c *Config) { c.Secret = c.Secret[:16] }, "32 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, psk)
			tc.mod(&cfg)
			_, err := New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSecretFileIsCreatedInDataDir(t *testing.T) {
	cfg := testConfig(t, nil)
	cfg.SecretFile = "network.key"
	h := startHost(t, cfg)
	if _, err := LoadSecret(filepath.Join(cfg.DataDir, "network.key")); err != nil {
		t.Fatalf("first node did not mint a network secret: %v", err)
	}
	// A second node given that file joins the network.
	cfg2 := testConfig(t, nil)
	cfg2.SecretFile = filepath.Join(cfg.DataDir, "network.key")
	h2 := startHost(t, cfg2)
	mustConnect(t, h2, h)
}

// storeCounter is a DSHT handler that counts the values it was asked to store.
type storeCounter struct {
	stores atomic.Int32
	calls  atomic.Int32
	mu     sync.Mutex
	from   []dsht.NodeInfo
}

func (s *storeCounter) HandleRPC(_ context.Context, from dsht.NodeInfo, req *dsht.Request) (*dsht.Response, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.from = append(s.from, from)
	s.mu.Unlock()
	if req.Op == dsht.OpStore {
		s.stores.Add(1)
	}
	if req.Op == dsht.OpFindValue && string(req.Value) == "" && req.Level == 7 {
		return nil, errors.New("level 7 is haunted")
	}
	return &dsht.Response{Code: dsht.CodeOK, Values: []dsht.WireValue{{Data: []byte("v"), TTLMs: 1000}}}, nil
}

func storeReq() *dsht.Request {
	return &dsht.Request{Op: dsht.OpStore, Target: dsht.ID(object.KeyOf("http://example.com/")), Value: []byte("proxy"), TTLMs: 20000}
}

func TestOnlySecretHoldersConnectOrStore(t *testing.T) {
	psk := testSecret(t)
	a := newTestHost(t, psk)
	counter := &storeCounter{}
	a.ServeDSHT(counter)

	member := newTestHost(t, psk)
	mustConnect(t, member, a)
	if _, err := member.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq()); err != nil {
		t.Fatalf("member store: %v", err)
	}
	if counter.stores.Load() != 1 {
		t.Fatalf("stores = %d after the member's store, want 1", counter.stores.Load())
	}

	t.Run("other secret", func(t *testing.T) {
		outsider := newTestHost(t, testSecret(t))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := outsider.host.Connect(ctx, addrInfo(a)); err == nil {
			t.Fatal("a node with another secret connected")
		}
		outsider.host.Peerstore().AddAddrs(a.ID(), addrInfo(a).Addrs, time.Minute)
		if _, err := outsider.DSHTNetwork().Call(ctx, a.Self(), storeReq()); err == nil {
			t.Fatal("a node with another secret stored a value")
		}
	})
	t.Run("no secret", func(t *testing.T) {
		plain, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Transport(tcp.NewTCPTransport), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		defer plain.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := plain.Connect(ctx, addrInfo(a)); err == nil {
			t.Fatal("a node without the secret connected")
		}
		if _, err := plain.NewStream(ctx, a.ID(), a.protos.dsht); err == nil {
			t.Fatal("a node without the secret opened a DSHT stream")
		}
		// Nor can the member be reached from a plain node's side.
		if err := a.host.Connect(ctx, peer.AddrInfo{ID: plain.ID(), Addrs: plain.Network().ListenAddresses()}); err == nil {
			t.Fatal("member connected to a node without the secret")
		}
	})
	if n := counter.stores.Load(); n != 1 {
		t.Fatalf("stores = %d, want only the member's 1", n)
	}
	if slices.ContainsFunc(a.Status().Peers, func(p PeerStatus) bool { return p.ID != member.ID().String() }) {
		t.Fatalf("peers other than the member are connected: %+v", a.Status().Peers)
	}
}

func TestIncompatibleProtocolVersionsDoNotLink(t *testing.T) {
	psk := testSecret(t)
	a := newTestHost(t, psk, func(c *Config) { c.ProtocolVersion = "2.0.0" })
	counter := &storeCounter{}
	a.ServeDSHT(counter)
	old := newTestHost(t, psk) // DefaultProtocolVersion
	mustConnect(t, old, a)
	if _, err := old.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq()); err == nil {
		t.Fatal("a node on another protocol version answered a DSHT call")
	}
	if counter.calls.Load() != 0 {
		t.Fatal("the handler saw a request from another protocol version")
	}
	same := newTestHost(t, psk, func(c *Config) { c.ProtocolVersion = "2.0.0" })
	mustConnect(t, same, a)
	if _, err := same.DSHTNetwork().Call(testCtx(t), a.Self(), storeReq()); err != nil {
		t.Fatalf("same version: %v", err)
	}
}

func TestStatusReportsReachabilityAndPeers(t *testing.T) {
	psk := testSecret(t)
	pub := newTestHost(t, psk, func(c *Config) { c.Reachability = "public" })
	priv := newTestHost(t, psk, func(c *Config) { c.Reachability = "private" })
	auto := newTestHost(t, psk, func(c *Config) { c.DisableRelayService = true })
	testkit.Eventually(t, 5*time.Second, "forced reachability", func() bool {
		return pub.Status().Reachability == "public" && priv.Status().Reachability == "private"
	})
	if r := auto.Status().Reachability; r != "unknown" {
		t.Errorf("loopback-only node reachability = %q, want unknown", r)
	}
	mustConnect(t, priv, pub)
	st := pub.Status()
	if st.PeerID != pub.ID().String() || len(st.ListenAddrs) == 0 || !st.RelayService {
		t.Errorf("status = %+v", st)
	}
	if auto.Status().RelayService {
		t.Error("relay service reported on although disabled")
	}
	if len(st.Peers) != 1 || st.Peers[0].ID != priv.ID().String() || st.Peers[0].Relayed {
		t.Errorf("peers = %+v, want the private node, directly", st.Peers)
	}
	// A private node reserves a slot on its relay-capable neighbour and
	// says it is reached through relays.
	testkit.Eventually(t, 10*time.Second, "relay reservation", func() bool {
		s := priv.Status()
		return s.Relayed && slices.Contains(s.RelayReservations, pub.ID().String())
	})
	if pub.Status().Relayed {
		t.Error("a public node claims to be relayed")
	}
	testkit.Eventually(t, 10*time.Second, "circuit address advertised", func() bool {
		return slices.ContainsFunc(priv.Status().Addrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit") })
	})
}

func TestRestartedNodeRejoinsWithoutBootstrap(t *testing.T) {
	psk := testSecret(t)
	a := newTestHost(t, psk)
	cfg := testConfig(t, psk)
	for _, m := range a.P2PAddrs() {
		cfg.Bootstrap = append(cfg.Bootstrap, m.String())
	}
	b, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "bootstrap connection", func() bool {
		return slices.Contains(b.ConnectedPeers(), a.ID())
	})
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "a sees b leave", func() bool { return !slices.Contains(a.ConnectedPeers(), b.ID()) })

	cfg.Bootstrap = nil
	b2 := startHost(t, cfg)
	testkit.Eventually(t, 10*time.Second, "rejoin from known peers", func() bool {
		return slices.Contains(b2.ConnectedPeers(), a.ID())
	})
}

func TestDamagedPeersFileDoesNotStopTheNode(t *testing.T) {
	cfg := testConfig(t, testSecret(t))
	if err := os.WriteFile(filepath.Join(cfg.DataDir, peersFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHost(t, cfg)
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}
