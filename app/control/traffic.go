package control

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// TrafficWords says what the node sends and receives, against its caps and
// quota, for the window and the status page, e.g. "Now: up 1.2 MiB/s, down
// 300 KiB/s · today 2.0 GiB sent · this month 40 GiB sent of 300 GiB (13 %),
// resets on the 1st". today < 0: not known.
func TrafficWords(b *BudgetStatus, today int64) string {
	if b == nil {
		return ""
	}
	parts := []string{fmt.Sprintf("Now: up %s/s, down %s/s", humanize.IBytes(uint64(max(b.SentRate, 0))), humanize.IBytes(uint64(max(b.ReceivedRate, 0))))}
	if caps := capsWords(b); caps != "" {
		parts[0] += " (" + caps + ")"
	}
	if today >= 0 {
		parts = append(parts, "today "+humanize.IBytes(uint64(today))+" sent")
	}
	month := "this month " + humanize.IBytes(uint64(max(b.MonthSent, 0))) + " sent"
	if b.QuotaBytes > 0 {
		month += fmt.Sprintf(" of %s (%d %%), resets %s", humanize.IBytes(uint64(b.QuotaBytes)), b.QuotaUsed*100/b.QuotaBytes, resumeWords(b.QuotaResetAt, "next month"))
	}
	return strings.Join(append(parts, month), " · ")
}

func capsWords(b *BudgetStatus) string {
	var caps []string
	for _, c := range []struct{ name, v string }{{"upload", b.Upload}, {"download", b.Download}} {
		switch c.v {
		case "", "0":
		case "off":
			caps = append(caps, c.name+" off")
		default:
			caps = append(caps, c.name+" cap "+c.v)
		}
	}
	return strings.Join(caps, ", ")
}

// SiteRow is one site's share of this month's upload.
type SiteRow struct {
	Host           string
	Sent, Received int64
	Share          int // percent of the month's bytes sent
}

// SiteRows lists the month's sites, most sent first.
func SiteRows(b *BudgetStatus) []SiteRow {
	if b == nil {
		return nil
	}
	var total int64
	for _, u := range b.Sites {
		total += u.Sent
	}
	rows := make([]SiteRow, 0, len(b.Sites))
	for host, u := range b.Sites {
		r := SiteRow{Host: host, Sent: u.Sent, Received: u.Received}
		if total > 0 {
			r.Share = int(u.Sent * 100 / total)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Sent != rows[j].Sent {
			return rows[i].Sent > rows[j].Sent
		}
		return rows[i].Host < rows[j].Host
	})
	return rows
}

// SentSince sums the bytes sent in buckets that start at or after t.
func SentSince(buckets []UsageBucket, t time.Time) int64 {
	var n int64
	for _, b := range buckets {
		if !b.Start.Before(t) {
			n += b.Sent
		}
	}
	return n
}

// Midnight is the start of t's day in local time.
func Midnight(t time.Time) time.Time {
	y, m, d := t.Local().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.Local)
}
