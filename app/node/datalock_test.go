package node

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/p2p"
)

// A second node on a data directory in use is refused, naming the
// directory, even while the first node's store is parked (Badger closed);
// once the first node closes, the directory is free again.
func TestDataDirInUseIsRefused(t *testing.T) {
	cfg := testConfig(t)
	first, err := New(cfg, Options{Version: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	second := cfg // other ports, same data_dir: a copied config
	_, err = New(second, Options{Version: "test", Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "data dir "+cfg.DataDir+" is in use by another coral node") ||
		!strings.Contains(err.Error(), "each node needs its own data_dir") {
		t.Fatalf("second node on the same data dir: %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := New(cfg, Options{Version: "test", Logger: quiet})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}

// With the data directory moved through the settings (cache.data_dir),
// coral join writes the secret and bootstrap where the node will read
// them, and coral invite (offline) reads them from there.
func TestJoinAndInviteFollowAMovedDataDir(t *testing.T) {
	a := startNode(t, testConfig(t))
	_, code := controlDo(t, a, "GET", "/api/invite", nil)
	cfg := testConfig(t)
	moved := t.TempDir()
	os.WriteFile(filepath.Join(cfg.DataDir, config.SettingsFile), []byte(`{"cache": {"data_dir": "`+moved+`"}}`), 0o600)
	inv, err := Join(cfg, strings.TrimSpace(code))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := p2p.LoadSecret(filepath.Join(moved, cfg.P2P.SecretFile))
	if err != nil || hex.EncodeToString(secret) != inv.Secret {
		t.Fatalf("secret in the moved data dir: %x, %v; want the invite's", secret, err)
	}
	b := startNode(t, cfg)
	if b.cfg.DataDir != moved {
		t.Fatalf("node runs in %s, want %s", b.cfg.DataDir, moved)
	}
	b.Close()
	offline, err := OfflineInvite(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseInvite(offline); err != nil || got.Secret != inv.Secret {
		t.Errorf("offline invite %+v (%v), want the joined network's secret", got, err)
	}
}
