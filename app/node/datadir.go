package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"
)

// dataFormat is the version of the data directory's layout (store, keys,
// state files) that this binary writes. Bump it with a step in
// formatUpgrades whenever the layout changes incompatibly.
const dataFormat = 1

// formatFile names the file in the data directory that holds its format.
const formatFile = "FORMAT"

// formatUpgrades[v] turns a data directory of format v into format v+1.
// Format 0 is a directory from before formats were recorded: its layout is
// format 1's, so there is nothing to move.
var formatUpgrades = map[int]func(dir string) error{
	0: func(string) error { return nil },
}

// checkDataFormat makes sure this binary can use the data directory: a new
// or older one is upgraded (and its format recorded); a newer one, written
// by a later release, is refused rather than misread or damaged.
func checkDataFormat(dir string) error {
	path := filepath.Join(dir, formatFile)
	have, err := readDataFormat(dir)
	if err != nil {
		return err
	}
	if have > dataFormat {
		return fmt.Errorf("node: data dir %s has format %d, written by a newer coral; this coral understands format %d at most: run the newer coral, or give this one another data_dir", dir, have, dataFormat)
	}
	for v := have; v < dataFormat; v++ {
		up, ok := formatUpgrades[v]
		if !ok {
			return fmt.Errorf("node: data dir %s: no upgrade from format %d", dir, v)
		}
		if err := up(dir); err != nil {
			return fmt.Errorf("node: data dir %s: upgrading from format %d: %w", dir, v, err)
		}
	}
	if have == dataFormat {
		return nil
	}
	// Synced before the rename (renameio): a power cut leaves no empty FORMAT.
	if err := renameio.WriteFile(path, []byte(strconv.Itoa(dataFormat)+"\n"), 0o600); err != nil {
		return fmt.Errorf("node: data dir: recording format: %w", err)
	}
	return nil
}

// readDataFormat returns the recorded format; 0 for a directory from before
// formats were recorded (or an empty one, which upgrades trivially).
func readDataFormat(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, formatFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("node: data dir: %w", err)
	}
	if strings.TrimSpace(string(b)) == "" {
		// Only an interrupted first recording leaves it empty (a later one
		// replaces the old file whole): not recorded yet, as if missing.
		return 0, nil
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v < 1 {
		return 0, fmt.Errorf("node: data dir %s: %s holds %q, not a format number: the directory is not Coral's, or damaged "+
			"(if it is Coral's and was written by this release, write %d into %s)", dir, formatFile, trunc(b), dataFormat, filepath.Join(dir, formatFile))
	}
	return v, nil
}

func trunc(b []byte) string {
	if len(b) > 20 {
		return string(b[:20]) + "…"
	}
	return string(b)
}
