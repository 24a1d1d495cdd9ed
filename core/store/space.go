package store

import (
	"log/slog"
	"sync/atomic"

	"github.com/coralcdn/coral/core/object"
)

// ErrDiskFull: the store's filesystem is below its free-space watermark, so
// the store admits no new objects (or, closer to full, writes nothing).
var ErrDiskFull = object.ErrDiskFull

// BadgerRoom is the free space below which the store writes nothing to
// Badger and does not open it at all. Badger memory-maps its write-ahead
// log and its tables and writes them through the mapping, which on a full
// filesystem is a SIGBUS (a crash), not an error: so it must never get
// near ENOSPC. This covers a memtable's log (16 MiB, mapped at 32 MiB),
// flushing it to a table and the compaction after, with slack. Measured
// (tmpfs): a fresh store opens in 20 KiB and dies at 16 KiB (the DISCARD
// file's mapping); a restart replays the unflushed log and writes it out as
// a table, so it needs about the log's size again (12 MiB of log died with
// 6 MiB free, in handleMemTableFlush).
const BadgerRoom = 64 << 20

// checkEvery is how many body bytes a Writer writes between free-space
// checks; with W concurrent writers the watermark may be overshot by about
// W*checkEvery.
const checkEvery = 1 << 20

// resumeMargin: after stopping, storing resumes only once free space is
// MinFreeBytes plus 1/resumeMargin of it.
const resumeMargin = 8

// diskState orders how close the filesystem is to full.
type diskState int32

const (
	diskOK      diskState = iota // free space above the watermark
	diskLow                      // below MinFreeBytes: no new objects
	diskFull                     // below BadgerRoom: no Badger writes either
	diskOffline                  // opened below BadgerRoom: running without the store
)

// Space is the store's view of its filesystem's free space, for status
// pages.
type Space struct {
	FreeBytes    int64  // -1 when unknown
	MinFreeBytes int64  // the watermark (0: none)
	Admitting    bool   // new objects are stored
	Note         string // why not, for people ("" when admitting)
}

// spaceGuard watches the free space of the store's filesystem against the
// watermark. Without a watermark it never refuses anything.
type spaceGuard struct {
	min   int64
	free  func() (int64, error)
	log   *slog.Logger
	state atomic.Int32
	last  atomic.Int64 // free bytes at the last check, -1 unknown
}

func newSpaceGuard(dir string, opts Options, log *slog.Logger) *spaceGuard {
	g := &spaceGuard{min: opts.MinFreeBytes, free: opts.FreeBytes, log: log}
	if g.free == nil {
		g.free = func() (int64, error) { return freeBytes(dir) }
	}
	g.last.Store(-1)
	return g
}

// measure reads the free space and classifies it, without changing state.
func (g *spaceGuard) measure() (int64, diskState) {
	if g.min <= 0 {
		return -1, diskOK
	}
	free, err := g.free()
	if err != nil {
		// Cannot tell (an unsupported platform): do as before.
		return -1, diskOK
	}
	switch {
	case free < BadgerRoom:
		return free, diskFull
	case free < g.min:
		return free, diskLow
	case free < g.min+g.min/resumeMargin && diskState(g.state.Load()) != diskOK:
		// Hysteresis: an object aborted at the watermark frees its bytes
		// again; resuming at once would store, abort and warn in a loop.
		return free, diskLow
	}
	return free, diskOK
}

// check measures and records the state, logging each change: at WARN when
// the store stops storing, at INFO when it resumes.
func (g *spaceGuard) check() diskState {
	free, now := g.measure()
	g.last.Store(free)
	for {
		old := diskState(g.state.Load())
		if old == diskOffline || old == now {
			return old
		}
		if g.state.CompareAndSwap(int32(old), int32(now)) {
			g.logChange(old, now, free)
			return now
		}
	}
}

func (g *spaceGuard) logChange(old, now diskState, free int64) {
	switch {
	case now == diskOK:
		g.log.Info("free space is above the watermark again: storing new objects", "free_bytes", free, "min_free_bytes", g.min)
	case now == diskLow && old == diskOK:
		g.log.Warn("disk nearly full: not storing new objects, passing them through to visitors",
			"free_bytes", free, "min_free_bytes", g.min)
	case now == diskFull:
		g.log.Warn("disk full: not writing to the store at all, passing objects through to visitors",
			"free_bytes", free, "badger_room_bytes", BadgerRoom)
	}
}

// admit returns ErrDiskFull when no new object may be stored.
func (g *spaceGuard) admit() error {
	if g.check() != diskOK {
		return ErrDiskFull
	}
	return nil
}

// writable returns ErrDiskFull when Badger must not be written.
func (g *spaceGuard) writable() error {
	if g.check() >= diskFull {
		return ErrDiskFull
	}
	return nil
}

// roomToFlush reports whether Badger may be closed: closing writes the
// memtables still in their logs (metaDir/*.mem) into new tables, through
// memory mappings, so it needs about as much free space as the logs hold.
func (g *spaceGuard) roomToFlush(metaDir string) bool {
	if g.check() < diskFull {
		return true
	}
	free := g.last.Load()
	need, err := memtableBytes(metaDir)
	return err == nil && free >= 2*need+(1<<20)
}

// space reports the last check for status pages.
func (g *spaceGuard) space() Space {
	sp := Space{FreeBytes: g.last.Load(), MinFreeBytes: g.min, Admitting: true}
	switch diskState(g.state.Load()) {
	case diskLow:
		sp.Admitting, sp.Note = false, "disk nearly full (free space below cache.min_free_bytes): new objects are passed through, not stored"
	case diskFull:
		sp.Admitting, sp.Note = false, "disk full: new objects are passed through, not stored; the store is read only"
	case diskOffline:
		sp.Admitting, sp.Note = false, "started on a full disk: running without the cache (pass-through only); free some space and restart"
	}
	return sp
}
