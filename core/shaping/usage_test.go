package shaping

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A flush that fails (a full disk, the directory gone) keeps the bytes
// counted since the last save: the next flush, once the disk works again,
// saves them even if no traffic came in between, and a restart finds them.
func TestUsageFlushFailureKeepsCounts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "usage.json")
	now := time.Now()
	u, err := OpenUsage(path)
	if err != nil {
		t.Fatal(err)
	}
	u.Add(now, "example.com", Counts{Sent: 1000})
	if err := u.Flush(now); err != nil {
		t.Fatal(err)
	}
	u.Add(now, "example.com", Counts{Sent: 500})
	// The data directory cannot take the file: a plain file stands in its place.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(now); err == nil {
		t.Fatal("a flush that could not write reported success")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := u.Flush(now); err != nil { // room again, no new traffic
		t.Fatal(err)
	}
	again, err := OpenUsage(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.SentSince(now.Add(-time.Hour)); got != 1500 {
		t.Errorf("after the failed flush, a good one and a restart: %d bytes sent on record, want 1500", got)
	}
}

// The temporary files of saves a crash (kill -9) cut short are removed at
// the next open; the record itself is kept.
func TestOpenUsageRemovesTempsOfCutSaves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "usage.json")
	now := time.Now()
	u, _ := OpenUsage(path)
	u.Add(now, "example.com", Counts{Sent: 42})
	if err := u.Flush(now); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"usage.json.tmp123", "usage.json.tmp98765"} {
		os.WriteFile(filepath.Join(dir, name), []byte(`{"version":1,"tot`), 0o600)
	}
	again, err := OpenUsage(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := again.SentSince(now.Add(-time.Hour)); got != 42 {
		t.Errorf("record after the open: %d bytes sent, want 42", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %v, want only usage.json", entries)
	}
}
