package control

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The status page warns when the disk is (nearly) full and says how much
// is free; with room it shows no warning.
func TestStatusPageShowsDiskState(t *testing.T) {
	cases := []struct {
		name  string
		cache CacheStatus
		want  []string
		not   []string
	}{
		{"room", CacheStatus{FreeBytes: 5 << 30, MinFreeBytes: 1 << 30, Storing: true},
			[]string{"Free on the disk: 5.0 GiB", "are stored", "1.0 GiB"}, []string{"disk-warning", "passed through"}},
		{"nearly full", CacheStatus{FreeBytes: 900 << 20, MinFreeBytes: 1 << 30, DiskNote: "disk nearly full: passing through"},
			[]string{"disk-warning", "disk nearly full: passing through", "Free on the disk: 900 MiB", "passed through, not stored"}, nil},
		{"unknown free space", CacheStatus{FreeBytes: -1, MinFreeBytes: 1 << 30, Storing: true}, nil, []string{"Free on the disk", "disk-warning"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(fixedAPI{Status{NodeID: "node-x", Cache: c.cache}}, "0123456789abcdef0123", nil, nil)
			srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			defer srv.Close()
			resp, err := http.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(b)
			for _, w := range c.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(page, w) {
					t.Errorf("page shows %q", w)
				}
			}
		})
	}
}

func getPage(t *testing.T, st Status) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewServer(fixedAPI{st}, "0123456789abcdef0123", nil, nil), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// The page names the node so people can tell nodes apart, says its health
// in words, never leaves a cluster blank, and words where responses came
// from without "failed" for a normal miss.
func TestStatusPageInWords(t *testing.T) {
	st := Status{
		NodeID: "12D3KooWQx9v1aZ3Fj8kP0LmN7tq", Zone: "nyud.net",
		Listen: Listen{HTTP: "[::]:8080", Control: "127.0.0.1:8081"},
		Cache:  CacheStatus{FreeBytes: -1, Storing: true},
		P2P:    &P2PStatus{PeerID: "12D3KooWQx9v1aZ3Fj8kP0LmN7tq", Reachability: "private", Relayed: true, RelayAddrs: []string{"/ip4/1.2.3.4/tcp/1/p2p-circuit"}, ConnectedPeers: 3},
		DSHT:   &DSHTStatus{Levels: []LevelStatus{{Level: 0, RoutingSize: 3}, {Level: 1, ClusterID: "", ClusterSize: 1}, {Level: 2, ClusterID: "a1b2c3d4e5f6", ClusterSize: 4, RoutingSize: 3}}},
		Events: []Event{{Level: "warn", Component: "p2p", Message: "created a new network secret"}},
		Recent: []Trace{
			{URL: "http://example.com/", Result: "MISS", Path: "lookup L2:0 L1:0 L0:0 (0s); put+get L0:0 (0s): no other node to ask yet; from origin"},
			{URL: "http://example.com/", Result: "HIT", Path: "from cache"},
		},
	}
	page := getPage(t, st)
	for _, want := range []string{
		`<span id="node-name">` + NodeName(st.NodeID) + `</span>`,
		"Not reachable from the Internet: serving through relays",
		"Connected to 3 other nodes, reached by visitors through 1 relay",
		"<code>whole network</code>", "<code>none yet</code>", "<code>a1b2c3d4e5f6</code>",
		"Level 2 (nearby nodes): in a cluster of 4, knows 3",
		"fetched from the origin", "from this node&#39;s cache",
		"<h2>Warnings</h2>", "<td>p2p</td><td>created a new network secret</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, not := range []string{"<code></code>", "failed", "<td>MISS</td>"} {
		if strings.Contains(page, not) {
			t.Errorf("page shows %q", not)
		}
	}
}

// usageNode is a node with a budget and usage buckets.
type usageNode struct{ fixedAPI }

func (usageNode) Usage(site string, since time.Time) []UsageBucket {
	var out []UsageBucket
	for t := since.Truncate(5 * time.Minute); t.Before(time.Now()); t = t.Add(5 * time.Minute) {
		out = append(out, UsageBucket{Start: t, Sent: 300 << 20, Received: 30 << 20})
	}
	return out
}

// With a budget the page shows the traffic in words, the last hour and
// day as inline SVG graphs, and the month's sites with their share.
func TestStatusPageShowsTraffic(t *testing.T) {
	st := Status{NodeID: "n", Zone: "nyud.net", Listen: Listen{HTTP: "[::]:8080", Control: "127.0.0.1:8081"}, Cache: CacheStatus{FreeBytes: -1, Storing: true},
		Budget: &BudgetStatus{Serving: true, Upload: "2MiB/s", Download: "0", SentRate: 1 << 20, MonthSent: 40 << 30,
			QuotaBytes: 300 << 30, QuotaUsed: 40 << 30, QuotaResetAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.Local),
			Sites: map[string]SiteUsage{"www.example.com": {Sent: 30 << 30}, "news.example.org": {Sent: 10 << 30}}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewServer(usageNode{fixedAPI{st}}, "0123456789abcdef0123", nil, nil), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	for _, want := range []string{
		"Now: up 1.0 MiB/s, down 0 B/s (upload cap 2MiB/s)", "this month 40 GiB sent of 300 GiB (13 %), resets on the 1st",
		`aria-label="upload and download, last hour"`, `aria-label="upload and download, last 24 hours"`, "1.0 MiB/s</text>",
		"<td><code>www.example.com</code></td><td>30 GiB</td><td>0 B</td><td>75 %</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Index(page, "www.example.com") > strings.Index(page, "news.example.org") {
		t.Errorf("sites not by bytes sent")
	}
	if strings.Contains(page, "src=\"http") || strings.Contains(page, "href=\"http") {
		t.Errorf("the page refers to an external asset")
	}
}
