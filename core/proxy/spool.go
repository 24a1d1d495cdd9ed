package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// errSpoolGone: the spool finished and was cleaned up before a reader could
// attach; the caller looks in the store instead.
var errSpoolGone = errors.New("proxy: in-flight body no longer available")

// errSlowReaders: a piped body's reader held the window back, consuming
// nothing for the stall timeout. That reader is cut off with it, so the
// others go on; once no reader is left, the download stops with it rather
// than hold an origin slot forever.
var errSlowReaders = errors.New("proxy: reader stopped consuming the body")

// errNoReaders: a piped (not retained) body has nobody left to deliver to,
// so the download can stop.
var errNoReaders = errors.New("proxy: no readers left for the body")

// spool carries one in-flight body from the fetch that downloads it to every
// visitor (and peer) reading it, as the bytes arrive: read-while-write.
//
// While the object may still be stored, the spool retains every byte, so a
// reader that attaches late starts from byte 0: the first memLimit bytes in
// memory, the rest in a temporary file. Once the object cannot be stored
// (too large, not storable), retaining it would only cost disk, so the spool
// switches to a pipe: it keeps a bounded window past what the slowest
// attached reader has consumed, the download waits for readers (back
// pressure), and no new reader may attach. A reader that holds the window
// back (the lowest offset) without consuming anything for the stall
// timeout is cut off (errSlowReaders), so one stalled visitor or peer
// never ends the download for the others.
type spool struct {
	dir      string
	memLimit int
	window   int
	stall    time.Duration // longest a piped write waits for readers
	// room, when set, says whether more may be put on disk; the spool
	// switches to a pipe rather than spill (or keep spilling) without it.
	room func() error
	// onDiskTrouble, when set, hears why the spool switched to a pipe
	// because of the disk (called with the spool locked).
	onDiskTrouble func(error)

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the state changes

	retain      bool
	mem         []byte   // retained bytes while file == nil
	file        *os.File // retained bytes once spilled
	retainedEnd int64    // retained bytes are [0, retainedEnd)
	win         []byte   // piped bytes [winBase, winBase+len(win))
	winBase     int64
	size        int64 // total bytes written

	done    bool
	err     error // terminal error; nil means the body completed
	refs    int   // writer + attached readers
	readers map[*spoolReader]struct{}
	cleaned bool
}

func newSpool(dir string, memLimit, window int, stall time.Duration) *spool {
	return &spool{
		dir: dir, memLimit: memLimit, window: window, stall: stall,
		changed: make(chan struct{}), retain: true, refs: 1,
		readers: map[*spoolReader]struct{}{},
	}
}

func (s *spool) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Write appends p. In pipe mode it blocks while the window is full, until
// readers catch up or ctx ends.
func (s *spool) Write(ctx context.Context, p []byte) error {
	if len(p) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retain {
		err := s.retainLocked(p)
		if err == nil {
			return nil
		}
		// The disk cannot take the body: the readers attached so far
		// still get all of it, through the pipe.
		s.stopRetainingLocked()
		if s.onDiskTrouble != nil {
			s.onDiskTrouble(err)
		}
	}
	if err := s.waitRoomLocked(ctx, len(p)); err != nil {
		return err
	}
	s.win = append(s.win, p...)
	s.size += int64(len(p))
	s.broadcastLocked()
	return nil
}

// waitRoomLocked waits until the window has room for n more bytes (or is
// empty). The stall timer runs while the lowest reader consumes nothing;
// when it fires, the readers at the lowest offset are cut off and the wait
// goes on for the others. It fails once no reader is left: errNoReaders
// when the last one left, errSlowReaders when it was cut off.
func (s *spool) waitRoomLocked(ctx context.Context, n int) error {
	var stuck *time.Timer
	var low int64
	for {
		if len(s.readers) == 0 {
			return errNoReaders
		}
		s.trimLocked()
		if len(s.win) == 0 || len(s.win)+n <= s.window {
			return nil
		}
		switch cur := s.lowestLocked(); {
		case stuck == nil:
			stuck = time.NewTimer(s.stall)
			defer stuck.Stop()
			low = cur
		case cur != low: // the bottom moved: the new lowest readers get their own time
			stuck.Reset(s.stall)
			low = cur
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			return ctx.Err()
		case <-stuck.C:
			s.mu.Lock()
			s.cutLowestLocked()
			if len(s.readers) == 0 {
				return errSlowReaders
			}
			stuck.Reset(s.stall)
			low = s.lowestLocked()
		}
	}
}

// lowestLocked is the lowest offset of the attached readers (the spool's
// size when there is none).
func (s *spool) lowestLocked() int64 {
	low := s.size
	for r := range s.readers {
		low = min(low, r.off)
	}
	return low
}

// cutLowestLocked cuts off the readers at the lowest offset: they are
// detached from the window, and their next Read fails with errSlowReaders.
func (s *spool) cutLowestLocked() {
	low := s.lowestLocked()
	for r := range s.readers {
		if r.off == low {
			r.cut = true
			delete(s.readers, r)
		}
	}
	s.broadcastLocked()
}

