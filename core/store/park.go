package store

// Parking: an idle store closes its Badger database and reopens it on the
// next use. Badger runs two compactor goroutines on a hard-coded 50 ms
// ticker whether or not there is anything to compact; on an idle node those
// 40 wakeups a second cost more CPU than everything else it does (issue
// 17). Closing flushes the memtables, so nothing is lost and a reopen
// replays little. The in-memory index stays, so Usage, Space and eviction
// decisions never need the database.
//
// Every database access passes the gate: enter counts it as active (and
// reopens a parked database), leave uncounts it. Parking takes the gate
// exclusively and only with nothing active and no use for parkAfter, so no
// operation ever sees a closed database. Background work does not keep the
// store awake: the scrub and value-log GC enter only an open database
// (enterIfOpen) and do not count as use; the access-time flush reopens only
// when it has times to save.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// errParked stops the scrub when the database is parked.
var errParked = errors.New("store: parked")

// defaultParkAfter is how long the store stays open without use.
const defaultParkAfter = 2 * time.Minute

// enter opens the gate for one database access, reopening a parked
// database, and returns the database to use until leave.
func (s *Store) enter() (*badger.DB, error) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.closing {
		return nil, errClosed
	}
	if s.db == nil {
		if err := s.reopenLocked(); err != nil {
			return nil, err
		}
	}
	s.active++
	s.lastUse = s.now()
	return s.db, nil
}

// enterIfOpen is enter for background work that must not wake a parked
// database nor count as use; ok is false when the database is parked or
// the store closed.
func (s *Store) enterIfOpen() (db *badger.DB, ok bool) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.closing || s.db == nil {
		return nil, false
	}
	s.active++
	return s.db, true
}

func (s *Store) leave() {
	s.gmu.Lock()
	s.active--
	if s.active == 0 && s.closing {
		s.gcond.Broadcast()
	}
	s.gmu.Unlock()
}

// view and update run Badger transactions inside the gate.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	db, err := s.enter()
	if err != nil {
		return err
	}
	defer s.leave()
	return db.View(fn)
}

func (s *Store) update(fn func(txn *badger.Txn) error) error {
	if err := s.space.writable(); err != nil {
		return err
	}
	db, err := s.enter()
	if err != nil {
		return err
	}
	defer s.leave()
	return db.Update(fn)
}

// reopenLocked opens the parked database again with the options it was
// opened with. A failure goes to the operation that needed the database
// (and the log); the next operation tries again.
func (s *Store) reopenLocked() error {
	if err := s.space.writable(); err != nil {
		// Opening creates log files through memory mappings, which on a
		// full disk crashes the process.
		return fmt.Errorf("store: cannot reopen the cache database in %s: %w", s.dir, err)
	}
	start := time.Now()
	var db *badger.DB
	fi, err := os.Stat(s.metaDir())
	switch {
	case err != nil:
		// Badger would create an empty database where the store's was,
		// and the index would name objects it no longer has.
	case !fi.IsDir():
		err = fmt.Errorf("%s is not a directory", s.metaDir())
	default:
		bopts := badgerOptions(s.metaDir(), s.log)
		// A table damaged while parked would panic on Badger's goroutines.
		if err = checkTables(bopts.Dir, bopts); err == nil {
			db, err = badger.Open(bopts)
		}
	}
	if err != nil {
		err = fmt.Errorf("store: cannot reopen the cache database in %s: %w", s.dir, err)
		if !s.reopenFailing {
			s.log.Warn("reopening the parked cache database failed; retrying at the next request", "err", err)
		} else {
			s.log.Debug("reopening the parked cache database failed again", "err", err)
		}
		s.reopenFailing = true
		return err
	}
	if s.reopenFailing {
		s.log.Info("cache database reopened after failures")
	}
	s.reopenFailing = false
	s.db = db
	s.reopens++
	s.log.Debug("cache database reopened", "took", time.Since(start))
	s.armParkLocked(s.parkAfter)
	return nil
}

func (s *Store) metaDir() string { return filepath.Join(s.dir, "meta") }

// armParkLocked makes parkWhenIdle run after d. One timer, re-armed when it
// fires, so traffic costs no timer work per operation.
func (s *Store) armParkLocked(d time.Duration) {
	if s.offline || s.closing {
		return
	}
	if s.parkTimer == nil {
		s.parkTimer = time.AfterFunc(d, s.parkWhenIdle)
		return
	}
	s.parkTimer.Reset(d)
}

func (s *Store) parkWhenIdle() { s.park(false) }

// park closes the database if it is open and, unless force, has not been
// used for parkAfter; otherwise it re-arms the timer for when it may be.
// Pending access times are saved first. It reports whether it parked.
func (s *Store) park(force bool) bool {
	s.wmu.Lock() // the order every writer takes: wmu, then the gate
	defer s.wmu.Unlock()
	s.gmu.Lock()
	defer s.gmu.Unlock()
	if s.db == nil || s.closing || s.offline {
		return false
	}
	if s.active > 0 {
		s.armParkLocked(s.parkAfter)
		return false
	}
	if idle := s.now().Sub(s.lastUse); !force && idle < s.parkAfter {
		s.armParkLocked(s.parkAfter - idle)
		return false
	}
	if s.space.check() != diskOK {
		// Closing writes the memtables out, and a parked store cannot
		// reopen (so serves nothing) below Badger's room: a nearly full
		// disk keeps the database open.
		s.armParkLocked(s.parkAfter)
		return false
	}
	if s.space.writable() == nil {
		s.writeAccess(s.db.Update)
	}
	err := s.db.Close()
	s.db = nil
	s.parks++
	if err != nil {
		s.log.Warn("closing the idle cache database failed; it is reopened at the next request", "err", err)
		return true
	}
	s.log.Debug("cache database parked while idle", "idle_after", s.parkAfter)
	return true
}

// setParkAfter changes how long the store stays open without use (tests).
func (s *Store) setParkAfter(d time.Duration) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	s.parkAfter = d
	if s.db != nil {
		s.armParkLocked(d)
	}
}

// parkState reports whether the database is parked and how often it was
// parked and reopened.
func (s *Store) parkState() (parked bool, parks, reopens int) {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	return s.db == nil, s.parks, s.reopens
}
