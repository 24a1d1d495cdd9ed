package cluster

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/coralcdn/coral/test/testkit"
)

// BuildBinary builds the coral command into dir and returns its path; the
// CORAL_BIN environment variable names a prebuilt binary instead.
func BuildBinary(dir string) (string, error) {
	if p := os.Getenv("CORAL_BIN"); p != "" {
		return p, nil
	}
	bin := filepath.Join(dir, "coral")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/coralcdn/coral/app/cmd/coral")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cluster: build coral: %w", err)
	}
	return bin, nil
}

// SyncWriter serialises writes from several nodes' output goroutines.
type SyncWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (s *SyncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.W.Write(b)
}

// LogBuffer collects nodes' output for a test to print when it fails.
type LogBuffer = testkit.LogBuffer
