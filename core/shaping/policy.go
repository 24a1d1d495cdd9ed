package shaping

import (
	"fmt"
	"time"
)

// Policy is the volunteer's budget as set in the config and the settings:
// every zero value means "unlimited / always on".
type Policy struct {
	Paused        bool
	Upload        Rate // everything sent for the network; Unlimited: no cap
	Download      Rate // origin and peer downloads
	MonthlyQuota  Size // bytes sent per quota month; 0: none
	QuotaResetDay int  // 1-28, local time; 0 means 1
	Schedule      []Window
	Weights       map[string]float64 // site host → fair-share weight (default 1)
}

// Validate checks the policy; a FieldError names the field
// ("schedule[1].to", "quota_reset_day").
func (p Policy) Validate() error {
	if p.Upload < Off {
		return &FieldError{"upload", "must not be negative"}
	}
	if p.Download < Off {
		return &FieldError{"download", "must not be negative"}
	}
	if p.MonthlyQuota < 0 {
		return &FieldError{"monthly_quota", "must not be negative"}
	}
	if p.QuotaResetDay < 0 || p.QuotaResetDay > 28 {
		return &FieldError{"quota_reset_day", fmt.Sprintf("want a day of the month from 1 to 28, got %d", p.QuotaResetDay)}
	}
	for i, w := range p.Schedule {
		if err := w.Validate(); err != nil {
			fe := err.(*FieldError)
			return &FieldError{fmt.Sprintf("schedule[%d].%s", i, fe.Field), fe.Msg}
		}
	}
	for host, w := range p.Weights {
		if !(w > 0 && w <= 1000) {
			return &FieldError{fmt.Sprintf("sites[%s].weight", host), fmt.Sprintf("want a weight above 0 and at most 1000, got %g", w)}
		}
	}
	return nil
}

// PeriodStart is the start of the quota month containing now: local
// midnight of resetDay (1-28) in loc, this month or the one before.
func PeriodStart(now time.Time, resetDay int, loc *time.Location) time.Time {
	if resetDay < 1 {
		resetDay = 1
	}
	lt := now.In(loc)
	y, m, d := lt.Date()
	if d < resetDay {
		m--
	}
	return time.Date(y, m, resetDay, 0, 0, 0, 0, loc)
}

// NextPeriod is the start of the quota month after the one containing now.
func NextPeriod(now time.Time, resetDay int, loc *time.Location) time.Time {
	s := PeriodStart(now, resetDay, loc)
	return time.Date(s.Year(), s.Month()+1, s.Day(), 0, 0, 0, 0, loc)
}
