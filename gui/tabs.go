package gui

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
	"github.com/dustin/go-humanize"
)

// settingsTab: what the volunteer can set from this window, in inner
// tabs so that none has to scroll.
type settingsTab struct {
	autostart           Autostart
	budget              *budgetForm // nil: the node has no settings API
	login               *widget.Check
	loginErr            *widget.Label
	network, peerID, at *widget.Label
	content             fyne.CanvasObject
}

func newSettingsTab(info Info, budget *budgetForm, network *networkBox, groups *groupsBox) *settingsTab {
	s := &settingsTab{autostart: info.Autostart, budget: budget, loginErr: errLabel(),
		network: wrapped(""), peerID: wrapped(""), at: wrapped("")}
	s.login = widget.NewCheck("Start Coral when I log in", s.setLogin)
	if s.autostart.Dir == "" {
		s.login.Disable()
		s.loginErr.SetText("Start at login is set on the machine that runs the node.")
	} else {
		s.login.Checked = s.autostart.Enabled()
	}
	if info.Attached {
		s.at.SetText("This window is attached to a node running elsewhere: " + info.ControlURL)
	}
	computer := container.NewVBox(heading("Start at login"), s.login, s.loginErr,
		heading("Network"), s.network, s.peerID, s.at)
	if network != nil {
		computer.Add(network.content)
	}
	if budget == nil {
		box := container.NewVBox(computer, heading("Bandwidth, schedule and quota"),
			wrapped("This node does not offer live settings: set caps, the schedule and the quota in its config file."))
		if groups != nil {
			box.Add(heading("Site groups"))
			box.Add(groups.content)
		}
		s.content = container.NewVScroll(box)
		return s
	}
	inner := container.NewAppTabs(
		container.NewTabItem("Bandwidth", budget.bandwidth),
		container.NewTabItem("Schedule", budget.schedule),
		container.NewTabItem("Site weights", budget.weights),
		container.NewTabItem("Cache", budget.cache),
	)
	if groups != nil {
		inner.Append(container.NewTabItem("Groups", container.NewVScroll(groups.content)))
	}
	inner.Append(container.NewTabItem("This computer", computer))
	s.content = container.NewBorder(nil, budget.applyBar, nil, nil, inner)
	return s
}

func (s *settingsTab) setLogin(on bool) {
	if err := s.autostart.Set(on); err != nil {
		s.loginErr.SetText(err.Error())
		s.login.Checked = s.autostart.Enabled()
		s.login.Refresh()
		return
	}
	s.loginErr.SetText("")
}

func (s *settingsTab) show(st control.Status) {
	s.network.SetText(fmt.Sprintf("Network zone %s · this node is %s", st.Zone, control.NodeName(st.NodeID)))
	if st.P2P != nil {
		s.peerID.SetText("Peer ID " + st.P2P.PeerID)
	}
}

// sitesTab: which sites this node served, with their share: this month's
// bytes from the budget, or the last day or hour from the usage buckets;
// without a budget, the sites of the last requests.
type sitesTab struct {
	title    *widget.Label
	table    *widget.Label
	ledger   *widget.Label // the group ledgers; hidden when in no group
	ledgerH  *widget.Label
	period   *widget.RadioGroup
	hasUsage bool // the node keeps per-site usage buckets
	last     control.Status
	content  fyne.CanvasObject
	// read is what the poller last read per period (UI goroutine).
	read map[string]sitePeriod
	// want and shown tell the poller what to read: the period picked, and
	// whether the tab is on screen (any goroutine).
	want  atomic.Pointer[string]
	shown atomic.Bool
	kick  func() // asks for a read now
}

// sitePeriod is one read of the per-site figures over a period.
type sitePeriod struct {
	period string
	rows   []control.SiteRow
	err    error
}

// Sites periods.
const (
	sitesMonth = "This month"
	sitesDay   = "Last 24 hours"
	sitesHour  = "Last hour"
	// maxSiteRows bounds the per-period queries (one per site).
	maxSiteRows = 20
)

