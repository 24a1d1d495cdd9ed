// Package procstat reads this process's own resource use for the tools that
// print figures (p2p/internal/memfig, app/internal/nodefig): resident memory
// and CPU time, as the kernel counts them.
package procstat

import (
	"os"
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
