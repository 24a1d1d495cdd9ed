package control

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestUsageSVG(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	since := now.Add(-time.Hour)
	var pts []usagePoint
	for i := 0; i < 12; i++ {
		pts = append(pts, usagePoint{Start: since.Add(time.Duration(i) * 5 * time.Minute), Sent: int64(i) * 300 << 20, Received: 300 << 10})
	}
	svg := string(usageSVG("upload & download, last hour", pts, 5*time.Minute, since, now))
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not well-formed: %v\n%s", err, svg)
	}
	for _, want := range []string{"11 MiB/s", "−1 h", ">now<", `aria-label="upload &amp; download, last hour"`, `class="up"`, `class="down"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q:\n%s", want, svg)
		}
	}
	if n := strings.Count(strings.Split(strings.Split(svg, `<polyline class="up" fill="none" points="`)[1], `"`)[0], ","); n != 24 {
		t.Errorf("upload line has %d points, want a step (2) for each of 12 buckets", n)
	}
	// One bucket, a node up for a minute: still a visible step.
	one := string(usageSVG("one", []usagePoint{{Start: now.Add(-3 * time.Minute), Sent: 600}}, 5*time.Minute, since, now))
	if pts := strings.Split(strings.Split(one, `<polyline class="up" fill="none" points="`)[1], `"`)[0]; strings.Count(pts, ",") != 2 {
		t.Errorf("one bucket drawn as %q", pts)
	}
	if strings.Contains(svg, "http") {
		t.Errorf("svg refers to something outside")
	}
	// No traffic: a flat line, no division by zero.
	empty := string(usageSVG("none", nil, 5*time.Minute, since, now))
	if strings.Contains(empty, "NaN") || strings.Contains(empty, "Inf") {
		t.Errorf("empty graph: %s", empty)
	}
}
