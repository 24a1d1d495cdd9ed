package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/config"
)

// A second node on a running node's p2p port fails with a clear message
// instead of starting and sharing the port.
func TestSecondNodeOnTakenP2PPortFails(t *testing.T) {
	first := startNode(t, testConfig(t))
	var taken string
	for _, a := range first.Addrs().P2P {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") {
			taken, _, _ = strings.Cut(a, "/p2p/")
		}
	}
	if taken == "" {
		t.Fatalf("no loopback p2p address in %v", first.Addrs().P2P)
	}
	cfg := testConfig(t)
	cfg.P2P.Listen = []string{taken}
	n, err := New(cfg, Options{Version: "test", Logger: quiet})
	if err == nil {
		n.Close()
		t.Fatalf("second node on %s started", taken)
	}
	if !strings.Contains(err.Error(), "port is taken") || !strings.Contains(err.Error(), taken) {
		t.Errorf("error %q does not say the port %s is taken", err, taken)
	}
}

// A relative data_dir, from a config file given by a relative path, puts
// the network key in <config dir>/<data_dir>, once (it once landed in
// state/state/network.key).
func TestRelativeDataDirNetworkKeyPlace(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("coral.toml", []byte("data_dir = \"state\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load("coral.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.DataDir = loaded.DataDir
	startNode(t, cfg)
	if _, err := os.Stat(filepath.Join(dir, "state", "network.key")); err != nil {
		t.Errorf("network key not in state/: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "state")); err == nil {
		t.Error("state/state/ created")
	}
}
