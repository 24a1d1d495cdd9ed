//go:build unix

package store

import (
	"path/filepath"
	"syscall"
)

// freeBytes is the space on dir's filesystem available to this user.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil //nolint:unconvert // field types differ across platforms
}

// memtableBytes is the disk space Badger's memtable logs in metaDir really
// use: they are sparse files, mapped at twice the memtable size.
func memtableBytes(metaDir string) (int64, error) {
	logs, err := filepath.Glob(filepath.Join(metaDir, "*.mem"))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range logs {
		var st syscall.Stat_t
		if err := syscall.Stat(l, &st); err != nil {
			return 0, err
		}
		total += int64(st.Blocks) * 512 //nolint:unconvert // field types differ across platforms
	}
	return total, nil
}
