package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/test/testkit"
)

// BenchmarkVisitorGate is the budget's cost on a cached 1 KiB response
// with no cap in force (counting only), beside the bare handler.
func BenchmarkVisitorGate(b *testing.B) {
	body := make([]byte, 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	budget, err := shaping.New(shaping.Policy{}, shaping.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer budget.Close()
	req := httptest.NewRequest("GET", "http://www.example.com.localhost/x", nil)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", h}, {"gate", newVisitorGate(h, budget, "localhost", "")}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tc.h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		})
	}
}

// BenchmarkVisitorHits measures cache hits through a whole node on
// loopback, every byte through the budget at the connection: a 1 KiB hot
// hit (the fast path), a 1 MiB stored hit (sendfile), and the same 1 MiB
// under a cap too high to bind (the shaped copy's own cost).
func BenchmarkVisitorHits(b *testing.B) {
	for _, tc := range []struct {
		name string
		size int
		cap  shaping.Rate
	}{{"1KiB", 1 << 10, 0}, {"1MiB", 1 << 20, 0}, {"1MiB-capped", 1 << 20, 8 << 30}} {
		b.Run(tc.name, func(b *testing.B) {
			body := bytes.Repeat([]byte("b"), tc.size)
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				w.Header().Set("Content-Type", "text/plain")
				w.Write(body)
			}))
			defer origin.Close()
			cfg := config.Default()
			cfg.DataDir = b.TempDir()
			cfg.HTTP.Listen, cfg.Control.Listen, cfg.DNS.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
			cfg.Cache.AllowPrivateOrigins = true
			cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
			cfg.P2P.MDNS, cfg.P2P.NATPortMap = false, false
			cfg.Bandwidth.Upload = tc.cap
			n, err := New(cfg, Options{Version: "bench", Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer n.Close()
			if err := n.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			get := func() error {
				req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+"/b", nil)
				req.Host = host
				resp, err := cl.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if k, err := io.Copy(io.Discard, resp.Body); err != nil || k != int64(tc.size) {
					return fmt.Errorf("%d bytes, %v", k, err)
				}
				return nil
			}
			testkit.BenchGets(b, get, tc.size, 3) // warm: stored, then hot
		})
	}
}
