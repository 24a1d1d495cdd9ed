package gui

import (
	"context"
	"time"

	"github.com/coralcdn/coral/app/control"
)

// usageAPI is what the graphs and the Sites tab need: control.Client's
// Usage (GET /api/usage), 5-minute buckets of one site or all since a time.
type usageAPI interface {
	Usage(ctx context.Context, site string, since time.Time) ([]control.UsageBucket, error)
}

// usageEvery is how often the window reads the last 24 hours of buckets
// again: they change every 5 minutes, the rates in the status every 2 s.
const usageEvery = 30 * time.Second

// usageState is the last day of buckets the window read (UI goroutine).
type usageState struct {
	day  []control.UsageBucket
	read bool // read once at least
	err  error
	last control.Status
}

// polled is what the poller keeps between reads (under View.pollMu).
type polled struct {
	usageAt time.Time            // the day of buckets last read; zero: never
	sitesAt map[string]time.Time // each period's per-site figures last read
}

// fetchUsage reads the last 24 hours when due (the poller's goroutine).
func (v *View) fetchUsage(ctx context.Context, now time.Time) (day []control.UsageBucket, fetched bool, err error) {
	if v.usage == nil || (!v.polled.usageAt.IsZero() && now.Sub(v.polled.usageAt) < usageEvery) {
		return nil, false, nil
	}
	v.polled.usageAt = now
	day, err = v.usage.Usage(ctx, "", now.Add(-24*time.Hour))
	return day, true, err
}

// showUsage puts the traffic words and the graph on the Overview (UI
// goroutine); st is the latest status, for the rates and the month.
func (v *View) showUsage(st control.Status, now time.Time) {
	if st.Budget == nil {
		return
	}
	today := int64(-1)
	if v.usageSt.err == nil && v.usageSt.read {
		today = control.SentSince(v.usageSt.day, control.Midnight(now))
	}
	span := time.Hour
	if v.overview.period.Selected == periodDay {
		span = 24 * time.Hour
	}
	var pts []usagePoint
	for _, b := range v.usageSt.day {
		if !b.Start.Before(now.Add(-span - 5*time.Minute)) {
			pts = append(pts, usagePoint{start: b.Start, sent: b.Sent, received: b.Received})
		}
	}
	v.overview.showUsage(control.TrafficWords(st.Budget, today), pts, 5*time.Minute, now.Add(-span), now)
}
