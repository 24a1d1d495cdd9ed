//go:build !nogui

// The window: this file links Fyne (cgo, OpenGL, X11). A build with
// -tags nogui (the coral .deb for servers) has gui_stub.go instead.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/app/node"
	"github.com/coralcdn/coral/gui"
)

// buildNote ends `coral help`: nothing to add in a build with the window.
const buildNote = ""

// runPlain is plain `coral`: a node with the window when one can be
// opened, else headless.
func runPlain(args []string, stdout, stderr io.Writer) int {
	return runNode("coral", args, stdout, stderr, displayOrSay(stderr), "")
}

// displayOrSay is plain `coral`'s choice: the window when one can be
// opened, else headless, saying why in one line.
func displayOrSay(stderr io.Writer) bool {
	if err := gui.CheckDisplay(); err != nil {
		fmt.Fprintf(stderr, "coral: %v: running headless (status page on the control listener; `coral serve` skips this check)\n", err)
		return false
	}
	return true
}

// runWindow shows the window of the in-process node n until it is closed
// or ctx ends. A restart the node asks for (a rotated secret) is only
// logged: closing the window would surprise the volunteer.
func runWindow(ctx context.Context, n *node.Node, cfg config.Config, log *slog.Logger, cfgPath string) {
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-n.RestartRequested():
			log.Warn("restart coral to apply: " + n.RestartReason())
		case <-gctx.Done():
		}
	}()
	gui.Run(gctx, localClient(n.Addrs().Control, cfg), guiInfo(n.Addrs().Control, cfgPath))
}

// runGUI is `coral gui`: a node with its window, or with -attach only the
// window, driving a node that runs elsewhere through its control API.
func runGUI(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral gui", stdout, stderr)
	cfgPath := fs.String("config", "", "path to the TOML config file (default: built-in defaults)")
	attach := fs.String("attach", "", "control URL of a running node to show instead of starting one, e.g. http://127.0.0.1:8081")
	tokenFile := fs.String("token-file", "", "with -attach: the node's control token file (default: the config's [control] token_file)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *attach == "" && *tokenFile != "" {
		fmt.Fprintln(stderr, "coral gui: -token-file needs -attach")
		return 2
	}
	var client *control.Client
	if *attach != "" {
		var err error
		if client, err = attachClient(*attach, *tokenFile, *cfgPath); err != nil {
			fmt.Fprintf(stderr, "coral gui: %v\n", err)
			return 1
		}
	}
	if err := gui.CheckDisplay(); err != nil {
		fmt.Fprintf(stderr, "coral gui: %v; run `coral serve` for a headless node, or set DISPLAY\n", err)
		return 1
	}
	if client == nil {
		return runNode("coral gui", fs.Args(), stdout, stderr, true, *cfgPath)
	}
	if _, err := client.Status(context.Background()); err != nil {
		fmt.Fprintf(stderr, "coral gui: cannot reach the node at %s: %v\n", *attach, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	gui.Run(ctx, client, gui.Info{ControlURL: client.BaseURL, Attached: true})
	return 0
}

// attachClient is the control client for -attach, with the token from
// -token-file or the config's token file (changes need it; viewing not).
func attachClient(rawURL, tokenFile, cfgPath string) (*control.Client, error) {
	if !strings.HasPrefix(rawURL, "http://") && !strings.HasPrefix(rawURL, "https://") {
		return nil, fmt.Errorf("-attach %q: want a URL such as http://127.0.0.1:8081", rawURL)
	}
	if tokenFile == "" {
		cfg, err := config.Load(cfgPath)
		if err != nil {
			return nil, err
		}
		tokenFile = cfg.RunPath(cfg.Control.TokenFile)
	}
	b, err := os.ReadFile(tokenFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return &control.Client{BaseURL: strings.TrimRight(rawURL, "/"), Token: strings.TrimSpace(string(b))}, nil
}

// localClient is how the window of an in-process node talks to it: over
// its control listener, like a window attached from elsewhere, so that both
// have every part of the control API (settings, usage, invites) and the
// same token check.
func localClient(controlAddr string, cfg config.Config) *control.Client {
	tok, _ := os.ReadFile(cfg.RunPath(cfg.Control.TokenFile)) // the node created it at start
	return &control.Client{BaseURL: "http://" + controlAddr, Token: strings.TrimSpace(string(tok))}
}

// guiInfo is what the window of an in-process node needs.
func guiInfo(controlAddr, cfgPath string) gui.Info {
	info := gui.Info{ControlURL: "http://" + controlAddr}
	var args []string
	if cfgPath != "" {
		if abs, err := filepath.Abs(cfgPath); err == nil {
			args = []string{"-config", abs}
		}
	}
	if a, err := gui.DefaultAutostart(args...); err == nil {
		info.Autostart = a
	}
	return info
}
