package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/test/testkit"
)

// These tests look at a node as its volunteer's line does: bytes counted at
// the visitor's end of real TCP connections, against the upload cap and
// against what the budget counted.

// wireConn counts the bytes a client reads off its connection.
type wireConn struct {
	net.Conn
	n *atomic.Int64
}

func (c wireConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// wireClient is an HTTP client whose connections count what they receive
// into wire; rcvbuf, when not 0, is its sockets' receive buffer.
func wireClient(wire *atomic.Int64, rcvbuf int) (*http.Client, *http.Transport) {
	d := &net.Dialer{}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return wireConn{c, wire}, nil
		}}
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &http.Client{Transport: tr, CheckRedirect: noRedirect}, tr
}

// crowdResult is what a crowd of visitors got.
type crowdResult struct {
	answers  int64
	wire     int64 // bytes the visitors received
	elapsed  time.Duration
	statuses map[int]int64
	closes   int64 // answers with Connection: close
}

// crowd has clients visitors ask the node with newReq again and again for
// dur, and reports what they received.
func crowd(t *testing.T, n *Node, clients int, dur time.Duration, newReq func() *http.Request) crowdResult {
	t.Helper()
	var wire, answers, closes atomic.Int64
	cl, tr := wireClient(&wire, 0)
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	statuses := map[int]int64{}
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := cl.Do(newReq())
				if err != nil {
					t.Errorf("visitor: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers.Add(1)
				if resp.Close {
					closes.Add(1)
				}
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return crowdResult{answers: answers.Load(), wire: wire.Load(), elapsed: time.Since(start),
		statuses: statuses, closes: closes.Load()}
}

// siteSent is what the budget counted as sent for the test origins' site.
func siteSent(t *testing.T, n *Node) int64 { return budgetOf(t, n).Sites["127.0.0.1"].Sent }

// checkWithinCap: what the visitors received stays within the cap (half
// again for scheduling, plus one burst), and the budget counted at least
// 90 % of it (it counts as bytes are written, so it catches up at once).
func checkWithinCap(t *testing.T, n *Node, what string, capRate int64, before int64, r crowdResult) {
	t.Helper()
	if capRate > 0 {
		limit := int64(float64(capRate)*r.elapsed.Seconds()*1.5) + int64(shaping.BurstFor(shaping.Rate(capRate)))
		if r.wire > limit {
			t.Errorf("%s: visitors received %d bytes in %v under a %d B/s cap (%.1fx), want at most %d",
				what, r.wire, r.elapsed.Round(time.Millisecond), capRate,
				float64(r.wire)/(float64(capRate)*r.elapsed.Seconds()), limit)
		}
	}
	testkit.Eventually(t, 5*time.Second, what+": the budget counts what the visitors received", func() bool {
		return float64(siteSent(t, n)-before) >= 0.9*float64(r.wire)
	})
}

// Every answer a visitor gets goes through the upload cap and counts
// against the quota: status lines and headers too, so whole HEAD and 304
// answers and a tiny object's heads no longer pass around it; ranged
// answers too; and without a cap every byte is still counted.
func TestUploadCapHoldsEveryVisitorByte(t *testing.T) {
	big := bytes.Repeat([]byte("r"), 256<<10)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"v1"`)
		if r.URL.Path == "/big" {
			w.Write(big)
			return
		}
		io.WriteString(w, "x")
	}))
	defer origin.Close()
	const capRate = 16 << 10
	for _, tc := range []struct {
		name, method, path string
		header             [2]string
		capRate            int64
		status             int
	}{
		{"HEAD", "HEAD", "/small", [2]string{}, capRate, 200},
		{"GET of 1 byte", "GET", "/small", [2]string{}, capRate, 200},
		{"304", "GET", "/small", [2]string{"If-None-Match", `"v1"`}, capRate, 304},
		{"ranged", "GET", "/big", [2]string{"Range", "bytes=1000-1999"}, capRate, 206},
		{"GET of 1 byte, no cap", "GET", "/small", [2]string{}, 0, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t, testConfig(t))
			host := originHost(origin)
			for range 3 { // stored, then hot
				if resp, _ := coralGet(t, n, host, tc.path); resp.StatusCode != 200 {
					t.Fatalf("warming %s: %d", tc.path, resp.StatusCode)
				}
			}
			setUpload(t, n, tc.capRate)
			before := siteSent(t, n)
			r := crowd(t, n, 8, 2*time.Second, func() *http.Request {
				req, _ := http.NewRequest(tc.method, "http://"+n.Addrs().HTTP+tc.path, nil)
				req.Host = host
				if tc.header[0] != "" {
					req.Header.Set(tc.header[0], tc.header[1])
				}
				return req
			})
			if r.statuses[tc.status] == 0 || int64(len(r.statuses)) != 1 {
				t.Fatalf("answers %v, want only %d", r.statuses, tc.status)
			}
			checkWithinCap(t, n, tc.name, tc.capRate, before, r)
			t.Logf("%s: %d answers, %d bytes received in %v, %d counted", tc.name, r.answers, r.wire,
				r.elapsed.Round(time.Millisecond), siteSent(t, n)-before)
		})
	}
}

// A node that does not serve still answers the visitors who arrive (503
// or the way home), and those answers go through the upload cap, count,
// and close their connection.
func TestPausedRefusalsHeldToTheCap(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "x")
	}))
	defer origin.Close()
	const capRate = 16 << 10
	cfg := testConfig(t)
	cfg.Bandwidth.Upload = capRate
	n := startNode(t, cfg)
	if code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"paused": true}`); code != 200 {
		t.Fatalf("pause: %d %s", code, b)
	}
	before := siteSent(t, n)
	r := crowd(t, n, 8, 2*time.Second, func() *http.Request {
		req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+"/p", nil)
		req.Host = originHost(origin)
		return req
	})
	if r.statuses[http.StatusServiceUnavailable] != r.answers || r.closes != r.answers {
		t.Errorf("paused: answers %v, %d of %d with Connection: close", r.statuses, r.closes, r.answers)
	}
	checkWithinCap(t, n, "503 while paused", capRate, before, r)
	if st := budgetOf(t, n); st.MonthSent == 0 {
		t.Errorf("the refusals' bytes are not in the month's total")
	}
	t.Logf("paused: %d answers, %d bytes received in %v", r.answers, r.wire, r.elapsed.Round(time.Millisecond))
}

