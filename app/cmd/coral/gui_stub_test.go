//go:build nogui

package main

import (
	"bytes"
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

// Plain `coral` in this build is headless without probing the display: no
// window is asked for, and with a desktop session set it says why in one
// line (an old autostart entry may still start /usr/bin/coral).
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
			if displayOrSay(&stderr) {
				t.Fatal("a build without the window chose the window")
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
