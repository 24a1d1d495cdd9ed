package procstat

import (
	"strconv"
	"strings"
	"testing"
)

func TestReadsOwnProcess(t *testing.T) {
	if rss := RSSBytes(); rss < 1<<20 {
		t.Errorf("RSS %d bytes: a Go test binary uses more than 1 MiB", rss)
	}
	before := CPUNanos()
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	if after := CPUNanos(); after <= before || x == 0 {
		t.Errorf("CPU time did not grow over a busy loop: %d -> %d", before, after)
	}
}

func TestLoadAverage(t *testing.T) {
	f := strings.Fields(LoadAverage())
	if len(f) != 3 {
		t.Fatalf("LoadAverage() = %q, want three figures", LoadAverage())
	}
	for _, x := range f {
		if v, err := strconv.ParseFloat(x, 64); err != nil || v < 0 {
			t.Errorf("load average %q is not a figure", x)
		}
	}
}
