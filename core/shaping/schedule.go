package shaping

import (
	"fmt"
	"strings"
	"time"
)

// Window is one weekly time window in local time. It applies on Days from
// From up to (not including) To; a window whose To is not after From runs
// across midnight into the next day (a "fri" 22:00-06:00 window covers
// Saturday morning too). Within it, Upload and Download replace the
// configured caps; nil keeps the configured value.
type Window struct {
	Days     []string `toml:"days" json:"days"`
	From     string   `toml:"from" json:"from"`
	To       string   `toml:"to" json:"to"`
	Upload   *Rate    `toml:"upload,omitempty" json:"upload,omitempty"`
	Download *Rate    `toml:"download,omitempty" json:"download,omitempty"`
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// FieldError is a validation failure of one field; Field is a dotted path
// relative to what was validated ("days[2]", "upload").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

// parseClock reads "HH:MM" (00:00-24:00) as minutes after midnight: two
// digits each, no sign or space, hours 0-24, minutes 0-59, and 24 only
// as 24:00.
func parseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' || !twoDigits(s[:2]) || !twoDigits(s[3:]) {
		return 0, fmt.Errorf(`want "HH:MM", got %q`, s)
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, fmt.Errorf(`want "HH:MM" between 00:00 and 24:00, got %q`, s)
	}
	return h*60 + m, nil
}

func twoDigits(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// endOfDay is 24:00, which only ends a window.
const endOfDay = 24 * 60

// Validate checks the window; the error names the field.
func (w Window) Validate() error {
	if len(w.Days) == 0 {
		return &FieldError{"days", `must name at least one day ("mon" … "sun")`}
	}
	for i, d := range w.Days {
		if _, ok := dayNames[strings.ToLower(d)]; !ok {
			return &FieldError{fmt.Sprintf("days[%d]", i), fmt.Sprintf(`want one of mon, tue, wed, thu, fri, sat, sun; got %q`, d)}
		}
	}
	from, err := parseClock(w.From)
	if err != nil {
		return &FieldError{"from", err.Error()}
	}
	if from == endOfDay {
		return &FieldError{"from", `24:00 only ends a window (start at "00:00")`}
	}
	to, err := parseClock(w.To)
	if err != nil {
		return &FieldError{"to", err.Error()}
	}
	if from == to {
		return &FieldError{"to", "equals from: the window would be empty (use 00:00 to 24:00 for a whole day)"}
	}
	if w.Upload == nil && w.Download == nil {
		return &FieldError{"upload", "a window must set upload, download or both"}
	}
	return nil
}

// contains says whether local time t falls in the window. Wall-clock
// minutes are compared, so a window follows the clock across daylight-
// saving changes (an 08:00 window starts at 08:00 in summer and winter).
func (w Window) contains(t time.Time) bool {
	from, err1 := parseClock(w.From)
	to, err2 := parseClock(w.To)
	if err1 != nil || err2 != nil {
		return false
	}
	now := t.Hour()*60 + t.Minute()
	if from < to {
		return now >= from && now < to && w.onDay(t.Weekday())
	}
	// Across midnight: the evening part on a listed day, the morning part on
	// the day after one.
	if now >= from {
		return w.onDay(t.Weekday())
	}
	return now < to && w.onDay((t.Weekday()+6)%7)
}

func (w Window) onDay(d time.Weekday) bool {
	for _, name := range w.Days {
		if dayNames[strings.ToLower(name)] == d {
			return true
		}
	}
	return false
}

// Caps are the upload and download caps in force.
type Caps struct {
	Upload   Rate `json:"upload"`
	Download Rate `json:"download"`
}

// Schedule is the ordered list of windows; the first that contains a time
// wins, and outside all of them Base applies.
type Schedule struct {
	Base    Caps
	Windows []Window
}

// At returns the caps in force at t, read in loc (the volunteer's local
// time zone), and the index of the window that set them (-1: none).
func (s Schedule) At(t time.Time, loc *time.Location) (Caps, int) {
	lt := t.In(loc)
	for i, w := range s.Windows {
		if w.contains(lt) {
			c := s.Base
			if w.Upload != nil {
				c.Upload = *w.Upload
			}
			if w.Download != nil {
				c.Download = *w.Download
			}
			return c, i
		}
	}
	return s.Base, -1
}