func newSitesTab(hasUsage bool, kick func()) *sitesTab {
	t := &sitesTab{title: heading("Sites in the last requests"), table: widget.NewLabel("No visitors yet."), hasUsage: hasUsage,
		ledger: widget.NewLabel(""), ledgerH: heading("Group ledger: what each member node carried"),
		read: map[string]sitePeriod{}, kick: kick}
	t.table.TextStyle = fyne.TextStyle{Monospace: true}
	t.ledger.TextStyle = fyne.TextStyle{Monospace: true}
	t.ledger.Hide()
	t.ledgerH.Hide()
	t.period = widget.NewRadioGroup([]string{sitesMonth, sitesDay, sitesHour}, t.picked)
	t.period.Horizontal = true
	t.period.Selected = sitesMonth
	month := sitesMonth
	t.want.Store(&month)
	t.period.Hide()
	t.content = container.NewBorder(container.NewVBox(t.title, t.period), nil, nil, nil,
		container.NewScroll(container.NewVBox(t.table, t.ledgerH, t.ledger)))
	return t
}

// picked: another period; its figures are read off the UI goroutine.
func (t *sitesTab) picked(p string) {
	t.want.Store(&p)
	if _, ok := t.read[p]; !ok && p != sitesMonth {
		t.kick()
	}
	t.show(t.last)
}

// got takes a read of the per-site figures (UI goroutine).
func (t *sitesTab) got(p sitePeriod) {
	t.read[p.period] = p
}

func (t *sitesTab) show(st control.Status) {
	t.last = st
	t.showLedger(st.Groups)
	if st.Budget == nil {
		t.showRecent(st)
		return
	}
	t.title.SetText("Sites: bytes sent to visitors and other nodes, and their share")
	if t.hasUsage {
		t.period.Show()
	}
	rows := control.SiteRows(st.Budget)
	if p := t.period.Selected; p != sitesMonth && t.hasUsage {
		read, ok := t.read[p]
		switch {
		case !ok:
			t.table.SetText("Reading the figures for this period…")
			return
		case read.err != nil:
			t.table.SetText("Cannot read the figures for this period: " + read.err.Error())
			return
		}
		rows = read.rows
	}
	if len(rows) == 0 {
		t.table.SetText("Nothing sent in this period.")
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %10s %10s %6s\n", "Site", "Sent", "Received", "Share")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-40s %10s %10s %5d%%\n", r.Host, humanize.IBytes(uint64(r.Sent)), humanize.IBytes(uint64(r.Received)), r.Share)
	}
	t.table.SetText(b.String())
}

// fetchSiteUsage re-counts the month's busiest sites over the period the
// Sites tab shows, when it shows one and its figures are due (the
// poller's goroutine); nil when nothing was read.
func (v *View) fetchSiteUsage(ctx context.Context, st control.Status, err error, now time.Time) *sitePeriod {
	p := *v.sites.want.Load()
	if v.usage == nil || err != nil || st.Budget == nil || p == sitesMonth || !v.sites.shown.Load() || v.hidden.Load() {
		return nil
	}
	if at, ok := v.polled.sitesAt[p]; ok && now.Sub(at) < usageEvery {
		return nil
	}
	if v.polled.sitesAt == nil {
		v.polled.sitesAt = map[string]time.Time{}
	}
	v.polled.sitesAt[p] = now
	since := now.Add(-time.Hour)
	if p == sitesDay {
		since = now.Add(-24 * time.Hour)
	}
	rows, err := periodRows(ctx, v.usage, control.SiteRows(st.Budget), since)
	return &sitePeriod{period: p, rows: rows, err: err}
}

// periodRows re-counts the month's busiest sites since a time; the first
// failed read fails it all (a partial table would mislead).
func periodRows(ctx context.Context, usage usageAPI, month []control.SiteRow, since time.Time) ([]control.SiteRow, error) {
	var rows []control.SiteRow
	var total int64
	for i, m := range month {
		if i == maxSiteRows {
			break
		}
		bs, err := usage.Usage(ctx, m.Host, since)
		if err != nil {
			return nil, err
		}
		r := control.SiteRow{Host: m.Host}
		for _, b := range bs {
			r.Sent += b.Sent
			r.Received += b.Received
		}
		if r.Sent+r.Received > 0 {
			rows = append(rows, r)
			total += r.Sent
		}
	}
	for i := range rows {
		if total > 0 {
			rows[i].Share = int(rows[i].Sent * 100 / total)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Sent > rows[j].Sent })
	return rows, nil
}

