package gui

import (
	"fmt"
	"image/color"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
	"github.com/dustin/go-humanize"
)

// overviewTab: is the node well, who is it, what did it serve.
type overviewTab struct {
	health, name, peers, clusters, visitors, cacheText, errText, pageErr *widget.Label
	cache                                                                *meter
	// traffic shows the node's usage buckets when it keeps them.
	traffic     *fyne.Container
	trafficText *widget.Label
	graph       *usageGraph
	period      *widget.RadioGroup
	content     fyne.CanvasObject
}

// Graph periods.
const (
	periodHour = "Last hour"
	periodDay  = "Last 24 hours"
)

func newOverviewTab(openPage func()) *overviewTab {
	o := &overviewTab{
		health: widget.NewLabelWithStyle("Connecting to the node…", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}),
		name:   widget.NewLabel(""), peers: widget.NewLabel(""), clusters: widget.NewLabel(""),
		visitors: widget.NewLabel(""), cacheText: widget.NewLabel(""),
		errText: wrapped(""), pageErr: wrapped(""), cache: newMeter(),
		trafficText: wrapped(""), graph: newUsageGraph(),
	}
	o.health.SizeName = theme.SizeNameSubHeadingText
	o.errText.Importance = widget.DangerImportance
	o.errText.Hide()
	o.pageErr.Importance = widget.DangerImportance
	o.period = widget.NewRadioGroup([]string{periodHour, periodDay}, nil)
	o.period.Horizontal = true
	o.period.Selected = periodHour
	o.traffic = container.NewVBox(heading("Traffic"), o.trafficText, o.graph, o.period)
	o.traffic.Hide()
	open := widget.NewButtonWithIcon("Open status page", theme.ComputerIcon(), openPage)
	o.pageErr.Hide()
	o.content = container.NewBorder(
		container.NewVBox(o.health, container.NewBorder(nil, nil, nil, open, o.name), o.pageErr, o.errText, widget.NewSeparator()),
		nil, nil, nil,
		container.NewVScroll(container.NewVBox(
			heading("Network"), o.peers, o.clusters,
			o.traffic,
			heading("Visitors"), o.visitors,
			heading("Cache"), container.NewBorder(nil, nil, nil, o.cacheText, o.cache),
		)),
	)
	return o
}

func (o *overviewTab) show(st control.Status, err error) {
	if err != nil {
		o.health.SetText("Cannot reach the node")
		o.health.Importance = widget.DangerImportance
		o.health.Refresh()
		o.errText.SetText("Cannot reach the node: " + err.Error())
		o.errText.Show()
		return
	}
	o.errText.Hide()
	h := control.HealthOf(st)
	o.health.Importance = map[control.HealthLevel]widget.Importance{
		control.HealthOK: widget.SuccessImportance, control.HealthNote: widget.MediumImportance, control.HealthWarn: widget.WarningImportance,
	}[h.Level]
	o.health.SetText(h.Words)
	o.name.SetText(fmt.Sprintf("This node: %s · up %s · Coral %s", control.NodeName(st.NodeID), humanDuration(st.Uptime), st.Version))
	o.peers.SetText(control.PeersInWords(st))
	o.clusters.SetText(clustersInWords(st))
	p := st.Proxy
	o.visitors.SetText(fmt.Sprintf("%s %s since start, %s sent: %d from this node's cache, %d from other nodes, %d from origin sites",
		humanize.Comma(p.Requests), plural(p.Requests, "request", "requests"), humanize.IBytes(uint64(p.BytesServed)),
		p.Hits+p.Revalidated+p.Stale, p.Peer, p.Misses))
	frac := 0.0
	if st.Cache.MaxBytes > 0 {
		frac = float64(st.Cache.Bytes) / float64(st.Cache.MaxBytes)
	}
	o.cache.SetValue(frac)
	o.cacheText.SetText(fmt.Sprintf("%d %s, %s of %s", st.Cache.Objects, plural(int64(st.Cache.Objects), "object", "objects"),
		humanize.IBytes(uint64(st.Cache.Bytes)), humanize.IBytes(uint64(st.Cache.MaxBytes))))
	// Lines come and go (cluster levels): lay the tab out again.
	o.content.Refresh()
}

// clustersInWords is one line over the DSHT levels, e.g. "Clusters: region
// 12 nodes · nearby: none yet · the whole network: 40 known".
func clustersInWords(st control.Status) string {
	if st.DSHT == nil {
		return ""
	}
	var parts []string
	for i := len(st.DSHT.Levels) - 1; i >= 0; i-- {
		l := st.DSHT.Levels[i]
		scope := map[int]string{0: "whole network", 1: "region"}[l.Level]
		if scope == "" {
			scope = "nearby"
		}
		switch {
		case l.Level == 0:
			parts = append(parts, fmt.Sprintf("%s: %d known", scope, l.RoutingSize))
		case l.ClusterID == "" || l.ClusterSize <= 1:
			parts = append(parts, scope+": no cluster yet")
		default:
			parts = append(parts, fmt.Sprintf("%s: cluster of %d", scope, l.ClusterSize))
		}
	}
	return "Clusters: " + strings.Join(parts, " · ")
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Truncate(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// meter is a fill bar whose empty track reads as empty in light and dark
// themes alike (Fyne's progress bar track looks full on the dark theme).
type meter struct {
	widget.BaseWidget
	value float64
}

func newMeter() *meter {
	m := &meter{}
	m.ExtendBaseWidget(m)
	return m
}

// SetValue sets the filled fraction, 0 to 1.
func (m *meter) SetValue(v float64) {
	m.value = min(max(v, 0), 1)
	m.Refresh()
}

func (m *meter) CreateRenderer() fyne.WidgetRenderer {
	track := canvas.NewRectangle(color.Transparent)
	track.StrokeWidth = 1
	track.CornerRadius = 3
	fill := canvas.NewRectangle(color.Transparent)
	fill.CornerRadius = 3
	r := &meterRenderer{m: m, track: track, fill: fill}
	r.Refresh()
	return r
}

type meterRenderer struct {
	m           *meter
	track, fill *canvas.Rectangle
}

func (r *meterRenderer) Layout(s fyne.Size) {
	r.track.Resize(s)
	r.fill.Resize(fyne.NewSize(s.Width*float32(r.m.value), s.Height))
}

func (r *meterRenderer) MinSize() fyne.Size { return fyne.NewSize(200, 14) }

func (r *meterRenderer) Refresh() {
	r.track.StrokeColor = theme.Color(theme.ColorNameForeground)
	r.fill.FillColor = theme.Color(theme.ColorNamePrimary)
	r.Layout(r.m.Size())
	canvas.Refresh(r.m)
}

func (r *meterRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.track, r.fill} }
func (r *meterRenderer) Destroy()                     {}

// showUsage fills the Traffic section: text says rates and totals, the
// graph the buckets over [since, now].
func (o *overviewTab) showUsage(text string, points []usagePoint, bucket time.Duration, since, now time.Time) {
	o.trafficText.SetText(text)
	o.graph.Set(points, bucket, since, now)
	o.traffic.Show()
	o.content.Refresh()
}