// A cap set while a stored object is being sent (sendfile) slows that
// download within a chunk: what arrives afterwards stays within the new
// cap, plus what was already in flight.
func TestCapSetMidDownloadSlowsIt(t *testing.T) {
	const size = 24 << 20
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(bytes.Repeat([]byte("x"), size))
	}))
	defer origin.Close()
	n := startNode(t, testConfig(t))
	host := originHost(origin)
	if resp, body := coralGet(t, n, host, "/big"); resp.StatusCode != 200 || len(body) != size {
		t.Fatalf("storing: %d, %d bytes", resp.StatusCode, len(body))
	}
	var wire atomic.Int64
	cl, tr := wireClient(&wire, 128<<10) // a small window: little sits in the kernel's buffers
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+"/big", nil)
	req.Host = host
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	const capRate = 512 << 10
	setUpload(t, n, capRate)
	// What was in flight when the cap came (the sendfile chunk under way,
	// at most 1 MiB, and the kernels' buffers) arrives in the first
	// second; from then on the download goes at the cap.
	read := func(d time.Duration) (int64, time.Duration) {
		start, at := time.Now(), wire.Load()
		buf := make([]byte, 32<<10)
		for time.Since(start) < d {
			if _, err := resp.Body.Read(buf); err != nil {
				t.Fatalf("the download ended (%v) %d bytes in: it went on at line rate", err, wire.Load())
			}
		}
		return wire.Load() - at, time.Since(start)
	}
	inFlight, _ := read(time.Second)
	got, elapsed := read(2 * time.Second)
	if limit := int64(float64(capRate)*elapsed.Seconds()*1.5) + shapedPiece; got > limit {
		t.Errorf("after a %d KiB/s cap was set mid-download, %d bytes arrived in %v, want at most %d",
			capRate>>10, got, elapsed.Round(time.Millisecond), limit)
	}
	t.Logf("cap set mid-download: %d bytes in the first second, then %d in %v (%.0f KiB/s)", inFlight, got,
		elapsed.Round(time.Millisecond), float64(got)/elapsed.Seconds()/1024)
}

