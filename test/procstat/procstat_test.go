package procstat

import "testing"

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
