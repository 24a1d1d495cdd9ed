package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/ristretto/v2/z"
)

// checkTables opens each table file the MANIFEST in dir lists the way
// Badger does, but on this goroutine: Badger opens them on goroutines of
// its own, where a damaged (truncated, overwritten) table is a panic that
// no caller can recover, so a damaged cache would crash the node at every
// start. A damaged table is an error naming the file; anything Badger
// reports as an error itself (a missing table, a bad MANIFEST) is left to
// badger.Open.
func checkTables(dir string, opts badger.Options) error {
	f, err := os.Open(filepath.Join(dir, badger.ManifestFilename))
	if err != nil {
		return nil // a new store, or one badger.Open will explain
	}
	m, _, err := badger.ReplayManifestFile(f, opts.ExternalMagicVersion, opts)
	f.Close()
	if err != nil {
		return nil
	}
	for id, tm := range m.Tables {
		name := table.NewFilename(id, dir)
		if err := checkTable(name, table.Options{
			ReadOnly: true, BlockSize: opts.BlockSize, Compression: tm.Compression,
			BloomFalsePositive: opts.BloomFalsePositive,
		}); err != nil {
			return fmt.Errorf("table %s: %w", name, err)
		}
	}
	return nil
}

// errTableDamaged is a table file whose index cannot be read (Badger's
// panic says no more than that, in a page of hex).
var errTableDamaged = errors.New("damaged table file: its index does not read")

func checkTable(name string, topt table.Options) (err error) {
	mf, err := z.OpenMmapFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil // missing or unreadable: badger.Open says so
	}
	defer func() {
		if r := recover(); r != nil {
			_ = mf.Close(-1)
			err = errTableDamaged
		}
	}()
	t, err := table.OpenTable(mf, topt)
	if err != nil {
		_ = mf.Close(-1)
		return nil // an error, not a crash: badger.Open decides
	}
	return t.MmapFile.Close(-1)
}
