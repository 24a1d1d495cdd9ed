package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// The cache size and location are live settings: valid ones are kept (and
// the location read back at start), invalid ones are refused naming the key.
func TestCacheSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SettingsFile)
	cfg := Default()
	cfg.DataDir = dir
	for _, tc := range []struct {
		patch, wantErr string
	}{
		{`{"cache":{"max_bytes":"1GiB"}}`, ""},
		{`{"cache":{"max_bytes":"0"}}`, ""},
		{`{"cache":{"max_bytes":"lots"}}`, "cache.max_bytes"},
		{`{"cache":{"max_bytes":"4MB"}}`, "cache.max_bytes"},
		{`{"cache":{"data_dir":"relative/dir"}}`, "cache.data_dir"},
		{`{"cache":{"data_dir":""}}`, "cache.data_dir"},
		{`{"cache":{"size":"1GiB"}}`, "cache.size"},
	} {
		l, err := OpenLive(cfg, path)
		if err != nil {
			t.Fatal(err)
		}
		before := l.Get()
		_, err = l.Update([]byte(tc.patch))
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.patch, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one naming %s", tc.patch, err, tc.wantErr)
		case tc.wantErr != "" && l.Get().Cache != before.Cache:
			t.Errorf("%s: refused but applied", tc.patch)
		}
	}
	if got, err := SavedDataDir(path); err != nil || got != "" {
		t.Fatalf("SavedDataDir = %q, %v before any was chosen", got, err)
	}
	l, _ := OpenLive(cfg, path)
	moved := filepath.Join(dir, "elsewhere")
	if _, err := l.Update([]byte(`{"cache":{"data_dir":"` + moved + `"}}`)); err != nil {
		t.Fatal(err)
	}
	if got, err := SavedDataDir(path); err != nil || got != moved {
		t.Fatalf("SavedDataDir = %q, %v, want %s", got, err, moved)
	}
	if got := cfg.RunPath("control.token"); got != filepath.Join(moved, "control.token") {
		t.Fatalf("RunPath = %s, want the token in the chosen data dir %s", got, moved)
	}
	if l2, err := OpenLive(cfg, path); err != nil || l2.Get().Cache.MaxBytes != 0 || l2.Get().Cache.DataDir != moved {
		t.Fatalf("reopened settings %+v, %v", l2.Get().Cache, err)
	}
}
