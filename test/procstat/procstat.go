// Package procstat reads this process's own resource use for the tools that
// print figures (p2p/internal/memfig, app/internal/nodefig): resident memory
// and CPU time, as the kernel counts them.
package procstat

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
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

// ContextSwitches returns the voluntary and involuntary context switches
// of this process so far: on a small virtual machine an idle program's
// CPU follows its wakeups more than its work.
func ContextSwitches() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Nvcsw + ru.Nivcsw
}

// LoadAverage is the machine's 1, 5 and 15 minute load averages (Linux),
// or "unknown": figures from a machine loaded by others do not compare.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
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

// Child is the measured node of a figure tool, run as a child process that
// answers one-line commands on its stdin with lines on its stdout and says
// "ADDR <address>" first.
type Child struct {
	In  io.Writer
	Out *bufio.Scanner
	cmd *exec.Cmd
}

// StartChild starts cmd (its stderr is the caller's to set) and returns it
// with the address from its first line.
func StartChild(cmd *exec.Cmd) (*Child, string, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, "", err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	c := &Child{In: in, Out: bufio.NewScanner(stdout), cmd: cmd}
	if !c.Out.Scan() || !strings.HasPrefix(c.Out.Text(), "ADDR ") {
		c.Stop()
		return nil, "", fmt.Errorf("central node did not start: %q", c.Out.Text())
	}
	return c, strings.TrimPrefix(c.Out.Text(), "ADDR "), nil
}

// Stop asks the child to quit and waits for it.
func (c *Child) Stop() {
	fmt.Fprintln(c.In, "QUIT")
	_ = c.cmd.Wait()
}
