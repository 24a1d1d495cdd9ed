package crowd

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/config"
)

func TestMakeFilesSpanSizesAndRepeat(t *testing.T) {
	a, b := MakeFiles(12, 10<<10, 1<<20), MakeFiles(12, 10<<10, 1<<20)
	if len(a[0].Body) != 10<<10 || len(a[11].Body) != 1<<20 {
		t.Fatalf("sizes %d..%d, want %d..%d", len(a[0].Body), len(a[11].Body), 10<<10, 1<<20)
	}
	for i := range a {
		if i > 0 && len(a[i].Body) <= len(a[i-1].Body) {
			t.Errorf("file %d (%d bytes) not larger than file %d (%d bytes)", i, len(a[i].Body), i-1, len(a[i-1].Body))
		}
		if !bytes.Equal(a[i].Body, b[i].Body) || a[i].Path != b[i].Path {
			t.Errorf("file %d differs between two calls", i)
		}
	}
	if bytes.Equal(a[0].Body[:1024], a[1].Body[:1024]) {
		t.Error("two files start with the same bytes: a wrong file could pass for the right one")
	}
}

// The origin serves every file whole with its cache headers, counts each
// request per file and refuses unknown paths; Visit accepts its answers.
func TestOriginServesAndCounts(t *testing.T) {
	files := MakeFiles(3, 1000, 50_000)
	o, err := StartOrigin(files, 8e6, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	addr := strings.TrimPrefix(o.URL, "http://")
	for i, f := range files {
		for range i + 1 {
			if out := Visit(context.Background(), http.DefaultClient, addr, "", f); out.Err != nil {
				t.Fatalf("%s: %v", f.Path, out.Err)
			}
		}
	}
	for i := range files {
		if got := o.Requests(i); got != int64(i+1) {
			t.Errorf("file %d: %d requests counted, want %d", i, got, i+1)
		}
	}
	if got, want := o.BytesSent(), int64(len(files[0].Body)+2*len(files[1].Body)+3*len(files[2].Body)); got != want {
		t.Errorf("BytesSent %d, want %d", got, want)
	}
	resp, err := http.Get(o.URL + files[1].Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=90" {
		t.Errorf("Cache-Control %q", cc)
	}
	resp, err = http.Get(o.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: status %d, want 404", resp.StatusCode)
	}
	if o.TotalRequests() != 7 {
		t.Errorf("TotalRequests %d, want 7 (the 404 is not a file request)", o.TotalRequests())
	}
}

// Visit must catch a wrong body, a short body and an error status.
func TestVisitChecksBody(t *testing.T) {
	f := MakeFiles(1, 4096, 4096)[0]
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		badBody bool
	}{
		{"one byte changed", func(w http.ResponseWriter, r *http.Request) {
			b := bytes.Clone(f.Body)
			b[100] ^= 1
			w.Write(b)
		}, true},
		{"short", func(w http.ResponseWriter, r *http.Request) { w.Write(f.Body[:4000]) }, true},
		{"error status", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.Write(f.Body)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			out := Visit(context.Background(), srv.Client(), strings.TrimPrefix(srv.URL, "http://"), "", f)
			if out.Err == nil {
				t.Fatal("accepted")
			}
			if got := errors.Is(out.Err, ErrBadBody); got != tc.badBody {
				t.Errorf("ErrBadBody %v, want %v (%v)", got, tc.badBody, out.Err)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		out := make([]time.Duration, len(xs))
		for i, x := range xs {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 95, 7 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 95, 100 * time.Millisecond},
		{ms(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), 90, 90 * time.Millisecond},
		{ms(5, 1, 9), 100, 9 * time.Millisecond},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
		}
	}
}

func TestTraceReading(t *testing.T) {
	for _, tc := range []struct {
		trace string
		level int
		cause string
		peer  string
	}{
		{"lookup L2:0 L1:0 L0:1 (5ms); try 12D3KooWabcd L0 downloading: ok; from peer 12D3KooWabcd L0", 0, "", "12D3KooWabcd"},
		{"lookup L2:1 (2ms); try X L2 cached: ok; from peer X L2", 2, "", "X"},
		{"lookup L2:0 L1:0 L0:0 (6ms); put+get L0:0 (24ms); from origin", -1, "first in the put+get (met nobody)", ""},
		{"lookup L2:0 L1:0 L0:0 (864ms); put+get: 0 values (10.03s): failed; from origin", -1, "put+get failed or timed out", ""},
		{"lookup L2:0 (3.6s): failed; put+get L0:1 (6s); try A L0 downloading: failed; from origin", -1, "every referral failed", ""},
		{"lookup L2:0 L1:0 L0:0 (3ms); from origin", -1, "lookup found nothing", ""},
		{"lookup L2:0 (3s): failed; from origin", -1, "lookup failed or timed out", ""},
		{"", -1, "no trace", ""},
	} {
		if got := PeerLevel(tc.trace); got != tc.level {
			t.Errorf("PeerLevel(%q) = %d, want %d", tc.trace, got, tc.level)
		}
		if got := PeerSource(tc.trace); got != tc.peer {
			t.Errorf("PeerSource(%q) = %q, want %q", tc.trace, got, tc.peer)
		}
		if tc.cause != "" {
			if got := OriginCause(tc.trace); got != tc.cause {
				t.Errorf("OriginCause(%q) = %q, want %q", tc.trace, got, tc.cause)
			}
		}
	}
}

// Planted regions: node i in region i mod N on its own 127.0.<r+1>.0/24,
// with a config every node accepts.
func TestRegions(t *testing.T) {
	r := Regions{N: 3, Inside: 5 * time.Millisecond, Across: 40 * time.Millisecond}
	for i, want := range []string{"127.0.1.1", "127.0.2.1", "127.0.3.1", "127.0.1.2", "127.0.2.2"} {
		if got := r.IP(i); got != want {
			t.Errorf("IP(%d) = %s, want %s", i, got, want)
		}
	}
	r.Dilate = 4
	cfg, err := config.Parse([]byte("[p2p]\n" + r.Config() + r.DSHTConfig()))
	if err != nil {
		t.Fatalf("nodes would refuse the planted config: %v", err)
	}
	if got := len(cfg.P2P.EmulateRTT); got != 4 {
		t.Errorf("%d rules, want 3 regions + 1 across", got)
	} else if in, across := cfg.P2P.EmulateRTT[0].RTT.D(), cfg.P2P.EmulateRTT[3].RTT.D(); in != 20*time.Millisecond || across != 160*time.Millisecond {
		t.Errorf("planted %v / %v, want 20ms / 160ms (dilated x4)", in, across)
	}
	if l2, l1 := cfg.DSHT.Level2RTT.D(), cfg.DSHT.Level1RTT.D(); l2 != 80*time.Millisecond || l1 != 240*time.Millisecond {
		t.Errorf("level thresholds %v / %v, want 80ms / 240ms", l2, l1)
	}
	if none := (Regions{N: 1}); none.Config() != "" || none.IP(7) != "127.0.0.1" {
		t.Errorf("one region plants latency: %q %s", none.Config(), none.IP(7))
	}
}

// The kill plan picks a repeatable share of the nodes, and a visitor of a
// dead node turns to a live node of its own region, else any live node.
func TestKillPlan(t *testing.T) {
	if p := NewKillPlan(100, 0, 10, 1, Regions{N: 5}); p != nil {
		t.Fatalf("share 0 killed %v", p.Victims)
	}
	a, b := NewKillPlan(100, 0.1, 10, 7, Regions{N: 5}), NewKillPlan(100, 0.1, 10, 7, Regions{N: 5})
	if len(a.Victims) != 10 || !slices.Equal(a.Victims, b.Victims) {
		t.Fatalf("victims %v and %v: want the same 10", a.Victims, b.Victims)
	}
	if a.Due(9) || !a.Due(10) {
		t.Error("Due is not at 10 visitors done")
	}
	killed := map[int]bool{}
	var mu sync.Mutex
	a.Kill(func(n int) { mu.Lock(); killed[n] = true; mu.Unlock() })
	a.Kill(func(n int) { t.Errorf("second Kill killed %d", n) })
	if len(killed) != 10 {
		t.Errorf("killed %v", killed)
	}
	for _, tc := range []struct {
		name  string
		nodes int
		share float64
		dead  []int
		from  int
		want  int
	}{
		{name: "next node of the region", nodes: 20, dead: []int{3}, from: 3, want: 8},
		{name: "skips a dead one of the region", nodes: 20, dead: []int{3, 8}, from: 3, want: 13},
		{name: "wraps around", nodes: 20, dead: []int{18}, from: 18, want: 3},
		{name: "whole region dead: the next node", nodes: 10, dead: []int{2, 7}, from: 2, want: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewKillPlan(tc.nodes, 0.5, 0, 1, Regions{N: 5})
			p.Victims = tc.dead
			p.Kill(func(int) {})
			if got := p.Instead(tc.from); got != tc.want {
				t.Errorf("Instead(%d) = %d, want %d", tc.from, got, tc.want)
			}
		})
	}
}
