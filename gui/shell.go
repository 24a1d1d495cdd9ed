package gui

import (
	"context"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"github.com/coralcdn/coral/app/control"
)

// DefaultSize fits every tab without cutting anything off (checked by
// TestNothingCutOff at this size in both themes).
var DefaultSize = fyne.NewSize(780, 660)

// prefToldHidden records that the volunteer was told, once, that closing
// the window leaves the node running.
const prefToldHidden = "told-window-hides"

// shell ties the window, the tray and the node's life together.
type shell struct {
	app     fyne.App
	win     fyne.Window
	view    *View
	hasTray bool
	info    Info
	quit    func() // ends the app; Run returns and the caller closes the node cleanly
	menu    *fyne.Menu
	pause   *fyne.MenuItem
	paused  bool // as the node last said (UI goroutine)
	pending bool // a pause or resume is on its way
}

func newShell(a fyne.App, api control.API, info Info, hasTray bool) *shell {
	d := &shell{app: a, view: NewView(api, info), hasTray: hasTray, info: info, quit: a.Quit}
	d.win = a.NewWindow("Coral")
	d.win.SetContent(d.view.Content())
	d.view.SetWindow(d.win)
	d.win.Resize(DefaultSize)
	d.win.SetMaster()
	if da, ok := a.(desktop.App); ok && hasTray && !info.Attached {
		da.SetSystemTrayMenu(d.trayMenu())
		da.SetSystemTrayIcon(a.Icon())
	}
	d.win.SetCloseIntercept(d.closeWindow)
	return d
}

// trayMenu: what a volunteer does without opening the window.
func (d *shell) trayMenu() *fyne.Menu {
	open := fyne.NewMenuItem("Open Coral", d.showWindow)
	page := fyne.NewMenuItem("Open status page", func() { d.view.openStatusPage() })
	d.pause = fyne.NewMenuItem("Pause serving", d.togglePause)
	if d.view.budget != nil {
		d.view.budget.onPaused = d.showPaused
	} else {
		// Pausing needs the node's settings API: say so rather than pretend.
		d.pause.Disabled = true
		d.pause.Label = "Pause serving (not supported by this node)"
	}
	quit := fyne.NewMenuItem("Quit Coral (stops the node)", func() { d.quit() })
	quit.IsQuit = true
	d.menu = fyne.NewMenu("Coral", open, page, fyne.NewMenuItemSeparator(), d.pause, fyne.NewMenuItemSeparator(), quit)
	return d.menu
}

// togglePause pauses or resumes serving through the settings API, the
// opposite of what the node last said (a pause made elsewhere counts), off
// the UI goroutine; the item names the next action once the node answers.
func (d *shell) togglePause() {
	b, want := d.view.budget, !d.paused
	if d.pending {
		return
	}
	d.pending = true
	go func() {
		doc, err := b.setPaused(context.Background(), want)
		onUI(func() {
			d.pending = false
			if err != nil {
				msg := "Could not change pausing: " + err.Error()
				if noAnswer(err) {
					msg = noAnswerText + err.Error()
				}
				d.app.SendNotification(fyne.NewNotification("Coral", msg))
				return
			}
			b.pausedIs(doc.Paused)
		})
	}()
}

// showPaused names the tray's next action after the node's state.
func (d *shell) showPaused(paused bool) {
	d.paused = paused
	if d.pause == nil {
		return
	}
	label := map[bool]string{true: "Resume serving", false: "Pause serving"}[paused]
	if d.pause.Label != label {
		d.pause.Label = label
		d.menu.Refresh()
	}
}

func (d *shell) showWindow() {
	d.view.hidden.Store(false)
	d.view.kick()
	d.win.Show()
	d.win.RequestFocus()
}

// closeWindow: with a tray, the window hides and the node keeps serving
// (said once); without one, closing would leave no way back, so ask.
func (d *shell) closeWindow() {
	switch {
	case d.info.Attached:
		d.quit()
	case d.hasTray:
		d.view.hidden.Store(true)
		d.win.Hide()
		if !d.app.Preferences().Bool(prefToldHidden) {
			d.app.Preferences().SetBool(prefToldHidden, true)
			d.app.SendNotification(fyne.NewNotification("Coral keeps running",
				"Your node is still serving visitors. Open the window or quit from the Coral icon in the tray."))
		}
	default:
		dialog.ShowConfirm("Stop the node?",
			"This desktop has no tray icon, so closing the window\nstops your Coral node. Stop it now?",
			func(stop bool) {
				if stop {
					d.quit()
				}
			}, d.win)
	}
}
