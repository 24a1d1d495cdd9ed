package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"github.com/coralcdn/coral/core/object"
)

// Integrity of file bodies. Hashing a body on every read would cost a cache
// hit more than sending it, so a file body is hashed whole once per process:
// as it is written, or by its first reader (a store opened after a crash or
// a copy of a directory starts with nothing verified), and verified bodies
// are then read without hashing, which lets a whole body or a range go out
// with sendfile. A background scrub rehashes file bodies, the ones never
// verified first, and drops any that no longer match. So a body damaged
// before it was verified in this process is never served; one damaged on
// disk afterwards is dropped by the next scrub pass (and a body file that
// lost bytes is caught by its size at every read). Inline bodies are small
// and hashed on every read.

const (
	// scrubEvery is how often the scrub runs; scrubBytes bounds the bytes
	// it hashes per run (about 6 MiB/s, a small share of one disk).
	scrubEvery = 10 * time.Second
	scrubBytes = 64 << 20
)

var errBadSection = errors.New("store: section outside the body")

// markVerified records that version ver of key was hashed whole and found
// intact.
func (s *Store) markVerified(key string, ver uint64) {
	s.mu.Lock()
	if e := s.index[key]; e != nil && e.body.ver == ver {
		e.verified = true
		e.checked = time.Now().UnixNano()
	}
	s.mu.Unlock()
}

// Section returns a reader of the n bytes of the body at off, for sending
// all or part of it. Nothing may have been read from the body before, and
// afterwards only Close. A body not verified yet is hashed whole first; a
// damaged one gives an error and is dropped. A verified file body's reader
// is the file itself, limited to the section, so that net/http sends it
// with sendfile.
func (b *Body) Section(off, n int64) (io.Reader, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, errBodyClosed
	case b.got != 0 || b.err != nil:
		return nil, errors.New("store: section of a body already read")
	case off < 0 || n < 0 || off+n > b.size:
		return nil, fmt.Errorf("%w: %d bytes at %d of %d", errBadSection, n, off, b.size)
	}
	if b.f == nil {
		data := b.data
		if sumBody(data) != b.want {
			b.err = b.corrupt(fmt.Errorf("%w: body hash mismatch", errCorrupt))
			return nil, b.err
		}
		return bytes.NewReader(data[off : off+n]), nil
	}
	if !b.verified {
		if err := b.hashFileLocked(); err != nil {
			b.err = err
			return nil, err
		}
	}
	if fi, err := b.f.Stat(); err != nil || fi.Size() != b.size {
		b.err = b.corrupt(fmt.Errorf("%w: body file has the wrong size", errCorrupt))
		return nil, b.err
	}
	if _, err := b.f.Seek(off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("store: read %q: %w", b.key, err)
	}
	return &io.LimitedReader{R: b.f, N: n}, nil
}

