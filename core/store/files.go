package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// bodyPath is where the file body of version ver lives. The low byte picks
// one of 256 directories so none grows huge.
func (s *Store) bodyPath(ver uint64) string {
	return filepath.Join(s.bodies, fmt.Sprintf("%02x", ver&0xff), fmt.Sprintf("%016x", ver))
}

// bodyFile is one file found under the bodies directory; ok is false for
// names this package never writes.
type bodyFile struct {
	path string
	ver  uint64
	ok   bool
}

// listBodyFiles lists every file under the bodies directory.
func (s *Store) listBodyFiles() ([]bodyFile, error) {
	var files []bodyFile
	dirs, err := os.ReadDir(s.bodies)
	if err != nil {
		return nil, fmt.Errorf("store: list bodies: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir() {
			files = append(files, bodyFile{path: filepath.Join(s.bodies, d.Name())})
			continue
		}
		sub := filepath.Join(s.bodies, d.Name())
		names, err := os.ReadDir(sub)
		if err != nil {
			return nil, fmt.Errorf("store: list bodies: %w", err)
		}
		for _, n := range names {
			f := bodyFile{path: filepath.Join(sub, n.Name())}
			if ver, err := strconv.ParseUint(n.Name(), 16, 64); err == nil && !n.IsDir() &&
				len(n.Name()) == 16 && fmt.Sprintf("%02x", ver&0xff) == d.Name() {
				f.ver, f.ok = ver, true
			}
			files = append(files, f)
		}
	}
	return files, nil
}

// fileSize is the size of the file at path, or -1 if it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}
