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

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/node"
)

// noWindow is what `coral gui` says in this build.
const noWindow = "this build has no window; install coral-desktop (or build without -tags nogui)"

// buildNote ends `coral help`, so the list of commands does not promise a
// window this binary cannot open.
const buildNote = "\nThis build has no window (-tags nogui): `coral` runs headless and `coral gui` is in coral-desktop.\n"

// displayOrSay is plain `coral`'s choice: always headless, without probing
// the display. When a desktop session is there (an autostart entry of the
// former single package still runs /usr/bin/coral), say once why no window
// opens.
func displayOrSay(stderr io.Writer) bool {
	if os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != "" {
		fmt.Fprintf(stderr, "coral: %s: running headless\n", noWindow)
	}
	return false
}

// runGUI is `coral gui`: refused, whatever its flags, with what to install.
func runGUI(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "coral gui: %s\n", noWindow)
	return 1
}

// runWindow is never called in this build (displayOrSay and runGUI never
// ask for a window); it serves like a headless node until ctx ends.
func runWindow(ctx context.Context, n *node.Node, cfg config.Config, log *slog.Logger, cfgPath string) {
	<-ctx.Done()
}
