// Package gui is Coral's desktop window: it shows a volunteer what their node
// is doing and keeps it running from the system tray. It knows the node
// only through control.API, so the same window drives an in-process node
// and a headless one over the control listener (`coral gui -attach`).
package gui

import (
	"context"
	"net/url"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/driver/desktop"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/assets"
)

// Info is what the window shows besides the live status.
type Info struct {
	ControlURL string
	// Attached: the node runs in another process; closing the window or
	// quitting leaves it running.
	Attached bool
	// Autostart is the login entry the Settings switch writes.
	Autostart Autostart
}

// Run opens the window and blocks until the volunteer quits or ctx ends.
// Call CheckDisplay first: without a display Fyne panics.
func Run(ctx context.Context, api control.API, info Info) {
	a := fyneapp.NewWithID("net.coralcdn.coral")
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	_, isDesktop := a.(desktop.App)
	d := newShell(a, api, info, isDesktop && trayAvailable())
	if u, err := url.Parse(info.ControlURL); err == nil && info.ControlURL != "" {
		d.view.openPage = func() error { return a.OpenURL(u) }
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go d.view.Follow(ctx, 2*time.Second)
	loopDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			fyne.Do(func() { quitOnce(a) })
		case <-loopDone:
		}
	}()
	d.win.ShowAndRun()
	close(loopDone)
}

// quitOnce quits the app unless its loop is already ending. Fyne quits by
// itself on SIGINT and SIGTERM, the signals that also end ctx: a Quit queued
// just before its loop stopped then runs after GLFW is gone and panics
// (NotInitialized) although nothing is left to close, so that panic is
// dropped here.
func quitOnce(a fyne.App) {
	defer func() { _ = recover() }()
	a.Quit()
}
