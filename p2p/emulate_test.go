package p2p

import (
	"net/netip"
	"testing"
	"time"
)

// Planted RTTs apply by the connection's addresses, either way round, and
// measured round trips include them, so DSHT clusters and DNS locality
// can be tested with many nodes on one machine.
func TestEmulatedRTT(t *testing.T) {
	psk := testSecret(t)
	rules := []RTTRule{{A: netip.MustParsePrefix("127.0.0.2/32"), B: netip.MustParsePrefix("127.0.0.3/32"), RTT: 80 * time.Millisecond}}
	on := func(ip string) func(*Config) {
		return func(cfg *Config) {
			cfg.ListenAddrs = []string{"/ip4/" + ip + "/tcp/0"}
			cfg.EmulateRTT = rules
		}
	}
	a := newTestHost(t, psk, on("127.0.0.2"))
	b := newTestHost(t, psk, on("127.0.0.3"))
	c := newTestHost(t, psk, on("127.0.0.4"))
	mustConnect(t, a, b)
	mustConnect(t, c, a)
	mustConnect(t, c, b)
	for _, tc := range []struct {
		from, to *Host
		want     time.Duration
	}{
		{a, b, 80 * time.Millisecond},
		{b, a, 80 * time.Millisecond},
		{a, c, 0},
		{c, b, 0},
	} {
		if got := tc.from.emulatedRTT(tc.to.ID()); got != tc.want {
			t.Errorf("planted RTT %s -> %s = %v, want %v", tc.from.ID(), tc.to.ID(), got, tc.want)
		}
	}
	rtt, err := a.Ping(testCtx(t), b.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	if rtt < 80*time.Millisecond {
		t.Errorf("ping a -> b = %v, want at least the planted 80ms", rtt)
	}
	// The ping also fed libp2p's latency record, which saw loopback only;
	// what the host reports (and the DSHT is told) includes the plant.
	if l := a.Latency(b.ID()); l < 80*time.Millisecond {
		t.Errorf("latency a -> b = %v, want at least the planted 80ms", l)
	}
}
