package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/coralcdn/coral/core/dnsserver"
)

type staticDir []dnsserver.Proxy

func (d staticDir) Proxies() []dnsserver.Proxy { return d }

// benchProxies is the directory the Coral server answers from: 100 public
// proxies in a few clusters, all live for the whole run.
func benchProxies(n int) staticDir {
	now := time.Now()
	dir := make(staticDir, n)
	for i := range dir {
		dir[i] = dnsserver.Proxy{
			ID:         fmt.Sprintf("proxy-%d", i),
			Addrs:      []netip.Addr{netip.AddrFrom4([4]byte{192, 0, byte(2 + i/250), byte(1 + i%250)})},
			LastHeard:  now.Add(time.Hour),
			Public:     true,
			Nameserver: i%10 == 0,
			Cluster:    [3]string{fmt.Sprintf("r%d", i%7), fmt.Sprintf("c%d", i%3), "g"},
		}
	}
	return dir
}

// runCoral serves DNS on addr until SIGTERM or SIGINT; it prints "ready"
// once it listens.
func runCoral(addr, zone string, rrl bool, profile string) error {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	// The limiter's bookkeeping as shipped, with a rate above any load:
	// answers for synthesised names share one budget per client network,
	// so dnsperf's one address would get 20 a second.
	rl := dnsserver.RateLimit{PerSecond: 1e7}
	if !rrl {
		rl.PerSecond = -1
	}
	srv, err := dnsserver.New(dnsserver.Config{
		Zone:       zone,
		Listen:     addr,
		Self:       "proxy-0",
		LiveWindow: 24 * time.Hour,
		RateLimit:  rl,
		Logger:     slog.New(slog.DiscardHandler),
	}, benchProxies(100))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(os.Stdout, "ready")
	<-ctx.Done()
	st := srv.Stats()
	fmt.Fprintf(os.Stderr, "coral: queries=%d answers=%d rate_dropped=%d rate_slipped=%d\n",
		st.Queries, st.Answers, st.RateDropped, st.RateSlipped)
	return srv.Close()
}
