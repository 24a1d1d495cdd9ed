package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"
)

// The highest serial seen of every directory group is kept in
// <data_dir>/groups/directory.json, so that after a restart no member can
// roll a group's names back to an older manifest, validly signed as it is.
// Writes are atomic (renameio) and gathered: at most one per
// dirSaveDelay (a flood of announcements must not become a flood of disk
// writes; a crash loses at most that much), and one at Close.

const (
	dirSerialsFile = "directory.json"
	dirSaveDelay   = 10 * time.Second
)

// dirSaver gathers the writes of the serials file.
type dirSaver struct {
	mu      sync.Mutex // orders writes
	pending bool       // a write is scheduled
	closed  bool       // Close wrote the last one
}

// dirSerials is the serials file.
type dirSerials struct {
	Serials map[string]serialFloor `json:"serials"`
}

// parseDirSerials reads the serials file; an error says what is wrong.
func parseDirSerials(b []byte) (map[string]serialFloor, error) {
	var f dirSerials
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("group directory serials: %w", err)
	}
	if len(f.Serials) > maxDirFloors {
		return nil, fmt.Errorf("group directory serials: %d groups, at most %d", len(f.Serials), maxDirFloors)
	}
	return f.Serials, nil
}

func (n *Node) dirSerialsPath() string {
	return filepath.Join(n.cfg.Path(groupsDir), dirSerialsFile)
}

// loadDirectorySerials reads the serials of an earlier run. A damaged file
// is no reason not to start: it is logged and ignored.
func (n *Node) loadDirectorySerials() {
	b, err := os.ReadFile(n.dirSerialsPath())
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	floors, err := func() (map[string]serialFloor, error) {
		if err != nil {
			return nil, err
		}
		return parseDirSerials(b)
	}()
	if err != nil {
		n.log.Warn("group directory: serials of the last run not read; older manifests may be taken again", "err", err)
		return
	}
	n.groups.mu.Lock()
	defer n.groups.mu.Unlock()
	for id, f := range floors {
		n.groups.dir.remember(id, f.Serial, f.Seen)
	}
}

// saveDirectorySerialsSoon writes the serials within dirSaveDelay.
func (n *Node) saveDirectorySerialsSoon() {
	s := &n.groups.dirSave
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending || s.closed {
		return
	}
	s.pending = true
	time.AfterFunc(dirSaveDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.pending && !s.closed {
			if err := n.writeDirectorySerials(); err != nil {
				n.log.Warn("group directory: serials not saved", "err", err)
			}
		}
		s.pending = false
	})
}

// flushDirectorySerials writes a pending change now; none follows.
func (n *Node) flushDirectorySerials() error {
	s := &n.groups.dirSave
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if !s.pending {
		return nil
	}
	s.pending = false
	return n.writeDirectorySerials()
}

// writeDirectorySerials writes the file; dirSave.mu is held.
func (n *Node) writeDirectorySerials() error {
	n.groups.mu.Lock()
	b, err := json.Marshal(dirSerials{Serials: n.groups.dir.floors})
	n.groups.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(n.dirSerialsPath()), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(n.dirSerialsPath(), b, 0o600)
}