// hashFileLocked hashes the whole file body and rewinds it.
func (b *Body) hashFileLocked() error {
	h := object.NewBodyHash()
	got, err := io.Copy(h, b.f)
	if err != nil {
		return fmt.Errorf("store: read %q: %w", b.key, err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if got != b.size || sum != b.want {
		return b.corrupt(fmt.Errorf("%w: body file does not match its hash", errCorrupt))
	}
	b.verified = true
	b.s.markVerified(b.key, b.ver)
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("store: read %q: %w", b.key, err)
	}
	return nil
}

// Scrub hashes file bodies, least recently checked first (never-verified
// ones before all others), until about budget bytes were read, and drops
// those that do not match. It returns how many it checked and dropped. It
// does not count as an access for eviction. The background loop calls it
// every scrubEvery; tests call it directly. A parked store stays parked:
// the scrub checks nothing until traffic reopens it.
func (s *Store) Scrub(budget int64) (checked, dropped int) {
	if parked, _, _ := s.parkState(); parked {
		return 0, 0
	}
	for _, e := range s.scrubCandidates(budget) {
		select {
		case <-s.stop:
			return checked, dropped
		default:
		}
		ok, err := s.scrubOne(e.key, e.ver)
		if errors.Is(err, errParked) {
			return checked, dropped
		}
		if err != nil {
			s.log.Debug("scrub read failed", "key", e.key, "err", err)
			continue
		}
		checked++
		if !ok {
			dropped++
		}
	}
	return checked, dropped
}

type scrubItem struct {
	key string
	ver uint64
}

// scrubOne hashes body version ver of key if it is still current; false
// when it was damaged (and is dropped).
func (s *Store) scrubOne(key string, ver uint64) (bool, error) {
	s.mu.Lock()
	if e := s.index[key]; e == nil || e.body.ver != ver {
		s.mu.Unlock()
		return true, nil
	}
	s.refs[ver]++ // keeps the file while it is read
	s.mu.Unlock()
	defer s.unref(ver)
	db, ok := s.enterIfOpen() // a parked store stays parked; the scrub resumes with traffic
	if !ok {
		return true, errParked
	}
	_, rec, err := s.readMetaWith(db.View, key)
	s.leave()
	if err != nil || rec.Version != ver {
		return true, err
	}
	f, err := os.Open(s.bodyPath(ver))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			s.dropBroken(key, ver, fmt.Errorf("%w: body file missing", errCorrupt))
			return false, nil
		}
		return true, err
	}
	defer f.Close()
	h := object.NewBodyHash()
	got, err := io.Copy(h, f)
	if err != nil {
		return true, err
	}
	if got != rec.Size || !bytes.Equal(h.Sum(nil), rec.SHA256) {
		s.dropBroken(key, ver, fmt.Errorf("store: scrub %q: %w: body file does not match its hash", key, errCorrupt))
		return false, nil
	}
	s.markVerified(key, ver)
	return true, nil
}

// scrubCandidates picks the file bodies checked longest ago, about budget
// bytes of them.
func (s *Store) scrubCandidates(budget int64) []scrubItem {
	type cand struct {
		scrubItem
		checked, size int64
	}
	s.mu.Lock()
	all := make([]cand, 0, len(s.index))
	for _, e := range s.index {
		if !e.body.inline && e.body.size > 0 {
			all = append(all, cand{scrubItem{e.key, e.body.ver}, e.checked, e.body.size})
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].checked < all[j].checked })
	var picked []scrubItem
	for _, c := range all {
		if budget <= 0 {
			break
		}
		picked = append(picked, c.scrubItem)
		budget -= c.size
	}
	return picked
}

// Generation counts an access to key, for eviction, and returns its
// generation: a number that changes whenever the object's meta or body
// does (and differs between any two objects ever stored under key). A copy
// of the object kept elsewhere is current while the generation is the one
// read before the copy was taken. ok is false when key is not stored.
func (s *Store) Generation(key string) (gen uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.index[key]
	if e == nil {
		return 0, false
	}
	s.touchLocked(e)
	return e.gen, true
}

// OpenVerified opens the file body of key for reading without its meta,
// for a caller that kept the meta of generation gen (the proxy's hot
// cache): ok is false unless key is still at generation gen and its body
// is a file this process has verified. It counts as an access. The body
// reads without hashing, like any verified one; the caller closes it.
func (s *Store) OpenVerified(key string, gen uint64) (_ object.Body, ok bool) {
	s.mu.Lock()
	e := s.index[key]
	if e == nil || e.gen != gen || e.body.inline || e.body.size == 0 || !e.verified {
		s.mu.Unlock()
		return nil, false
	}
	s.touchLocked(e)
	b := &Body{s: s, key: key, ver: e.body.ver, size: e.body.size, verified: true, held: true}
	s.refs[b.ver]++ // keeps the file until Close
	s.mu.Unlock()
	f, err := os.Open(s.bodyPath(b.ver))
	if err != nil {
		b.Close()
		return nil, false
	}
	b.f = f
	return b, true
}

// InFile reports whether the body is read from a file (not kept inline).
func (b *Body) InFile() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.f != nil
}

// sumBody hashes an inline body with the counted body hash.
func sumBody(data []byte) (sum [32]byte) {
	h := object.NewBodyHash()
	h.Write(data)
	h.Sum(sum[:0])
	return sum
}
