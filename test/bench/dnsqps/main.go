// Command dnsqps measures Coral's DNS server against NSD on this machine, in
// one run, with dnsperf as the client: each server pinned to CPU 0 (Coral
// with GOMAXPROCS=1), dnsperf pinned to CPU 1. Two workloads:
//
//   - distinct: 10,000 different Coralized names from one client address,
//     Coral's response rate limiter on, its rate above the load (a busy
//     resolver; the limiter's cost is counted, nothing is suppressed);
//   - repeat: one name over and over, Coral's limiter off (raw speed).
//
// NSD serves a zone file with the same names and three A records each (as
// Coral answers), minimal responses, its own rate limiting off.
//
//	go run ./test/bench/dnsqps -duration 10s
//
// To profile Coral's server alone: run it with -serve 127.0.0.1:5300
// -rrl=false -cpuprofile cpu.out, drive it with dnsperf, stop it with
// SIGINT, and read cpu.out with go tool pprof.
//
// It needs nsd, dnsperf and taskset (packaging/install-deps.sh). The last
// line is:
//
//	coral_distinct_qps=… nsd_distinct_qps=… coral_repeat_qps=… nsd_repeat_qps=… ratio=…
//
// where ratio is the lower of the two coral/nsd ratios.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
)

func main() {
	serve := flag.String("serve", "", "internal: run Coral's DNS server on this address (used by the benchmark itself)")
	rrl := flag.Bool("rrl", true, "internal, with -serve: the response rate limiter on, its rate above any load")
	profile := flag.String("cpuprofile", "", "with -serve: write the server's CPU profile here")
	duration := flag.Duration("duration", 10e9, "how long each dnsperf run lasts")
	names := flag.Int("names", 10000, "distinct names in the distinct workload")
	zone := flag.String("zone", "nyud.net", "zone served")
	serverCPU := flag.Int("server-cpu", 0, "CPU the servers are pinned to")
	clientCPU := flag.Int("client-cpu", 1, "CPU dnsperf is pinned to")
	flag.Parse()
	var err error
	if *serve != "" {
		err = runCoral(*serve, *zone, *rrl, *profile)
	} else {
		err = compare(bench{duration: *duration, names: *names, zone: *zone, serverCPU: *serverCPU, clientCPU: *clientCPU})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dnsqps:", err)
		os.Exit(1)
	}
}

// needTools checks that the external programs are installed.
func needTools() error {
	for _, tool := range []string{"nsd", "dnsperf", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (install nsd, dnsperf and util-linux: bash packaging/install-deps.sh): %w", tool, err)
		}
	}
	return nil
}
