package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A store whose Badger files are damaged (truncated, overwritten) does not
// open, and the error says which directory, that it is damaged, and what
// to do; a store merely in use by another process is not called damaged
// (moving it aside would throw away a working cache).
func TestDamagedMetaNamesTheFixAndInUseDoesNot(t *testing.T) {
	damage := map[string]func(path string) error{
		"empty":   func(p string) error { return os.Truncate(p, 0) },
		"garbage": func(p string) error { return os.WriteFile(p, []byte("\x00not badger\xff"), 0o600) },
		"half": func(p string) error {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		},
	}
	// *.sst: a damaged table was a panic on one of Badger's goroutines,
	// which killed the node at every start.
	for _, file := range []string{"MANIFEST", "KEYREGISTRY", "000001.vlog", "*.sst"} {
		for how, do := range damage {
			t.Run(file+"/"+how, func(t *testing.T) {
				dir := t.TempDir()
				s := openStore(t, dir, Options{})
				put(t, s, "http://o.example/a", body("a", 1, 50_000), Meta{})
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				matches, _ := filepath.Glob(filepath.Join(dir, "meta", file))
				if len(matches) != 1 {
					t.Fatalf("want one %s in the store, found %v", file, matches)
				}
				if err := do(matches[0]); err != nil {
					t.Fatal(err)
				}
				s, err := Open(dir, Options{Logger: quietLogger()})
				if err == nil { // badger recovered by itself: a clean recovery is as good
					if err := s.Close(); err != nil {
						t.Errorf("recovered store does not close: %v", err)
					}
					return
				}
				for _, want := range []string{dir, "damaged", "move " + dir + " aside"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
			})
		}
	}
	t.Run("in use", func(t *testing.T) {
		dir := t.TempDir()
		openStore(t, dir, Options{})
		_, err := Open(dir, Options{Logger: quietLogger()})
		if err == nil || strings.Contains(err.Error(), "damaged") {
			t.Errorf("second open of a store in use: %v; want an error that does not call it damaged", err)
		}
	})
}

// A table damaged while the store is parked (Badger closed when idle) is
// an error at the next request, which the store retries, never a panic of
// the running node.
func TestTableDamagedWhileParkedIsAnError(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	put(t, s, "http://o.example/a", body("a", 1, 50_000), Meta{})
	if !s.park(true) {
		t.Fatal("did not park")
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "meta", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table on disk after parking")
	}
	for _, f := range tables {
		if err := os.WriteFile(f, []byte("\x00not a table\xff"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Stat("http://o.example/a"); err == nil || !strings.Contains(err.Error(), "damaged table") {
		t.Fatalf("request after the damage: %v; want an error naming the damaged table", err)
	}
}
