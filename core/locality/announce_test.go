package locality

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/shaping"
)

func TestAnnouncementRoundTrip(t *testing.T) {
	cases := []Announcement{
		{},
		{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.12")}, AnyAddr: false, Public: true},
		{
			Addrs:      []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8::7")},
			AnyAddr:    true,
			Nameserver: true,
			Cluster:    [3]string{"aabbccddeeff0011", "0102030405060708", ""},
		},
	}
	for _, a := range cases {
		b, err := a.Marshal()
		if err != nil {
			t.Fatalf("marshal %+v: %v", a, err)
		}
		got, err := ParseAnnouncement(b)
		if err != nil {
			t.Fatalf("parse %+v: %v", a, err)
		}
		if !slices.Equal(got.Addrs, a.Addrs) || got.AnyAddr != a.AnyAddr || got.Public != a.Public ||
			got.Nameserver != a.Nameserver || got.Cluster != a.Cluster {
			t.Errorf("round trip: got %+v, want %+v", got, a)
		}
	}
}

func TestAnnouncementMarshalUnmapsAndCaps(t *testing.T) {
	var a Announcement
	a.Addrs = append(a.Addrs, netip.MustParseAddr("::ffff:192.0.2.1"), netip.Addr{})
	for i := range 30 {
		a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAnnouncement(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Addrs) != MaxAnnouncedAddrs || got.Addrs[0] != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("got %d addrs starting %v; want %d starting 192.0.2.1", len(got.Addrs), got.Addrs[0], MaxAnnouncedAddrs)
	}
	if _, err := (Announcement{Cluster: [3]string{strings.Repeat("x", 65)}}).Marshal(); err == nil {
		t.Error("an over-long cluster ID was encoded")
	}
}

func TestParseAnnouncementRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	many := make([][]byte, MaxAnnouncedAddrs+1)
	for i := range many {
		many[i] = []byte{198, 51, 100, byte(i)}
	}
	cases := map[string][]byte{
		"empty input":        nil,
		"not cbor":           []byte("hello"),
		"array not map":      enc([]int{1, 2}),
		"address of 5 bytes": enc(map[int]any{1: [][]byte{{1, 2, 3, 4, 5}}}),
		"too many addrs":     enc(map[int]any{1: many}),
		"four clusters":      enc(map[int]any{5: []string{"a", "b", "c", "d"}}),
		"long cluster":       enc(map[int]any{5: []string{strings.Repeat("c", 65)}}),
		"wrong type":         enc(map[int]any{3: "yes"}),
		"duplicate key":      {0xa2, 0x03, 0xf5, 0x03, 0xf4},
		"oversized":          append(enc(map[int]any{3: true}), make([]byte, MaxAnnouncementBytes)...),
	}
	for name, b := range cases {
		if _, err := ParseAnnouncement(b); !errors.Is(err, ErrBadAnnouncement) {
			t.Errorf("%s: err = %v, want ErrBadAnnouncement", name, err)
		}
	}
	// Unknown keys are a newer sender's fields, not an error.
	a, err := ParseAnnouncement(enc(map[int]any{3: true, 99: "future"}))
	if err != nil || !a.Public {
		t.Errorf("unknown key: %+v, %v", a, err)
	}
}

func FuzzParseAnnouncement(f *testing.F) {
	for _, a := range []Announcement{{}, {Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::1")}, Public: true, Cluster: [3]string{"a", "b", "c"}}} {
		b, _ := a.Marshal()
		f.Add(b)
	}
	f.Add([]byte{0xa1, 0x01, 0x9f})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAnnouncement(b)
		if err != nil {
			return
		}
		if len(a.Addrs) > MaxAnnouncedAddrs {
			t.Fatalf("%d addresses accepted", len(a.Addrs))
		}
		// What parses re-encodes and parses to the same thing.
		b2, err := a.Marshal()
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		a2, err := ParseAnnouncement(b2)
		if err != nil || !slices.Equal(a2.Addrs, a.Addrs) || a2.Cluster != a.Cluster || a2.Public != a.Public {
			t.Fatalf("re-parse: %+v %v, want %+v", a2, err, a)
		}
	})
}

// Headroom rides in the announcement; an announcement without it (an older
// node) is taken as unbounded, and a paused node is marked full in the
// directory.
func TestAnnouncementHeadroom(t *testing.T) {
	for _, h := range []shaping.Headroom{
		{Paused: true, SpareRate: 0, QuotaLeft: 5},
		{SpareRate: 1 << 20, QuotaLeft: -1},
		shaping.Unbounded,
	} {
		b, err := Announcement{Headroom: h}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseAnnouncement(b)
		if err != nil || got.Headroom != h {
			t.Errorf("headroom %+v came back as %+v, %v", h, got.Headroom, err)
		}
	}
	old, _ := Announcement{Public: true}.Marshal()
	if got, _ := ParseAnnouncement(old); got.Headroom != shaping.Unbounded {
		t.Errorf("no headroom on the wire read as %+v", got.Headroom)
	}
	d := NewDirectory(dnsserver.Proxy{ID: "self"})
	d.Heard("paused", Announcement{Headroom: shaping.Headroom{Paused: true, SpareRate: -1, QuotaLeft: -1}}, nil, time.Now())
	d.Heard("fine", Announcement{Headroom: shaping.Unbounded}, nil, time.Now())
	if d.HasRoom("paused") || !d.HasRoom("fine") || !d.HasRoom("unknown") {
		t.Errorf("HasRoom: paused %v fine %v unknown %v", d.HasRoom("paused"), d.HasRoom("fine"), d.HasRoom("unknown"))
	}
}
