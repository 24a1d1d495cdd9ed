package gui

import (
	"context"
	"errors"
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
}

// NewView builds the tabs; call Refresh or Follow to fill them.
func NewView(api control.API, info Info) *View {
	v := &View{api: api, info: info}
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
		v.groups.onJoined = func() { v.Refresh(context.Background()) }
	}
	v.settings = newSettingsTab(info, v.budget, v.network, v.groups)
	v.sites = newSitesTab(v.usage)
	v.log = newLogTab()
	v.tabs = container.NewAppTabs(
		container.NewTabItem("Overview", v.overview.content),
		container.NewTabItem("Settings", v.settings.content),
		container.NewTabItem("Sites", v.sites.content),
		container.NewTabItem("Log", v.log.content),
	)
	v.content = v.tabs
	return v
}

// Content is the root widget.
func (v *View) Content() fyne.CanvasObject { return v.content }

// SetWindow names the window the view is in, for its dialogs.
func (v *View) SetWindow(w fyne.Window) { v.win = w }

// Follow refreshes the view every interval until ctx ends.
func (v *View) Follow(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	v.loadSettings(ctx, fyne.Do)
	for {
		st, err := v.api.Status(ctx)
		now := time.Now()
		day, fetched, uerr := v.fetchUsage(ctx, now)
		if ctx.Err() != nil {
			return
		}
		fyne.Do(func() {
			if fetched {
				v.usageSt.day, v.usageSt.err, v.usageSt.at = day, uerr, now
			}
			v.show(st, err, now)
		})
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh fetches the status (and the settings, the first time) and shows
// them; call it on the UI goroutine.
func (v *View) Refresh(ctx context.Context) {
	if v.budget != nil && !v.settingsLoaded {
		v.loadSettings(ctx, func(f func()) { f() })
	}
	st, err := v.api.Status(ctx)
	now := time.Now()
	if day, fetched, uerr := v.fetchUsage(ctx, now); fetched {
		v.usageSt.day, v.usageSt.err, v.usageSt.at = day, uerr, now
	}
	v.show(st, err, now)
}

// loadSettings reads the node's live settings into the Settings tab; do
// runs the UI part on the UI goroutine.
func (v *View) loadSettings(ctx context.Context, do func(func())) {
	if v.budget == nil {
		return
	}
	doc, err := v.budget.fetch(ctx)
	do(func() {
		if err != nil {
			v.budget.general.SetText("Cannot read the node's settings: " + err.Error())
			return
		}
		v.budget.show(doc)
		v.settingsLoaded = true
	})
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
