package p2p

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
)

func testSecret(t testing.TB) pnet.PSK {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func testLogger() *slog.Logger {
	if os.Getenv("CORAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig is a loopback node without LAN discovery or port mapping, so
// concurrent tests cannot find each other or poke the router.
func testConfig(t testing.TB, psk pnet.PSK) Config {
	return Config{
		DataDir:           t.TempDir(),
		ListenAddrs:       []string{"/ip4/127.0.0.1/tcp/0"},
		Secret:            psk,
		DisableMDNS:       true,
		DisableNATPortMap: true,
		Logger:            testLogger(),
	}
}

func startHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func newTestHost(t testing.TB, psk pnet.PSK, mods ...func(*Config)) *Host {
	t.Helper()
	cfg := testConfig(t, psk)
	for _, m := range mods {
		m(&cfg)
	}
	return startHost(t, cfg)
}

func addrInfo(h *Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.listenAddrs()}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustConnect(t testing.TB, a, b *Host) {
	t.Helper()
	if err := a.Connect(testCtx(t), addrInfo(b)); err != nil {
		t.Fatalf("connect %s -> %s: %v", a.ID(), b.ID(), err)
	}
}
