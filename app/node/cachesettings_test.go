package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/coralcdn/coral/app/config"
)

// The cache settings: a new size reaches the store within the change; a
// new location is kept and the next start opens the store there, while
// settings.json stays in the config file's data dir.
func TestCacheSettingsSizeNowLocationAtNextStart(t *testing.T) {
	cfg := testConfig(t)
	moved := filepath.Join(t.TempDir(), "moved")
	n1 := startNode(t, cfg)
	if _, err := n1.UpdateSettings(context.Background(), []byte(`{"cache":{"max_bytes":"256MiB","data_dir":"`+moved+`"}}`)); err != nil {
		t.Fatal(err)
	}
	if got := n1.store.Usage().MaxBytes; got != 256<<20 {
		t.Fatalf("store budget %d after the change, want 256MiB", got)
	}
	if _, err := os.Stat(filepath.Join(moved, "store")); !os.IsNotExist(err) {
		t.Fatalf("the running node moved its store at once (%v)", err)
	}
	n1.Close()

	n2 := startNode(t, cfg)
	if n2.cfg.DataDir != moved || n2.store.Usage().MaxBytes != 256<<20 {
		t.Fatalf("next start: data dir %s, budget %d", n2.cfg.DataDir, n2.store.Usage().MaxBytes)
	}
	if _, err := os.Stat(filepath.Join(moved, "store")); err != nil {
		t.Fatalf("no store in the new location: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, config.SettingsFile)); err != nil {
		t.Fatalf("settings.json left the config's data dir: %v", err)
	}
	if _, err := n2.UpdateSettings(context.Background(), []byte(`{"cache":{"max_bytes":"1MB"}}`)); err == nil {
		t.Fatal("a 1MB cache was accepted")
	}
	if got := n2.store.Usage().MaxBytes; got != 256<<20 {
		t.Fatalf("refused size changed the budget to %d", got)
	}
}
