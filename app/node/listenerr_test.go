package node

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/test/testkit"
)

// A listen port that another program holds stops start-up naming the
// config key to change, as the p2p port check does.
func TestTakenPortNamesTheKey(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenUDP, err := net.ListenPacket("udp", taken.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer takenUDP.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct {
		section string
		set     func(cfg *config.Config)
	}{
		{"http", func(c *config.Config) { c.HTTP.Listen = addr }},
		{"control", func(c *config.Config) { c.Control.Listen = addr }},
		{"dns", func(c *config.Config) { c.DNS.Listen = addr }},
	} {
		t.Run(tc.section, func(t *testing.T) {
			cfg := testConfig(t)
			tc.set(&cfg)
			n, err := New(cfg, Options{Version: "test", Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			err = n.Start(context.Background())
			want := "[" + tc.section + "] listen " + addr + ": the port is taken"
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "set ["+tc.section+"] listen") {
				t.Fatalf("start: %v, want %q", err, want)
			}
		})
	}
}

// A control listener on every address is started (some set-ups want it),
// with a warning naming the key; on loopback, no warning.
func TestOpenControlListenerWarns(t *testing.T) {
	for _, tc := range []struct {
		listen string
		warn   bool
	}{
		{"127.0.0.1:0", false},
		{"0.0.0.0:0", true},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			var logs testkit.LogBuffer
			cfg := testConfig(t)
			cfg.Control.Listen = tc.listen
			n, err := New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if err := n.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			warned := strings.Contains(logs.String(), "control listener is reachable from other machines") &&
				strings.Contains(logs.String(), "set [control] listen to 127.0.0.1")
			if warned != tc.warn {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tc.warn, logs.String())
			}
		})
	}
}