// shapedPiece is the most a visitor's connection writes at once under a
// cap (core/proxy).
const shapedPiece = 16 << 10

// setUpload sets the upload cap through the settings API, as a volunteer
// does while the node runs (0: no cap).
func setUpload(t *testing.T, n *Node, rate int64) {
	t.Helper()
	if code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(),
		fmt.Sprintf(`{"bandwidth":{"upload":%q}}`, shaping.Rate(rate))); code != 200 {
		t.Fatalf("setting the upload cap: %d %s", code, b)
	}
}

// Under a cap, the sites with visitors share it by their weights: the
// connection shapes each response as the site its handler named.
func TestUploadCapSharedBySiteWeights(t *testing.T) {
	body := bytes.Repeat([]byte("w"), 1<<20)
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Write(body)
	})
	origin := httptest.NewServer(serve)
	defer origin.Close()
	// A second site: the same origin on another loopback address.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	origin2 := &httptest.Server{Listener: ln, Config: &http.Server{Handler: serve}}
	origin2.Start()
	defer origin2.Close()
	cfg := testConfig(t)
	cfg.Sites = []config.Site{{Host: "127.0.0.2", Weight: 3}} // 127.0.0.1 weighs 1
	n := startNode(t, cfg)
	heavy, light := originHost(origin2), originHost(origin)
	for _, host := range []string{heavy, light} {
		if resp, got := coralGet(t, n, host, "/o"); resp.StatusCode != 200 || len(got) != len(body) {
			t.Fatalf("storing for %s: %d, %d bytes", host, resp.StatusCode, len(got))
		}
	}
	before := budgetOf(t, n).Sites
	setUpload(t, n, 256<<10)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, host := range []string{heavy, light, heavy, light} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+n.Addrs().HTTP+"/o", nil)
			req.Host = host
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	after := budgetOf(t, n).Sites
	h := after["127.0.0.2"].Sent - before["127.0.0.2"].Sent
	l := after["127.0.0.1"].Sent - before["127.0.0.1"].Sent
	if l <= 0 || float64(h)/float64(l) < 2 || float64(h)/float64(l) > 4.5 {
		t.Errorf("weights 3:1 under a cap: 127.0.0.2 sent %d, 127.0.0.1 sent %d", h, l)
	}
	t.Logf("weights 3:1: 127.0.0.2 %d bytes, 127.0.0.1 %d bytes (%.2f:1)", h, l, float64(h)/float64(max(l, 1)))
}

// Upload "off" sends visitors nothing at all, not even the resting page:
// the connection closes unanswered.
func TestUploadOffSendsVisitorsNothing(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "x")
	}))
	defer origin.Close()
	cfg := testConfig(t)
	cfg.Bandwidth.Upload = shaping.Off
	n := startNode(t, cfg)
	var wire atomic.Int64
	cl, tr := wireClient(&wire, 0)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+"/p", nil)
	req.Host = originHost(origin)
	if resp, err := cl.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("upload off, yet the visitor got %d", resp.StatusCode)
	}
	if wire.Load() != 0 || siteSent(t, n) != 0 {
		t.Errorf("upload off: the visitor received %d bytes, %d counted", wire.Load(), siteSent(t, n))
	}
}
