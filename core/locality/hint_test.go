package locality

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const peerA = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"

func TestHintRoundTrip(t *testing.T) {
	for _, rtt := range []time.Duration{0, 400 * time.Microsecond, 7 * time.Millisecond, 1234 * time.Millisecond, MaxHintRTT} {
		b, err := Hint{Proxy: peerA, RTT: rtt}.Marshal()
		if err != nil {
			t.Fatalf("marshal %v: %v", rtt, err)
		}
		h, err := ParseHint(b)
		if err != nil {
			t.Fatalf("parse %q: %v", b, err)
		}
		if h.Proxy != peerA || h.RTT != rtt.Round(time.Millisecond) {
			t.Errorf("%v: got %+v", rtt, h)
		}
	}
	if b, _ := (Hint{Proxy: peerA, RTT: 12 * time.Millisecond}).Marshal(); string(b) != "coral-hint/1 "+peerA+" 12" {
		t.Errorf("wire form %q", b)
	}
}

func TestHintRejects(t *testing.T) {
	for _, h := range []Hint{{Proxy: "", RTT: 1}, {Proxy: "a b", RTT: 1}, {Proxy: peerA, RTT: -1}, {Proxy: peerA, RTT: MaxHintRTT + time.Millisecond}} {
		if _, err := h.Marshal(); !errors.Is(err, ErrBadHint) {
			t.Errorf("marshal %+v: err %v", h, err)
		}
	}
	for _, s := range []string{
		"", "coral-hint/1", "coral-hint/1 " + peerA, "coral-hint/2 " + peerA + " 5",
		"coral-hint/1 " + peerA + " 5 extra", "coral-hint/1 " + peerA + " -5", "coral-hint/1 " + peerA + " +5",
		"coral-hint/1 " + peerA + " 05", "coral-hint/1 " + peerA + " 5.5", "coral-hint/1 " + peerA + " 60001",
		"coral-hint/1 " + peerA + " 99999999999", "coral-hint/1  5", "coral-hint/1 p\x00q 5",
		"coral-hint/1 " + strings.Repeat("p", 129) + " 5", "coral-hint/1 " + peerA + "  5",
		strings.Repeat("x", 300),
	} {
		if _, err := ParseHint([]byte(s)); !errors.Is(err, ErrBadHint) {
			t.Errorf("parse %q: err %v", s, err)
		}
	}
}

func TestNetworkOf(t *testing.T) {
	cases := []struct {
		in   string
		want string // "" = none
	}{
		{"203.0.113.77", "203.0.113.0/24"},
		{"::ffff:198.51.100.9", "198.51.100.0/24"},
		{"2001:db8:1234:5678::1", "2001:db8:1234::/48"},
		{"127.0.0.1", ""},
		{"10.1.2.3", ""},
		{"192.168.0.10", ""},
		{"100.64.3.4", ""}, // CGNAT
		{"fd00::1", ""},
		{"fe80::1", ""},
		{"::1", ""},
		{"0.0.0.0", ""},
		{"224.0.0.1", ""},
		{"198.18.0.1", ""},     // a proxy tool's TUN: on every such machine
		{"240.0.0.1", ""},      // reserved
		{"fec0::1", ""},        // site-local
		{"64:ff9b::a00:1", ""}, // NAT64 of 10.0.0.1
	}
	for _, c := range cases {
		p, ok := NetworkOf(netip.MustParseAddr(c.in))
		got := ""
		if ok {
			got = p.String()
		}
		if got != c.want {
			t.Errorf("NetworkOf(%s) = %q, want %q", c.in, got, c.want)
		}
	}
	// The nameserver may ask with a shorter client subnet: it maps to the
	// /24 at its start; and a /24 maps to itself.
	for in, want := range map[string]string{"203.0.113.0/24": "203.0.113.0/24", "203.0.112.0/20": "203.0.112.0/24", "2001:db8::/32": "2001:db8::/48"} {
		if p, ok := hintNetwork(netip.MustParsePrefix(in)); !ok || p.String() != want {
			t.Errorf("hintNetwork(%s) = %v %v, want %s", in, p, ok, want)
		}
	}
	if HintKey(netip.MustParsePrefix("203.0.113.0/24")) == HintKey(netip.MustParsePrefix("203.0.114.0/24")) {
		t.Error("two networks share a key")
	}
}

func TestQuantize(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		300 * time.Microsecond:  0,
		7400 * time.Microsecond: 7 * time.Millisecond,
		23 * time.Millisecond:   25 * time.Millisecond,
		97 * time.Millisecond:   95 * time.Millisecond,
		144 * time.Millisecond:  140 * time.Millisecond,
		2 * MaxHintRTT:          MaxHintRTT,
	} {
		if got := quantize(in); got != want {
			t.Errorf("quantize(%v) = %v, want %v", in, got, want)
		}
	}
}

func FuzzParseHint(f *testing.F) {
	f.Add([]byte("coral-hint/1 " + peerA + " 12"))
	f.Add([]byte("coral-hint/1 x 0"))
	f.Add([]byte("coral-hint/1 x 60000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHint(b)
		if err != nil {
			return
		}
		if h.RTT < 0 || h.RTT > MaxHintRTT || h.Proxy == "" {
			t.Fatalf("accepted %+v", h)
		}
		b2, err := h.Marshal()
		if err != nil || string(b2) != string(b) {
			t.Fatalf("not canonical: %q -> %q (%v)", b, b2, err)
		}
	})
}