// showLedger shows the group ledgers below the sites, when in a group.
func (t *sitesTab) showLedger(groups []control.Group) {
	text := ledgerText(groups)
	t.ledger.SetText(strings.TrimRight(text, "\n"))
	if text == "" {
		t.ledger.Hide()
		t.ledgerH.Hide()
		return
	}
	t.ledger.Show()
	t.ledgerH.Show()
}

type siteCount struct {
	host          string
	requests, hit int
}

// showRecent counts the sites of the last requests (a node without a
// budget keeps no per-site bytes).
func (t *sitesTab) showRecent(st control.Status) {
	counts := map[string]*siteCount{}
	for _, r := range st.Recent {
		host := r.URL
		if u, err := url.Parse(r.URL); err == nil && u.Host != "" {
			host = u.Host
		}
		c := counts[host]
		if c == nil {
			c = &siteCount{host: host}
			counts[host] = c
		}
		c.requests++
	}
	if len(counts) == 0 {
		t.table.SetText("No visitors yet.")
		return
	}
	list := make([]*siteCount, 0, len(counts))
	for _, c := range counts {
		list = append(list, c)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].requests != list[j].requests {
			return list[i].requests > list[j].requests
		}
		return list[i].host < list[j].host
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %8s %6s\n", "Site", "Requests", "Share")
	for _, c := range list {
		fmt.Fprintf(&b, "%-40s %8d %5d%%\n", c.host, c.requests, c.requests*100/len(st.Recent))
	}
	t.table.SetText(b.String())
}

// logTab: what happened to the node, in words, newest first: the node's
// own warnings and what the window saw change.
type logTab struct {
	text      *widget.Label
	events    []logEvent
	seenUntil time.Time // the newest node warning already shown
	last      struct{ health, disk, budget, err string }
	content   fyne.CanvasObject
}

type logEvent struct {
	at   time.Time
	text string
}

const maxLogEvents = 200

func newLogTab() *logTab {
	l := &logTab{text: wrapped("")}
	l.content = container.NewBorder(heading("Events"), nil, nil, nil, container.NewVScroll(l.text))
	return l
}

// observe adds an event for every change a volunteer would want to hear of.
func (l *logTab) observe(st control.Status, err error, now time.Time) {
	if err != nil {
		if msg := err.Error(); msg != l.last.err {
			l.add(now, "Cannot reach the node: "+msg)
			l.last.err = msg
		}
		return
	}
	if l.last.err != "" {
		l.add(now, "Reached the node again")
		l.last.err = ""
	}
	for _, e := range st.Events {
		if e.Time.After(l.seenUntil) {
			l.add(e.Time, capitalise(e.Message))
			l.seenUntil = e.Time
		}
	}
	if h := control.HealthOf(st).Words; h != l.last.health {
		l.add(now, h)
		l.last.health = h
	}
	if note := budgetNote(st); note != l.last.budget {
		if note != "" {
			l.add(now, "Budget: "+note) // "90 % of the monthly quota used", "paused: …"
		}
		l.last.budget = note
	}
	if st.Cache.DiskNote != l.last.disk {
		if st.Cache.DiskNote != "" {
			l.add(now, "Disk: "+st.Cache.DiskNote)
		} else if l.last.disk != "" {
			l.add(now, "Disk has room again: new copies are stored")
		}
		l.last.disk = st.Cache.DiskNote
	}
}

func (l *logTab) add(at time.Time, text string) {
	l.events = append(l.events, logEvent{at, text})
	sort.SliceStable(l.events, func(i, j int) bool { return l.events[i].at.After(l.events[j].at) })
	if len(l.events) > maxLogEvents {
		l.events = l.events[:maxLogEvents]
	}
	lines := make([]string, len(l.events))
	for i, e := range l.events {
		lines[i] = e.at.Local().Format("Jan 2 15:04:05") + "  " + e.text
	}
	l.text.SetText(strings.Join(lines, "\n"))
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func budgetNote(st control.Status) string {
	if st.Budget == nil {
		return ""
	}
	return st.Budget.Note
}
