package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coralcdn/coral/core/shaping"
)

// Bandwidth is the volunteer's budget: caps, schedule and quota. Every
// default means "unlimited / always on".
type Bandwidth struct {
	// Upload caps everything the node sends for the network; "0": no cap.
	Upload shaping.Rate `toml:"upload" json:"upload"`
	// Download caps origin and peer downloads; "0": no cap.
	Download shaping.Rate `toml:"download" json:"download"`
	// MonthlyQuota bounds the bytes sent per quota month; "0": none.
	MonthlyQuota shaping.Size `toml:"monthly_quota" json:"monthly_quota"`
	// QuotaResetDay is the day of the month (1-28, local time) the quota
	// month starts.
	QuotaResetDay int `toml:"quota_reset_day" json:"quota_reset_day"`
	// Schedule are local-time windows, first match wins; outside them the
	// values above apply.
	Schedule []shaping.Window `toml:"schedule" json:"schedule"`
}

// Site is an origin site's fair-share weight for when the upload cap binds.
type Site struct {
	Host   string  `toml:"host" json:"host"`
	Weight float64 `toml:"weight" json:"weight"`
}

// DefaultBandwidth is no cap, no schedule, no quota.
func DefaultBandwidth() Bandwidth { return Bandwidth{QuotaResetDay: 1} }

// Policy is the budget these values and site weights describe.
func (b Bandwidth) Policy(paused bool, sites []Site) shaping.Policy {
	p := shaping.Policy{
		Paused: paused, Upload: b.Upload, Download: b.Download,
		MonthlyQuota: b.MonthlyQuota, QuotaResetDay: b.QuotaResetDay, Schedule: b.Schedule,
		Weights: map[string]float64{},
	}
	for _, s := range sites {
		p.Weights[strings.ToLower(s.Host)] = s.Weight
	}
	return p
}

// validateBudget checks [bandwidth] and [[sites]]; keys are named as in the
// file ("bandwidth.schedule[1].to", "sites[0].weight").
func validateBudget(b Bandwidth, sites []Site) []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[string]bool{}
	for i, s := range sites {
		key := fmt.Sprintf("sites[%d]", i)
		host := strings.ToLower(strings.TrimSpace(s.Host))
		switch {
		case host == "" || strings.ContainsAny(host, "/: "):
			bad(key+".host", "want a host name such as \"www.example.com\", got %q", s.Host)
		case seen[host]:
			bad(key+".host", "%q is listed twice", s.Host)
		}
		seen[host] = true
		if !(s.Weight > 0 && s.Weight <= 1000) {
			bad(key+".weight", "want a weight above 0 and at most 1000, got %g", s.Weight)
		}
	}
	if b.QuotaResetDay < 1 || b.QuotaResetDay > 28 {
		bad("bandwidth.quota_reset_day", "want a day of the month from 1 to 28, got %d", b.QuotaResetDay)
	}
	if b.MonthlyQuota < 0 {
		bad("bandwidth.monthly_quota", "must not be negative")
	}
	for i, w := range b.Schedule {
		var fe *shaping.FieldError
		if err := w.Validate(); errors.As(err, &fe) {
			bad(fmt.Sprintf("bandwidth.schedule[%d].%s", i, fe.Field), "%s", fe.Msg)
		}
	}
	return errs
}
