// Package procstat reads this process's own resource use for the tools that
// print figures (p2p/internal/memfig, app/internal/nodefig): resident memory
// and CPU time, as the kernel counts them.
package procstat

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// RSSBytes returns the resident set size from /proc/self/status, or -1
// where it cannot be read.
func RSSBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

// CPUNanos returns the user and system CPU time used so far.
func CPUNanos() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// PrintRates prints, per protocol and in all, the writes and reads per
// second between two readings of stream counts (protocol -> {writes,
// reads}) taken secs apart, as a table whose first column is width wide.
func PrintRates(w io.Writer, before, after map[string][2]int64, secs float64, width int) {
	fmt.Fprintf(w, "%-*s %10s %10s\n", width, "protocol", "writes/s", "reads/s")
	protos := slices.Sorted(maps.Keys(after))
	var tw, tr float64
	for _, p := range protos {
		wr, rd := float64(after[p][0]-before[p][0])/secs, float64(after[p][1]-before[p][1])/secs
		tw, tr = tw+wr, tr+rd
		fmt.Fprintf(w, "%-*s %10.1f %10.1f\n", width, p, wr, rd)
	}
	fmt.Fprintf(w, "%-*s %10.1f %10.1f\n", width, "all", tw, tr)
}
