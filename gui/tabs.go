package gui

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
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
	title   *widget.Label
	table   *widget.Label
	ledger  *widget.Label // the group ledgers; hidden when in no group
	ledgerH *widget.Label
	period  *widget.RadioGroup
	usage   usageAPI // nil: no per-period figures
	last    control.Status
	content fyne.CanvasObject
}

// Sites periods.
const (
	sitesMonth = "This month"
	sitesDay   = "Last 24 hours"
	sitesHour  = "Last hour"
	// maxSiteRows bounds the per-period queries (one per site).
	maxSiteRows = 20
)

func newSitesTab(usage usageAPI) *sitesTab {
	t := &sitesTab{title: heading("Sites in the last requests"), table: widget.NewLabel("No visitors yet."), usage: usage,
		ledger: widget.NewLabel(""), ledgerH: heading("Group ledger: what each member node carried")}
	t.table.TextStyle = fyne.TextStyle{Monospace: true}
	t.ledger.TextStyle = fyne.TextStyle{Monospace: true}
	t.ledger.Hide()
	t.ledgerH.Hide()
	t.period = widget.NewRadioGroup([]string{sitesMonth, sitesDay, sitesHour}, func(string) { t.show(t.last) })
	t.period.Horizontal = true
	t.period.Selected = sitesMonth
	t.period.Hide()
	t.content = container.NewBorder(container.NewVBox(t.title, t.period), nil, nil, nil,
		container.NewScroll(container.NewVBox(t.table, t.ledgerH, t.ledger)))
	return t
}

func (t *sitesTab) show(st control.Status) {
	t.last = st
	t.showLedger(st.Groups)
	if st.Budget == nil {
		t.showRecent(st)
		return
	}
	t.title.SetText("Sites: bytes sent to visitors and other nodes, and their share")
	if t.usage != nil {
		t.period.Show()
	}
	rows := control.SiteRows(st.Budget)
	if t.period.Selected != sitesMonth && t.usage != nil {
		rows = t.periodRows(rows)
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

// periodRows re-counts the month's busiest sites over the chosen period.
func (t *sitesTab) periodRows(month []control.SiteRow) []control.SiteRow {
	since := time.Now().Add(-time.Hour)
	if t.period.Selected == sitesDay {
		since = time.Now().Add(-24 * time.Hour)
	}
	var rows []control.SiteRow
	var total int64
	for i, m := range month {
		if i == maxSiteRows {
			break
		}
		bs, err := t.usage.Usage(context.Background(), m.Host, since)
		if err != nil {
			continue
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
	return rows
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
