package node

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The data directory carries a format version: a new or older directory is
// upgraded and recorded, a newer one (an older binary meeting a newer
// release's data) and a damaged record are refused with a clear message.
func TestDataDirFormat(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(dir string) // before New
		wantErr []string         // nil: New succeeds
	}{
		{"fresh", func(string) {}, nil},
		{"from before formats", func(dir string) {
			os.WriteFile(filepath.Join(dir, "control.token"), []byte("0123456789abcdef0123"), 0o600)
		}, nil},
		{"current", func(dir string) { os.WriteFile(filepath.Join(dir, formatFile), []byte("1\n"), 0o600) }, nil},
		{"newer", func(dir string) {
			os.WriteFile(filepath.Join(dir, formatFile), []byte(strconv.Itoa(dataFormat+1)), 0o600)
		}, []string{"format " + strconv.Itoa(dataFormat+1), "newer coral", "another data_dir"}},
		{"garbage", func(dir string) { os.WriteFile(filepath.Join(dir, formatFile), []byte("\x00\xffbadger"), 0o600) }, []string{"not a format number", "write " + strconv.Itoa(dataFormat) + " into"}},
		{"zero", func(dir string) { os.WriteFile(filepath.Join(dir, formatFile), []byte("0"), 0o600) }, []string{"not a format number"}},
		// A crash (power cut) as the first start records the format: the
		// same as not recorded yet, never a node that no longer starts.
		{"empty after a crash", func(dir string) { os.WriteFile(filepath.Join(dir, formatFile), nil, 0o600) }, nil},
		{"blank after a crash", func(dir string) { os.WriteFile(filepath.Join(dir, formatFile), []byte("\n"), 0o600) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.prepare(cfg.DataDir)
			n, err := New(cfg, Options{Version: "test", Logger: quiet})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				n.Close()
				b, err := os.ReadFile(filepath.Join(cfg.DataDir, formatFile))
				if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(dataFormat) {
					t.Errorf("recorded format %q %v, want %d", b, err, dataFormat)
				}
				return
			}
			if err == nil {
				n.Close()
				t.Fatal("node started")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, serr := os.Stat(filepath.Join(cfg.DataDir, "store")); serr == nil {
				t.Error("the store was opened in a refused data dir")
			}
		})
	}
}
