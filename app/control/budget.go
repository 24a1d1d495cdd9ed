package control

import (
	"net/http"
	"time"
)

// BudgetStatus is the volunteer's budget in /api/status: whether the node
// serves, the caps in force, the quota and the traffic so far.
type BudgetStatus struct {
	Serving bool   `json:"serving"`
	Reason  string `json:"reason,omitempty"` // "paused", "off window", "quota reached"
	// ResumeAt is when serving resumes by itself (an off window's end, the
	// next quota month); zero when paused or serving.
	ResumeAt time.Time `json:"resume_at,omitzero"`
	Note     string    `json:"note,omitempty"` // a warning for people (quota at 90 %, paused …)
	// Caps in force after the schedule ("0": no cap, "off").
	Upload   string `json:"upload"`
	Download string `json:"download"`
	Window   int    `json:"window"` // schedule window in force; -1 none
	// Quota month: bytes sent so far against the quota (0: none).
	QuotaBytes   int64     `json:"quota_bytes"`
	QuotaUsed    int64     `json:"quota_used"`
	QuotaWarn    bool      `json:"quota_warn"`
	QuotaResetAt time.Time `json:"quota_reset_at"`
	// Measured over the last seconds, bytes/s.
	SentRate     int64 `json:"sent_rate"`
	ReceivedRate int64 `json:"received_rate"`
	// Month to date, per site and in total.
	MonthSent     int64                `json:"month_sent"`
	MonthReceived int64                `json:"month_received"`
	Sites         map[string]SiteUsage `json:"sites,omitempty"`
	// Headroom is what this node tells the others in its heartbeats.
	SpareRate int64 `json:"spare_rate"` // -1: no cap
	QuotaLeft int64 `json:"quota_left"` // -1: no quota
}

// SiteUsage is one site's traffic.
type SiteUsage struct {
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
}

// UsageBucket is one 5-minute bucket of GET /api/usage.
type UsageBucket struct {
	Start    time.Time `json:"start"`
	Sent     int64     `json:"sent"`
	Received int64     `json:"received"`
}

// UsageAPI serves the usage record: 5-minute buckets of one site ("" for
// the total) since a time.
type UsageAPI interface {
	Usage(site string, since time.Time) []UsageBucket
}

// EnableUsage serves GET /api/usage?site=host&since=RFC3339 (default: the
// last 24 hours; at most the 31+ days kept).
func (s *Server) EnableUsage(api UsageAPI) {
	s.mux.HandleFunc("GET /api/usage", func(w http.ResponseWriter, r *http.Request) {
		since := time.Now().Add(-24 * time.Hour)
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, &FieldError{Field: "since", Msg: "want an RFC 3339 time such as 2026-12-01T00:00:00Z"})
				return
			}
			since = t
		}
		site := r.URL.Query().Get("site")
		writeJSON(w, http.StatusOK, map[string]any{"site": site, "bucket_seconds": 300, "buckets": api.Usage(site, since)})
	})
}
