package gui

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
)

// View is the window's content: four tabs over one node's status.
type View struct {
	api      control.API
	info     Info
	openPage func() error // nil: no status page to open

	win      fyne.Window // for dialogs
	budget   *budgetForm // nil: the node has no settings API
	network  *networkBox // nil: the node cannot share or join networks
	groups   *groupsBox  // nil: the node cannot join site groups
	usage    usageAPI    // nil: the node keeps no usage buckets
	usageSt  usageState
	tabs     *container.AppTabs
	overview *overviewTab
	settings *settingsTab
	sites    *sitesTab
	log      *logTab
	content  fyne.CanvasObject

	settingsLoaded bool

	kicks  chan struct{} // a refresh wanted now (Follow)
	hidden atomic.Bool   // the window is hidden in the tray: read no per-site figures
	pollMu sync.Mutex    // one poll at a time; guards polled
	polled polled
}

// NewView builds the tabs; call Refresh or Follow to fill them.
func NewView(api control.API, info Info) *View {
	v := &View{api: api, info: info, kicks: make(chan struct{}, 1)}
	v.overview = newOverviewTab(v.openStatusPage)
	if u, ok := api.(usageAPI); ok {
		v.usage = u
	}
	v.overview.period.OnChanged = func(string) { v.showUsage(v.usageSt.last, time.Now()) }
	if sa, ok := api.(settingsAPI); ok {
		v.budget = newBudgetForm(sa, func() fyne.Window { return v.win })
	}
	if na, ok := api.(networkAPI); ok {
		v.network = newNetworkBox(na)
	}
	if ga, ok := api.(groupsAPI); ok {
		v.groups = newGroupsBox(ga)
		v.groups.onJoined = v.kick
	}
	v.settings = newSettingsTab(info, v.budget, v.network, v.groups)
	v.sites = newSitesTab(v.usage != nil, v.kick)
	v.log = newLogTab()
	v.tabs = container.NewAppTabs(
		container.NewTabItem("Overview", v.overview.content),
		container.NewTabItem("Settings", v.settings.content),
		container.NewTabItem("Sites", v.sites.content),
		container.NewTabItem("Log", v.log.content),
	)
	v.tabs.OnSelected = func(ti *container.TabItem) {
		if shown := ti.Content == v.sites.content; shown != v.sites.shown.Swap(shown) && shown {
			v.kick()
		}
	}
	v.content = v.tabs
	return v
}

// Content is the root widget.
func (v *View) Content() fyne.CanvasObject { return v.content }

// SetWindow names the window the view is in, for its dialogs.
func (v *View) SetWindow(w fyne.Window) { v.win = w }

// Follow refreshes the view every interval until ctx ends, and at once
// when asked (v.kick). The node is read on this goroutine, never on the
// UI one: a slow node delays the figures, not the window.
func (v *View) Follow(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		showIt := v.poll(ctx)
		if ctx.Err() != nil {
			return
		}
		onUI(showIt)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-v.kicks:
		}
	}
}

// kick asks Follow for a refresh now (any goroutine; no-op without Follow).
func (v *View) kick() {
	select {
	case v.kicks <- struct{}{}:
	default:
	}
}

// Refresh reads the node and shows it, all on the calling goroutine
// (tests, and windows without Follow).
func (v *View) Refresh(ctx context.Context) { v.poll(ctx)() }

// poll reads the status, the settings, and the usage buckets when due
// (any goroutine but the UI's), and returns what shows them (the UI's).
// The settings are read every time, so the form follows changes made
// elsewhere, and a failed first read is tried again.
func (v *View) poll(ctx context.Context) func() {
	v.pollMu.Lock()
	defer v.pollMu.Unlock()
	now := time.Now()
	st, err := v.api.Status(ctx)
	var doc settingsDoc
	serr := err // a node out of reach is not asked again this time
	var day []control.UsageBucket
	var fetched bool
	var uerr error
	if err == nil {
		if v.budget != nil {
			doc, serr = v.budget.fetch(ctx)
		}
		day, fetched, uerr = v.fetchUsage(ctx, now)
	}
	sites := v.fetchSiteUsage(ctx, st, err, now)
	return func() {
		if v.budget != nil {
			v.budget.reloaded(doc, serr)
			v.settingsLoaded = v.budget.ready
			if serr != nil && err == nil && st.Budget != nil && v.budget.onPaused != nil {
				v.budget.onPaused(st.Budget.Reason == "paused") // the tray follows the status alone
			}
		}
		if fetched {
			v.usageSt.day, v.usageSt.err, v.usageSt.read = day, uerr, true
		}
		if sites != nil {
			v.sites.got(*sites)
		}
		v.show(st, err, now)
	}
}

func (v *View) show(st control.Status, err error, now time.Time) {
	v.log.observe(st, err, now)
	v.overview.show(st, err)
	if err != nil {
		return
	}
	v.usageSt.last = st
	v.showUsage(st, now)
	v.settings.show(st)
	if v.groups != nil {
		v.groups.show(st)
	}
	v.sites.show(st)
}

// openStatusPage opens the status page in the browser and says so when
// that fails, with the address to open by hand.
func (v *View) openStatusPage() {
	e := v.overview.pageErr
	switch err := v.openPageErr(); {
	case err != nil:
		e.SetText("Could not open a browser (" + err.Error() + "): open " + v.info.ControlURL + " yourself.")
		e.Show()
	default:
		e.SetText("")
		e.Hide()
	}
	v.overview.content.Refresh()
}

func (v *View) openPageErr() error {
	if v.openPage == nil {
		return errors.New("this window has no status page address")
	}
	return v.openPage()
}

func heading(s string) *widget.Label {
	return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
}

func wrapped(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Wrapping = fyne.TextWrapWord
	return l
}
