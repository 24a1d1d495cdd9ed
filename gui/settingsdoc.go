package gui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/coralcdn/coral/app/control"
)

// settingsAPI is what the Settings tab needs from a node: control's
// SettingsAPI (GET and PUT /api/settings). A node without it gets a
// Settings tab without the budget.
type settingsAPI interface {
	Settings(ctx context.Context) (json.RawMessage, error)
	UpdateSettings(ctx context.Context, patch json.RawMessage) (json.RawMessage, error)
}

// settingsDoc mirrors the JSON of /api/settings. Rates and sizes stay the
// text people type ("2MiB/s", "300GiB", "0", "off"): the node parses and
// checks them, so the window links none of its parsers.
type settingsDoc struct {
	Paused    bool         `json:"paused"`
	Bandwidth bandwidthDoc `json:"bandwidth"`
	Sites     []siteDoc    `json:"sites"`
	Cache     cacheDoc     `json:"cache"`
}

// cacheDoc is the cache's size ("4GiB", "0": no limit) and location (the
// data directory, used from the node's next start).
type cacheDoc struct {
	MaxBytes string `json:"max_bytes"`
	DataDir  string `json:"data_dir"`
}

type bandwidthDoc struct {
	Upload        string      `json:"upload"`
	Download      string      `json:"download"`
	MonthlyQuota  string      `json:"monthly_quota"`
	QuotaResetDay int         `json:"quota_reset_day"`
	Schedule      []windowDoc `json:"schedule"`
}

type windowDoc struct {
	Days     []string `json:"days"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Upload   *string  `json:"upload,omitempty"`
	Download *string  `json:"download,omitempty"`
}

type siteDoc struct {
	Host   string  `json:"host"`
	Weight float64 `json:"weight"`
}

// String words a window for the schedule list.
func (w windowDoc) String() string {
	s := fmt.Sprintf("%s %s–%s:", strings.Join(w.Days, " "), w.From, w.To)
	if w.Upload != nil {
		s += " upload " + capWords(*w.Upload)
	}
	if w.Download != nil {
		s += " download " + capWords(*w.Download)
	}
	return s
}

func capWords(rate string) string {
	switch strings.TrimSpace(strings.ToLower(rate)) {
	case "0":
		return "no cap"
	case "off":
		return "off"
	}
	return rate
}

// patchFrom is the JSON merge patch that turns old into cur: only the keys
// that changed, lists whole (a merge patch replaces lists).
func patchFrom(old, cur settingsDoc) map[string]any {
	old, cur = old.normal(), cur.normal()
	p := map[string]any{}
	if old.Paused != cur.Paused {
		p["paused"] = cur.Paused
	}
	bw := map[string]any{}
	ob, cb := old.Bandwidth, cur.Bandwidth
	for key, pair := range map[string][2]any{
		"upload": {ob.Upload, cb.Upload}, "download": {ob.Download, cb.Download},
		"monthly_quota": {ob.MonthlyQuota, cb.MonthlyQuota}, "quota_reset_day": {ob.QuotaResetDay, cb.QuotaResetDay},
		"schedule": {ob.Schedule, cb.Schedule},
	} {
		if !reflect.DeepEqual(pair[0], pair[1]) {
			bw[key] = pair[1]
		}
	}
	if len(bw) > 0 {
		p["bandwidth"] = bw
	}
	cache := map[string]any{}
	if old.Cache.MaxBytes != cur.Cache.MaxBytes {
		cache["max_bytes"] = cur.Cache.MaxBytes
	}
	if old.Cache.DataDir != cur.Cache.DataDir {
		cache["data_dir"] = cur.Cache.DataDir
	}
	if len(cache) > 0 {
		p["cache"] = cache
	}
	if !reflect.DeepEqual(old.Sites, cur.Sites) {
		p["sites"] = append([]siteDoc{}, cur.Sites...)
	}
	return p
}

// normal makes "none" one value: no list and an empty list are the same.
func (d settingsDoc) normal() settingsDoc {
	if d.Sites == nil {
		d.Sites = []siteDoc{}
	}
	if d.Bandwidth.Schedule == nil {
		d.Bandwidth.Schedule = []windowDoc{}
	}
	return d
}

// fieldKey reads the key a refused change names in an error's text,
// "bandwidth.schedule[1].to: want …", as control.FieldError prints it (a
// window checking its own fields says it the same way).
var fieldKey = regexp.MustCompile(`^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.+)$`)

// splitFieldError returns the refused key ("" when the error names none)
// and the message for people, which says which window or site when the key
// has an index ("Window 2, to: …").
func splitFieldError(err error) (key, msg string) {
	var fe *control.FieldError
	if m := fieldKey.FindStringSubmatch(err.Error()); errors.As(err, &fe) {
		key, msg = fe.Field, fe.Msg
	} else if m != nil {
		key, msg = m[1], m[2]
	} else {
		return "", err.Error()
	}
	if im := indexedKey.FindStringSubmatch(key); im != nil {
		n, _ := strconv.Atoi(im[2])
		what := map[string]string{"schedule": "Window", "sites": "Site"}[im[1]]
		if what == "" {
			what = im[1]
		}
		prefix := fmt.Sprintf("%s %d", what, n+1)
		if im[3] != "" {
			prefix += ", " + strings.ReplaceAll(im[3], "_", " ")
		}
		msg = prefix + ": " + msg
	}
	return key, msg
}

var indexedKey = regexp.MustCompile(`([a-z_]+)\[(\d+)\](?:\.([a-z_]+))?`)
