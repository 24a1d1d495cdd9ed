package store

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// fakeDisk is a planted free-space reading.
type fakeDisk struct{ free atomic.Int64 }

func newFakeDisk(free int64) *fakeDisk {
	d := &fakeDisk{}
	d.free.Store(free)
	return d
}

func (d *fakeDisk) FreeBytes() (int64, error) { return d.free.Load(), nil }

const testMinFree = 256 << 20

func TestAdmissionFollowsFreeSpace(t *testing.T) {
	cases := []struct {
		name      string
		free      int64
		admitting bool
		writable  bool // Badger may still be written (deletes, metas)
	}{
		{"plenty", 10 << 30, true, true},
		{"just above the watermark", testMinFree, true, true},
		{"below the watermark", testMinFree - 1, false, true},
		{"below Badger's room", BadgerRoom - 1, false, false},
		{"nothing left", 0, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disk := newFakeDisk(10 << 30)
			s := openStore(t, t.TempDir(), Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes})
			old := body("old", 0, 3*unit)
			put(t, s, "old", old, Meta{Status: 200})

			disk.free.Store(c.free)
			data := body("new", 0, 3*unit)
			w := s.Create("new", 0)
			_, werr := w.Write(data)
			_, cerr := w.Commit(Meta{Status: 200, Size: int64(len(data))})
			if c.admitting {
				if werr != nil || cerr != nil {
					t.Fatalf("write %v, commit %v; want the object stored", werr, cerr)
				}
				mustGet(t, s, "new", data)
			} else {
				if !errors.Is(werr, ErrDiskFull) || !errors.Is(cerr, ErrDiskFull) {
					t.Fatalf("write %v, commit %v; want ErrDiskFull", werr, cerr)
				}
				mustMissing(t, s, "new")
			}
			sp := s.Space()
			if sp.Admitting != c.admitting || sp.FreeBytes != c.free || (sp.Note == "") != c.admitting {
				t.Fatalf("Space() = %+v at %d bytes free", sp, c.free)
			}
			if err := s.Delete("old"); (err == nil) != c.writable {
				t.Fatalf("Delete with %d bytes free: %v", c.free, err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if !c.writable {
				// Badger was left open rather than flushed onto a full
				// disk; only a new process can open it (test/disk does).
				return
			}
			disk.free.Store(10 << 30)
			s2 := openStore(t, s.dir, Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes})
			if c.writable {
				mustMissing(t, s2, "old")
			} else {
				mustGet(t, s2, "old", old)
			}
			assertNoOrphans(t, s2)
		})
	}
}

// A body that is being written when the disk crosses the watermark stops
// within checkEvery bytes, and its file is removed.
func TestWriterStopsWhenDiskFillsMidBody(t *testing.T) {
	disk := newFakeDisk(10 << 30)
	s := openStore(t, t.TempDir(), Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes})
	w := s.Create("big", 0)
	chunk := body("big", 0, 32<<10)
	var written int64
	var err error
	for range 200 {
		if written == 2*checkEvery {
			disk.free.Store(testMinFree - 1)
		}
		if _, err = w.Write(chunk); err != nil {
			break
		}
		written += int64(len(chunk))
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d bytes: err = %v, want ErrDiskFull", written, err)
	}
	if written > 3*checkEvery {
		t.Fatalf("wrote %d bytes past the watermark, want at most %d", written-2*checkEvery, checkEvery)
	}
	w.Abort()
	mustMissing(t, s, "big")
	assertNoOrphans(t, s)
}

// A store opened on a full disk runs without touching what is on disk:
// nothing is served or stored, and once there is room again a restart
// finds every object.
func TestOpenOnFullDiskRunsWithoutTheStore(t *testing.T) {
	dir := t.TempDir()
	disk := newFakeDisk(10 << 30)
	s := openStore(t, dir, Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes})
	data := body("kept", 0, 3*unit)
	put(t, s, "kept", data, Meta{Status: 200})
	small := body("small", 0, 100)
	put(t, s, "small", small, Meta{Status: 200})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	disk.free.Store(4096)
	full := openStore(t, dir, Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes})
	if sp := full.Space(); sp.Admitting || sp.Note == "" {
		t.Fatalf("Space() = %+v on a full disk", sp)
	}
	mustMissing(t, full, "kept")
	w := full.Create("new", 0)
	if _, err := w.Write(data); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Write on a full disk: %v, want ErrDiskFull", err)
	}
	w.Abort()
	// Space coming back does not make the in-memory stand-in admit:
	// objects stored there would be lost at restart.
	disk.free.Store(10 << 30)
	if err := full.Admit(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Admit on a store opened offline: %v", err)
	}
	if err := full.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, cleanMarker)); err != nil {
		t.Fatalf("the clean marker of the last real close is gone: %v", err)
	}

	again := openStore(t, dir, Options{MinFreeBytes: testMinFree, FreeBytes: disk.FreeBytes})
	mustGet(t, again, "kept", data)
	mustGet(t, again, "small", small)
	assertNoOrphans(t, again)
}