// retainLocked appends p to the retained bytes, in memory or on disk.
func (s *spool) retainLocked(p []byte) error {
	if s.file == nil && len(s.mem)+len(p) > s.memLimit {
		if err := s.spillLocked(); err != nil {
			return err
		}
	}
	if s.file != nil {
		if s.room != nil {
			if err := s.room(); err != nil {
				return fmt.Errorf("proxy: spool: %w", err)
			}
		}
		// Readers only read below retainedEnd, so writing past it while
		// they read is safe.
		if _, err := s.file.WriteAt(p, s.retainedEnd); err != nil {
			return fmt.Errorf("proxy: spool write: %w", err)
		}
	} else {
		s.mem = append(s.mem, p...)
	}
	s.retainedEnd += int64(len(p))
	s.size += int64(len(p))
	s.broadcastLocked()
	return nil
}

// spillLocked moves the retained bytes from memory to a temporary file.
func (s *spool) spillLocked() error {
	if s.room != nil {
		if err := s.room(); err != nil {
			return fmt.Errorf("proxy: spool: %w", err)
		}
	}
	f, err := os.CreateTemp(s.dir, "coral-spool-*")
	if err != nil {
		return fmt.Errorf("proxy: spool file: %w", err)
	}
	// The name is not needed again: unlinking now means a crash leaves
	// nothing behind.
	_ = os.Remove(f.Name())
	if _, err := f.WriteAt(s.mem, 0); err != nil {
		_ = f.Close()
		return fmt.Errorf("proxy: spool write: %w", err)
	}
	s.file = f
	s.mem = nil
	return nil
}

// trimLocked drops window bytes every attached reader has consumed.
func (s *spool) trimLocked() {
	low := s.lowestLocked()
	if drop := low - s.winBase; drop > 0 {
		n := copy(s.win, s.win[drop:])
		s.win = s.win[:n]
		s.winBase = low
	}
}

// StopRetaining switches to pipe mode (see the type comment).
func (s *spool) StopRetaining() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopRetainingLocked()
}

func (s *spool) stopRetainingLocked() {
	if !s.retain {
		return
	}
	s.retain = false
	s.winBase = s.size
	s.broadcastLocked()
}

// Finish ends the body: err == nil means complete, anything else means the
// readers see that error once they have consumed what arrived. It drops the
// writer's reference.
func (s *spool) Finish(err error) {
	s.mu.Lock()
	first := !s.done
	if first {
		s.done = true
		s.err = err
		s.broadcastLocked()
	}
	s.mu.Unlock()
	if first {
		s.release()
	}
}

func (s *spool) release() {
	s.mu.Lock()
	s.refs--
	var f *os.File
	if s.refs == 0 && !s.cleaned {
		s.cleaned = true
		f, s.file, s.mem, s.win = s.file, nil, nil, nil
	}
	s.mu.Unlock()
	if f != nil {
		_ = f.Close()
	}
}

// NewReader attaches a reader at byte 0. ctx bounds its waits for data.
func (s *spool) NewReader(ctx context.Context) (*spoolReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cleaned || !s.retain {
		return nil, errSpoolGone
	}
	r := &spoolReader{s: s, ctx: ctx}
	s.readers[r] = struct{}{}
	s.refs++
	return r, nil
}

// spoolReader reads a spool from the start; it is not safe for concurrent use.
type spoolReader struct {
	s      *spool
	ctx    context.Context
	off    int64
	closed bool
	cut    bool // cut off for holding a piped window back (errSlowReaders)
}

func (r *spoolReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s := r.s
	s.mu.Lock()
	for {
		if r.closed {
			s.mu.Unlock()
			return 0, errors.New("proxy: read from closed spool reader")
		}
		if r.cut {
			s.mu.Unlock()
			return 0, errSlowReaders
		}
		if r.off < s.retainedEnd {
			n := int(min(int64(len(p)), s.retainedEnd-r.off))
			if s.file == nil {
				copy(p[:n], s.mem[r.off:])
				r.off += int64(n)
				s.mu.Unlock()
				return n, nil
			}
			f, off := s.file, r.off
			s.mu.Unlock()
			// The file is only closed once every reader has released it.
			m, err := f.ReadAt(p[:n], off)
			s.mu.Lock()
			r.off += int64(m)
			r.notifyWriterLocked()
			s.mu.Unlock()
			if m > 0 {
				return m, nil
			}
			return 0, fmt.Errorf("proxy: spool read: %w", err)
		}
		if r.off < s.size {
			n := copy(p, s.win[r.off-s.winBase:])
			r.off += int64(n)
			r.notifyWriterLocked()
			s.mu.Unlock()
			return n, nil
		}
		if s.done {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				return 0, io.EOF
			}
			return 0, err
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		}
		s.mu.Lock()
	}
}

// notifyWriterLocked wakes a writer that may be waiting for window space.
func (r *spoolReader) notifyWriterLocked() {
	if !r.s.retain {
		r.s.broadcastLocked()
	}
}

// Close detaches the reader; it never fails and may be called twice.
func (r *spoolReader) Close() error {
	s := r.s
	s.mu.Lock()
	if r.closed {
		s.mu.Unlock()
		return nil
	}
	r.closed = true
	delete(s.readers, r)
	s.broadcastLocked()
	s.mu.Unlock()
	s.release()
	return nil
}
