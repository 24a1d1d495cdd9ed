package control

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// usagePoint is one bucket of traffic: bytes sent and received from Start
// for the bucket's length.
type usagePoint struct {
	Start          time.Time
	Sent, Received int64
}

// Graph geometry, in SVG user units.
const (
	graphW, graphH = 520, 140
	graphLeft      = 70 // room for the rate labels
	graphTop       = 18 // room for the legend
	graphBottom    = 20 // room for the time labels
)

// usageSVG draws upload and download rates over [since, now] as an inline
// SVG (no external assets: the page works offline and under a strict CSP).
func usageSVG(title string, points []usagePoint, bucket time.Duration, since, now time.Time) template.HTML {
	var peak float64 = 1
	for _, p := range points {
		peak = max(peak, float64(p.Sent)/bucket.Seconds(), float64(p.Received)/bucket.Seconds())
	}
	plotW, plotH := float64(graphW-graphLeft-4), float64(graphH-graphTop-graphBottom)
	x := func(t time.Time) float64 {
		return graphLeft + plotW*float64(t.Sub(since))/float64(now.Sub(since))
	}
	y := func(bytes int64) float64 { return graphTop + plotH - plotH*float64(bytes)/bucket.Seconds()/peak }
	// A step per bucket, from its start to its end, so that a single
	// bucket (a node up for minutes) still shows.
	line := func(val func(usagePoint) int64) string {
		var b strings.Builder
		for _, p := range points {
			from, to := p.Start, p.Start.Add(bucket)
			if to.Before(since) || from.After(now) {
				continue
			}
			from, to = maxTime(from, since), minTime(to, now)
			fmt.Fprintf(&b, "%.1f,%.1f %.1f,%.1f ", x(from), y(val(p)), x(to), y(val(p)))
		}
		return strings.TrimSpace(b.String())
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="usage" width="%d" height="%d" role="img" aria-label="%s">`, graphW, graphH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<rect class="bg" x="%d" y="%d" width="%.0f" height="%.0f"/>`, graphLeft, graphTop, plotW, plotH)
	fmt.Fprintf(&b, `<text x="0" y="%d">%s/s</text><text x="0" y="%.0f">0</text>`, graphTop+10, humanize.IBytes(uint64(peak)), graphTop+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">now</text>`,
		graphLeft, graphH-4, "−"+shortDuration(now.Sub(since)), graphW-4, graphH-4)
	fmt.Fprintf(&b, `<text x="%d" y="12" class="up">— upload</text><text x="%d" y="12" class="down">— download</text>`, graphLeft, graphLeft+90)
	fmt.Fprintf(&b, `<polyline class="up" fill="none" points="%s"/>`, line(func(p usagePoint) int64 { return p.Sent }))
	fmt.Fprintf(&b, `<polyline class="down" fill="none" points="%s"/>`, line(func(p usagePoint) int64 { return p.Received }))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func shortDuration(d time.Duration) string {
	if d >= time.Hour && d%time.Hour == 0 {
		return fmt.Sprintf("%d h", d/time.Hour)
	}
	return fmt.Sprintf("%d min", d/time.Minute)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
