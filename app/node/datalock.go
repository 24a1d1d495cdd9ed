package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the data directory's lock: one node at a time uses a data
// directory. Badger's own lock is not enough, as the store closes Badger
// while idle (core/store's parking), and the identity key, network secret,
// settings and usage files have none: a second node started on the same
// directory (a copied config with new ports) would run with the same
// identity and write over the first's state.
const lockFile = "coral.lock"

// lockDataDir takes the data directory's lock (flock, released by the
// kernel when the process ends, so a crash leaves no stale lock) and
// records this process's id in it for the message another node gives.
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("node: data dir %s is in use by another coral node%s: each node needs its own data_dir", dir, holder(path))
		}
		return nil, fmt.Errorf("node: data dir: lock %s: %w", path, err)
	}
	if f.Truncate(0) == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// holder names the process that holds the lock, as far as its file says.
func holder(path string) string {
	b, _ := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); pid != "" {
		return " (process " + pid + ")"
	}
	return ""
}

// unlockDataDir lets the next node use the directory; nil is no lock.
func unlockDataDir(f *os.File) {
	if f != nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}
}
