//go:build nogui

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// guiCommandCases: in a build without the window, `coral gui` says what to
// install, whatever its flags, and exits non-zero; help says it too.
func guiCommandCases(dir string) []commandCase {
	want := []string{"this build has no window; install coral-desktop (or build without -tags nogui)"}
	return []commandCase{
		{"gui", []string{"gui"}, 1, nil, want},
		{"gui -h", []string{"gui", "-h"}, 1, nil, want},
		{"gui attach", []string{"gui", "-attach", "http://127.0.0.1:8081"}, 1, nil, want},
		{"gui bad flag", []string{"gui", "-token-file", dir}, 1, nil, want},
		{"help names the build", []string{"help"}, 0, []string{"This build has no window", "coral-desktop"}, nil},
	}
}

// Plain `coral` in this build is headless without probing the display:
// outside a desktop session it says nothing; in one, it says why no window
// opens, unless coral-desktop is there to hand over to (tested with the
// installed packages in test/package).
func TestHeadlessBuildNeverAsksForAWindow(t *testing.T) {
	for _, tc := range []struct {
		name, display, wayland string
		say                    string
	}{
		{"no desktop", "", "", ""},
		{"X display", ":0", "", "no window; install coral-desktop"},
		{"Wayland", "", "wayland-0", "no window; install coral-desktop"},
		{"dead X display", "nowhere:99", "", "running headless"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DISPLAY", tc.display)
			t.Setenv("WAYLAND_DISPLAY", tc.wayland)
			var stderr bytes.Buffer
			// The test binary has no coral-desktop beside it.
			if desktop := windowElsewhere(&stderr); desktop != "" {
				t.Fatalf("handed over to %s", desktop)
			}
			said := stderr.String()
			if tc.say == "" && said != "" {
				t.Errorf("said %q without a desktop session", said)
			}
			if !strings.Contains(said, tc.say) || strings.Count(said, "\n") > 1 {
				t.Errorf("said %q, want one line with %q", said, tc.say)
			}
		})
	}
}

// coral-desktop is handed over to only as an executable file beside coral.
func TestHeadlessBuildFindsTheDesktopBeside(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "coral")
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	if got := desktopBeside(exe); got != "" {
		t.Errorf("nothing beside: %q", got)
	}
	write("coral-desktop", 0o644)
	if got := desktopBeside(exe); got != "" {
		t.Errorf("not executable: %q", got)
	}
	os.Chmod(filepath.Join(dir, "coral-desktop"), 0o755)
	if got, want := desktopBeside(exe), filepath.Join(dir, "coral-desktop"); got != want {
		t.Errorf("executable beside: %q, want %q", got, want)
	}
	other := filepath.Join(t.TempDir(), "sub")
	os.Mkdir(other, 0o755)
	os.Mkdir(filepath.Join(other, "coral-desktop"), 0o755)
	if got := desktopBeside(filepath.Join(other, "coral")); got != "" {
		t.Errorf("a directory: %q", got)
	}
}
