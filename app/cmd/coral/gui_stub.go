//go:build nogui

// A build without the window (-tags nogui): the coral .deb for servers and
// home servers, which links no Fyne, OpenGL or X11 and so builds with
// CGO_ENABLED=0. The window is in the coral-desktop package's binary.

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/node"
)

// noWindow is what `coral gui` says in this build.
const noWindow = "this build has no window; install coral-desktop (or build without -tags nogui)"

// desktopName is the build with the window, as coral-desktop installs it
// beside this binary (/usr/bin/coral-desktop).
const desktopName = "coral-desktop"

// buildNote ends `coral help`, so the list of commands does not promise a
// window this binary cannot open.
const buildNote = "\nThis build has no window (-tags nogui): `coral` runs headless and `coral gui` is in coral-desktop.\n"

// runPlain is plain `coral`: headless, without probing the display. In a
// desktop session with coral-desktop installed beside it, coral-desktop
// runs instead, as plain `coral` did before the packages were split (so an
// autostart entry that names /usr/bin/coral still opens the window).
func runPlain(args []string, stdout, stderr io.Writer) int {
	if desktop := windowElsewhere(stderr); desktop != "" {
		err := syscall.Exec(desktop, append([]string{desktop}, args...), os.Environ())
		fmt.Fprintf(stderr, "coral: starting %s: %v: running headless\n", desktop, err)
	}
	return runNode("coral", args, stdout, stderr, false, "")
}

// windowElsewhere is the build with the window to hand a desktop session
// to, or "": then it says in one line why no window opens. Outside a
// desktop session it says nothing.
func windowElsewhere(stderr io.Writer) string {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return ""
	}
	if exe, err := os.Executable(); err == nil {
		if desktop := desktopBeside(exe); desktop != "" {
			return desktop
		}
	}
	fmt.Fprintf(stderr, "coral: %s: running headless\n", noWindow)
	return ""
}

// desktopBeside is coral-desktop in exe's directory, if it is an
// executable file there.
func desktopBeside(exe string) string {
	p := filepath.Join(filepath.Dir(exe), desktopName)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return ""
	}
	return p
}

// runGUI is `coral gui`: refused, whatever its flags, with what to install.
func runGUI(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "coral gui: %s\n", noWindow)
	return 1
}

// runWindow is never called in this build (runPlain and runGUI never ask
// for a window); it serves like a headless node until ctx ends.
func runWindow(ctx context.Context, n *node.Node, cfg config.Config, log *slog.Logger, cfgPath string) {
	<-ctx.Done()
}
