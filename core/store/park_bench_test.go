package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/procstat"
)

// parkBenchObjects is "a few thousand objects": mostly small inline bodies
// (metas, small files) and some file bodies.
const parkBenchObjects = 3000

func fillForPark(b *testing.B, s *Store) {
	b.Helper()
	for i := range parkBenchObjects {
		key := fmt.Sprintf("http://example.com/o%d", i)
		size := 1 << 10
		if i%150 == 0 {
			size = unit
		}
		put(b, s, key, body(key, 1, size), Meta{Status: 200, URL: key})
	}
}

// BenchmarkReopen measures what the first request after parking waits for:
// reopening Badger (a store of parkBenchObjects objects) and one Stat.
func BenchmarkReopen(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{})
	fillForPark(b, s)
	var total time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		if !s.park(true) {
			b.Fatal("did not park")
		}
		b.StartTimer()
		start := time.Now()
		if _, err := s.Stat("http://example.com/o7"); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		n++
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(n), "ms/reopen")
}

// BenchmarkIdleCPU prints the CPU and context switches of this process while
// a store of parkBenchObjects objects sits idle, first open, then parked, in
// the same run. CORAL_IDLE_SECS sets each window (default 10). Run with
// -benchtime=1x.
func BenchmarkIdleCPU(b *testing.B) {
	secs := 10
	if v, err := strconv.Atoi(os.Getenv("CORAL_IDLE_SECS")); err == nil && v > 0 {
		secs = v
	}
	s := openStore(b, b.TempDir(), Options{})
	fillForPark(b, s)
	window := time.Duration(secs) * time.Second
	for b.Loop() {
		time.Sleep(time.Second) // let the writes' flushes and compactions settle
		openCPU, openSw := idleWindow(window)
		if !s.park(true) {
			b.Fatal("did not park")
		}
		parkedCPU, parkedSw := idleWindow(window)
		fmt.Printf("idle store, %d objects, %d s each: open %.3f %% of a core, %.1f context switches/s; parked %.3f %% of a core, %.1f context switches/s\n",
			parkBenchObjects, secs, openCPU, openSw, parkedCPU, parkedSw)
		b.ReportMetric(openCPU, "open_%core")
		b.ReportMetric(parkedCPU, "parked_%core")
	}
}

// idleWindow waits d and returns this process's CPU (percent of one core)
// and context switches per second over it.
func idleWindow(d time.Duration) (pctCore, switchesPerSec float64) {
	cpu0, sw0 := procstat.CPUNanos(), procstat.ContextSwitches()
	start := time.Now()
	time.Sleep(d) // the measured window: nothing to synchronise with
	el := time.Since(start)
	cpu1, sw1 := procstat.CPUNanos(), procstat.ContextSwitches()
	return 100 * float64(cpu1-cpu0) / float64(el.Nanoseconds()), float64(sw1-sw0) / el.Seconds()
}

// BenchmarkCheckTables measures what checking every table for damage adds
// to a start (a store of parkBenchObjects objects, closed).
func BenchmarkCheckTables(b *testing.B) {
	dir := b.TempDir()
	s := openStore(b, dir, Options{})
	fillForPark(b, s)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	bopts := badgerOptions(filepath.Join(dir, "meta"), quietLogger())
	tables, _ := filepath.Glob(filepath.Join(dir, "meta", "*.sst"))
	for b.Loop() {
		if err := checkTables(bopts.Dir, bopts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tables)), "tables")
}
