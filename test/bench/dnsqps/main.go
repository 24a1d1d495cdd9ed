// Command dnsqps measures how many queries per second the Coral DNS server
// answers on this machine: it starts the real server on loopback with a
// directory of proxies and drives it over UDP with miekg/dns clients from a
// few goroutines, all asking for one repeated Coralized name.
//
//	go run ./test/bench/dnsqps -duration 5s -workers 4
//
// The last line is key=value pairs: qps=... queries=... seconds=... errors=...
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/miekg/dns"
)

type staticDir []dnsserver.Proxy

func (d staticDir) Proxies() []dnsserver.Proxy { return d }

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long to send queries")
	workers := flag.Int("workers", 4, "concurrent clients, one UDP socket each")
	nproxies := flag.Int("proxies", 100, "proxies in the directory")
	zone := flag.String("zone", "nyud.net", "zone served")
	name := flag.String("name", "", "name queried (default www.example.com.<zone>)")
	flag.Parse()
	if *name == "" {
		*name = "www.example.com." + *zone
	}
	if err := run(*duration, *workers, *nproxies, *zone, dns.Fqdn(*name)); err != nil {
		fmt.Fprintln(os.Stderr, "dnsqps:", err)
		os.Exit(1)
	}
}

func run(duration time.Duration, workers, nproxies int, zone, name string) error {
	now := time.Now()
	dir := make(staticDir, nproxies)
	for i := range dir {
		dir[i] = dnsserver.Proxy{
			ID:         fmt.Sprintf("proxy-%d", i),
			Addrs:      []netip.Addr{netip.AddrFrom4([4]byte{192, 0, byte(2 + i/250), byte(1 + i%250)})},
			LastHeard:  now,
			Public:     true,
			Nameserver: i%10 == 0,
			Cluster:    [3]string{fmt.Sprintf("r%d", i%7), fmt.Sprintf("c%d", i%3), "g"},
		}
	}
	srv, err := dnsserver.New(dnsserver.Config{
		Zone:       zone,
		Listen:     "127.0.0.1:0",
		Self:       "proxy-0",
		LiveWindow: duration + time.Minute,
		RateLimit:  dnsserver.RateLimit{PerSecond: -1}, // one client address: RRL would measure itself
		Logger:     slog.New(slog.DiscardHandler),
	}, dir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Close()
	udp, _ := srv.Addr()
	fmt.Printf("server=%s name=%s proxies=%d workers=%d cpus=%d\n", udp, name, nproxies, workers, runtime.NumCPU())

	var ok, bad atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &dns.Client{Net: "udp"}
			conn, err := client.Dial(udp.String())
			if err != nil {
				bad.Add(1)
				return
			}
			defer conn.Close()
			q := new(dns.Msg)
			q.SetQuestion(name, dns.TypeA)
			for {
				select {
				case <-stop:
					return
				default:
				}
				q.Id = dns.Id()
				conn.SetDeadline(time.Now().Add(time.Second))
				if err := conn.WriteMsg(q); err != nil {
					bad.Add(1)
					continue
				}
				r, err := conn.ReadMsg()
				if err != nil || r.Id != q.Id || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
					bad.Add(1)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	start := time.Now()
	time.Sleep(duration)
	close(stop)
	wg.Wait()
	secs := time.Since(start).Seconds()
	st := srv.Stats()
	fmt.Printf("server_queries=%d server_answers=%d\n", st.Queries, st.Answers)
	fmt.Printf("qps=%.0f queries=%d seconds=%.2f errors=%d\n", float64(ok.Load())/secs, ok.Load(), secs, bad.Load())
	return nil
}
