package control

import (
	"testing"
	"time"
)

func TestTrafficWords(t *testing.T) {
	reset := time.Date(2031, 1, 1, 0, 0, 0, 0, time.Local)
	for _, c := range []struct {
		b     *BudgetStatus
		today int64
		want  string
	}{
		{nil, 0, ""},
		{&BudgetStatus{Upload: "0", Download: "0", MonthSent: 3 << 30}, -1, "Now: up 0 B/s, down 0 B/s · this month 3.0 GiB sent"},
		{&BudgetStatus{SentRate: 1258291, ReceivedRate: 307200, Upload: "2MiB/s", Download: "off", MonthSent: 40 << 30,
			QuotaBytes: 300 << 30, QuotaUsed: 40 << 30, QuotaResetAt: reset}, 2 << 30,
			"Now: up 1.2 MiB/s, down 300 KiB/s (upload cap 2MiB/s, download off) · today 2.0 GiB sent · this month 40 GiB sent of 300 GiB (13 %), resets on the 1st"},
	} {
		if got := TrafficWords(c.b, c.today); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

func TestSiteRowsAndSums(t *testing.T) {
	rows := SiteRows(&BudgetStatus{Sites: map[string]SiteUsage{"b.org": {Sent: 100}, "a.com": {Sent: 300, Received: 5}, "c.net": {}}})
	if len(rows) != 3 || rows[0] != (SiteRow{"a.com", 300, 5, 75}) || rows[1].Host != "b.org" || rows[1].Share != 25 || rows[2].Share != 0 {
		t.Errorf("rows %+v", rows)
	}
	if SiteRows(nil) != nil || len(SiteRows(&BudgetStatus{})) != 0 {
		t.Errorf("no budget, no rows")
	}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.Local)
	bs := []UsageBucket{{Start: now.Add(-13 * time.Hour), Sent: 7}, {Start: Midnight(now), Sent: 5}, {Start: now, Sent: 1}}
	if got := SentSince(bs, Midnight(now)); got != 6 {
		t.Errorf("sent today %d", got)
	}
}
