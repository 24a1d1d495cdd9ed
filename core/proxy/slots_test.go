package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/test/testkit"
)

func TestSiteOf(t *testing.T) {
	tests := map[string]string{
		"www.example.com":     "example.com",
		"img.cdn.example.com": "example.com",
		"a.b.example.co.uk":   "example.co.uk",
		"user.github.io":      "user.github.io", // a public suffix: each user is a site
		"192.0.2.7":           "192.0.2.7",
		"localhost":           "localhost",
	}
	for host, want := range tests {
		if got := siteOf(coralurl.Origin{Scheme: "http", Host: host, Port: 80}); got != want {
			t.Errorf("siteOf(%s) = %q, want %q", host, got, want)
		}
	}
}

// dripOrigin sends a chunked body one byte at a time, every interval,
// until stop is closed or the proxy hangs up; it tracks how many requests
// it serves at once.
type dripOrigin struct {
	*httptest.Server
	now, peak atomic.Int64
	gone      atomic.Int64 // requests that ended because the proxy hung up
}

func newDripOrigin(t *testing.T, ip string, every time.Duration, stop <-chan struct{}) *dripOrigin {
	d := &dripOrigin{}
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	d.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := d.now.Add(1)
		defer d.now.Add(-1)
		for p := d.peak.Load(); n > p && !d.peak.CompareAndSwap(p, n); p = d.peak.Load() {
		}
		w.Header().Set("Cache-Control", "max-age=60")
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				d.gone.Add(1)
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-stop:
				return
			case <-r.Context().Done():
				d.gone.Add(1)
				return
			case <-tick.C:
			}
		}
	}))
	d.Server.Listener.Close()
	d.Server.Listener = ln
	d.Server.Start()
	t.Cleanup(d.Close)
	return d
}

func (d *dripOrigin) host() string {
	a := d.Listener.Addr().(*net.TCPAddr)
	return a.IP.String() + "." + strconv.Itoa(a.Port) + "." + testZone
}

// Eight slow-drip downloads from one site hold that site's share of the
// slots (a quarter of 8), not all of them: a miss on another site is
// served meanwhile.
func TestSlowSiteCannotStarveOthers(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxOriginFetches = 8 })
	stop := make(chan struct{})
	drip := newDripOrigin(t, "127.0.0.1", 20*time.Millisecond, stop)
	// A different site: 127.0.0.2 is loopback too on Linux.
	otherLn, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2: %v", err)
	}
	other := httptest.NewUnstartedServer(static("other site", "Cache-Control", "max-age=60"))
	other.Listener.Close()
	other.Listener = otherLn
	other.Start()
	t.Cleanup(other.Close)
	otherHost := "127.0.0.2." + strconv.Itoa(otherLn.Addr().(*net.TCPAddr).Port) + "." + testZone

	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := e.do("GET", drip.host(), "/drip/"+strconv.Itoa(i), nil)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}()
	}
	testkit.Eventually(t, 10*time.Second, "two drips running and six queued", func() bool {
		return drip.now.Load() == 2 && e.p.Stats().Queued == 6
	})
	began := time.Now()
	expect(t, "other site", e.fetch("GET", otherHost, "/"), 200, CacheMiss, "other site")
	t.Logf("other site's miss served in %v while one site's 8 drips held 2 slots and queued 6", time.Since(began))
	close(stop)
	wg.Wait()
	if p := drip.peak.Load(); p > 2 {
		t.Errorf("one site held %d origin slots at once, its share is 2", p)
	}
}

// An origin dripping a byte well inside the stall timeout is cut off once
// the transfer outlasts what its size warrants.
func TestTransferDeadline(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.OriginTimeout = 300 * time.Millisecond; o.MinOriginRate = 1024 })
	drip := newDripOrigin(t, "127.0.0.1", 50*time.Millisecond, nil)
	resp := e.do("GET", drip.host(), "/forever", nil)
	_, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatal("a never-ending drip ended as a complete response")
	}
	testkit.Eventually(t, 10*time.Second, "the origin connection closed", func() bool { return drip.gone.Load() == 1 })
	// The fetch lets its slot go as it winds down, just after the close.
	testkit.Eventually(t, 10*time.Second, "the cut fetch to release its slot", func() bool { return e.p.Stats().InFlight == 0 })
}

func TestTransferGuardDeadlineGrowsWithSize(t *testing.T) {
	start := time.Now()
	for _, tc := range []struct {
		length, seen int64
		want         time.Duration
	}{
		{-1, 0, 30 * time.Second},
		{-1, 2048, 32 * time.Second},
		{1 << 20, 0, 30*time.Second + 1024*time.Second},
		{1 << 20, 2 << 20, 30*time.Second + 2048*time.Second},
	} {
		g := newTransferGuard(30*time.Second, 1024, tc.length, func() {})
		g.start, g.seen = start, tc.seen
		if got := g.deadline().Sub(start); got != tc.want {
			t.Errorf("length %d seen %d: deadline after %s, want %s", tc.length, tc.seen, got, tc.want)
		}
		g.stop()
	}
}
