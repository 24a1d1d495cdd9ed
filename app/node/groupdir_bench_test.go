package node

import (
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/signed"
	"golang.org/x/time/rate"
)

// directoryOnlyNode is a node with just what the directory needs (no
// network): the figures below are the directory's own cost.
func directoryOnlyNode(b *testing.B) *Node {
	cfg := config.Default()
	cfg.DataDir = b.TempDir()
	n := &Node{cfg: cfg, log: quiet}
	n.groups.dir.every = rate.Inf // the worst case: senders not held back
	// The caller flushes its serials: no write after TempDir is removed.
	return n
}

func heapInUseMiB() float64 {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	return float64(s.HeapInuse) / (1 << 20)
}

// BenchmarkGroupDirectoryFlood fills a directory with groups at the limits
// (64 sites, 256 members, ~34 KB each) from 4×dirSenderShare senders, as
// many as its bounds take, and prints the heap it costs; then measures one
// serial bump of a flood group at the full directory (ns/op, B/op).
// Before the bounds (issue: reviewer's flood), 1024 such groups took every
// node's heap from 9 to 410 MiB, and a bump cost ~500 ms and 346 MiB.
func BenchmarkGroupDirectoryFlood(b *testing.B) {
	n := directoryOnlyNode(b)
	before := heapInUseMiB()
	var groups []madeUpGroup
	var senders []string
	notKept := 0
	for s := range 4 * dirSenderShare {
		sender := fmt.Sprintf("sender%d", s)
		for range maxDirectoryGroups / dirSenderShare / 4 {
			g := newMadeUpGroup(b, largestManifest(1))
			switch err := n.offerAnnouncement(sender, g.ann); {
			case err == nil:
				g.ann = nil // the directory's copy is what is measured
				groups, senders = append(groups, g), append(senders, sender)
			case errors.Is(err, signed.ErrNotKept):
				notKept++
			default:
				b.Fatal(err)
			}
		}
	}
	n.groups.mu.Lock()
	kept, bytes := len(n.groups.dir.entries), n.groups.dir.bytes
	n.groups.mu.Unlock()
	heap := heapInUseMiB() - before
	b.Logf("flood of %d groups at the limits: %d taken, %d kept at the end (%.1f MiB of announcements), %d not kept; heap +%.1f MiB",
		len(groups)+notKept, len(groups), kept, float64(bytes)/(1<<20), notKept, heap)
	b.ReportMetric(heap, "heap-MiB")
	bumps := make([][]byte, 0, 64)
	for i := range cap(bumps) {
		bumps = append(bumps, groups[i%len(groups)].announce(b, largestManifest(uint64(2+i))))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i >= len(bumps) {
			b.StopTimer()
			g := groups[i%len(groups)]
			bumps = append(bumps, g.announce(b, largestManifest(uint64(2+i))))
			b.StartTimer()
		}
		err := n.offerAnnouncement(senders[i%len(groups)], bumps[i])
		if err != nil && !errors.Is(err, signed.ErrNotKept) {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n.flushDirectorySerials()
}
