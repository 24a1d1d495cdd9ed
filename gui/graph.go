package gui

import (
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"github.com/dustin/go-humanize"
)

// usagePoint is one bucket of the node's traffic.
type usagePoint struct {
	start          time.Time
	sent, received int64
}

// usageGraph draws upload and download rates over a period: two lines on
// a framed plot, the peak rate written at the top.
type usageGraph struct {
	widget.BaseWidget
	points     []usagePoint
	bucket     time.Duration
	since, now time.Time
}

func newUsageGraph() *usageGraph {
	g := &usageGraph{bucket: 5 * time.Minute}
	g.ExtendBaseWidget(g)
	return g
}

// Set shows points over [since, now].
func (g *usageGraph) Set(points []usagePoint, bucket time.Duration, since, now time.Time) {
	g.points, g.bucket, g.since, g.now = points, bucket, since, now
	g.Refresh()
}

// peak is the highest rate drawn, bytes per second (at least 1).
func (g *usageGraph) peak() float64 {
	p := 1.0
	for _, pt := range g.points {
		p = max(p, float64(pt.sent)/g.bucket.Seconds(), float64(pt.received)/g.bucket.Seconds())
	}
	return p
}

func (g *usageGraph) CreateRenderer() fyne.WidgetRenderer {
	r := &graphRenderer{g: g, frame: canvas.NewRectangle(color.Transparent), top: canvas.NewText("", theme.Color(theme.ColorNameForeground))}
	r.frame.StrokeWidth = 1
	r.top.TextSize = theme.CaptionTextSize()
	return r
}

type graphRenderer struct {
	g       *usageGraph
	frame   *canvas.Rectangle
	top     *canvas.Text
	up, dn  []*canvas.Line
	objects []fyne.CanvasObject
}

func (r *graphRenderer) MinSize() fyne.Size { return fyne.NewSize(300, 110) }

func (r *graphRenderer) Layout(size fyne.Size) {
	r.frame.Resize(size)
	r.top.Move(fyne.NewPos(4, 2))
	r.place(size)
}

// place rebuilds the two lines for size.
func (r *graphRenderer) place(size fyne.Size) {
	g := r.g
	span := g.now.Sub(g.since)
	peak := r.g.peak()
	pos := func(t time.Time, v int64) fyne.Position {
		x := float32(0)
		if span > 0 {
			x = size.Width * float32(t.Sub(g.since)) / float32(span)
		}
		x = min(max(x, 0), size.Width)
		return fyne.NewPos(x, size.Height-2-(size.Height-20)*float32(float64(v)/g.bucket.Seconds()/peak))
	}
	// A step per bucket and a riser between buckets, so that a single
	// bucket still shows.
	mk := func(c color.Color, val func(usagePoint) int64) []*canvas.Line {
		var ls []*canvas.Line
		seg := func(a, b fyne.Position) {
			l := canvas.NewLine(c)
			l.StrokeWidth = 2
			l.Position1, l.Position2 = a, b
			ls = append(ls, l)
		}
		for i, p := range g.points {
			start, end := pos(p.start, val(p)), pos(p.start.Add(g.bucket), val(p))
			if i > 0 {
				seg(pos(p.start, val(g.points[i-1])), start)
			}
			seg(start, end)
		}
		return ls
	}
	r.up = mk(theme.Color(theme.ColorNamePrimary), func(p usagePoint) int64 { return p.sent })
	r.dn = mk(theme.Color(theme.ColorNameSuccess), func(p usagePoint) int64 { return p.received })
	r.objects = []fyne.CanvasObject{r.frame, r.top}
	for _, l := range append(r.up, r.dn...) {
		r.objects = append(r.objects, l)
	}
}

func (r *graphRenderer) Refresh() {
	r.frame.StrokeColor = theme.Color(theme.ColorNameForeground)
	r.top.Color = theme.Color(theme.ColorNameForeground)
	r.top.Text = "peak " + humanize.IBytes(uint64(r.g.peak())) + "/s  ·  blue: upload, green: download"
	r.Layout(r.g.Size())
	canvas.Refresh(r.g)
}

func (r *graphRenderer) Objects() []fyne.CanvasObject { return r.objects }
func (r *graphRenderer) Destroy()                     {}
