package node

import (
	"strings"
	"testing"
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
