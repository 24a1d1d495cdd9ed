package shaping

import (
	"errors"
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the zones are known on any machine the tests run on
)

func testLoc(t testing.TB, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v (tzdata missing?)", name, err)
	}
	return loc
}

func testTime(t testing.TB) time.Time { return time.Date(2026, 3, 29, 12, 0, 0, 0, time.UTC) }

func rp(r Rate) *Rate { return &r }

func TestScheduleAt(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	ny := testLoc(t, "America/New_York")
	weekdays := Window{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "18:00", Upload: rp(256 << 10)}
	night := Window{Days: []string{"fri", "sat"}, From: "22:00", To: "06:00", Upload: rp(Off)}
	early := Window{Days: []string{"sun"}, From: "02:00", To: "04:00", Download: rp(1 << 20)}
	s := Schedule{Base: Caps{Upload: 2 << 20}, Windows: []Window{weekdays, night, early}}
	for _, tc := range []struct {
		name string
		at   time.Time
		loc  *time.Location
		win  int
		up   Rate
	}{
		{"weekday inside", time.Date(2026, 12, 7, 9, 0, 0, 0, berlin), berlin, 0, 256 << 10},
		{"weekday at from", time.Date(2026, 12, 7, 8, 0, 0, 0, berlin), berlin, 0, 256 << 10},
		{"weekday at to is outside", time.Date(2026, 12, 7, 18, 0, 0, 0, berlin), berlin, -1, 2 << 20},
		{"one minute before from", time.Date(2026, 12, 7, 7, 59, 0, 0, berlin), berlin, -1, 2 << 20},
		{"weekend day", time.Date(2026, 12, 6, 9, 0, 0, 0, berlin), berlin, -1, 2 << 20},
		{"friday night", time.Date(2026, 12, 4, 23, 30, 0, 0, berlin), berlin, 1, Off},
		{"saturday morning after friday night", time.Date(2026, 12, 5, 5, 59, 0, 0, berlin), berlin, 1, Off},
		{"sunday morning after saturday night", time.Date(2026, 12, 6, 3, 0, 0, 0, berlin), berlin, 1, Off},
		{"monday morning: sunday not listed", time.Date(2026, 12, 7, 3, 0, 0, 0, berlin), berlin, -1, 2 << 20},
		{"first match wins over later windows", time.Date(2026, 12, 6, 3, 0, 0, 0, berlin), berlin, 1, Off},
		// 2026-03-29 Berlin springs 02:00 → 03:00; the night window that
		// began on Saturday still ends at 06:00 on the wall clock (CEST).
		{"spring forward: night window still on by wall clock", time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC), berlin, 1, Off},
		{"spring forward: 06:00 CEST ends the night window", time.Date(2026, 3, 29, 4, 0, 0, 0, time.UTC), berlin, -1, 2 << 20},
		{"spring forward: 05:59 CEST still in it", time.Date(2026, 3, 29, 3, 59, 0, 0, time.UTC), berlin, 1, Off},
		// 2026-10-25 Berlin falls back 03:00 → 02:00: 06:00 CET is 05:00 UTC.
		{"fall back: 05:59 CET in the night window", time.Date(2026, 10, 25, 4, 59, 0, 0, time.UTC), berlin, 1, Off},
		{"fall back: 06:00 CET ends it", time.Date(2026, 10, 25, 5, 0, 0, 0, time.UTC), berlin, -1, 2 << 20},
		{"weekday window in winter (UTC+1)", time.Date(2026, 1, 5, 7, 0, 0, 0, time.UTC), berlin, 0, 256 << 10},
		{"weekday window in summer (UTC+2)", time.Date(2026, 7, 6, 6, 0, 0, 0, time.UTC), berlin, 0, 256 << 10},
		{"same instant, other zone", time.Date(2026, 7, 6, 6, 0, 0, 0, time.UTC), ny, -1, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			caps, win := s.At(tc.at, tc.loc)
			if win != tc.win || caps.Upload != tc.up {
				t.Errorf("At(%s) = window %d upload %v, want window %d upload %v", tc.at.In(tc.loc), win, caps.Upload, tc.win, tc.up)
			}
		})
	}
}

func TestScheduleDownloadOnlyKeepsUpload(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	s := Schedule{Base: Caps{Upload: 1000, Download: 0}, Windows: []Window{{Days: []string{"sun"}, From: "00:00", To: "24:00", Download: rp(5000)}}}
	caps, win := s.At(time.Date(2026, 12, 6, 23, 59, 0, 0, berlin), berlin)
	if win != 0 || caps.Upload != 1000 || caps.Download != 5000 {
		t.Fatalf("got %+v window %d", caps, win)
	}
}

func TestWindowValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		w     Window
		field string
	}{
		{"ok", Window{Days: []string{"mon"}, From: "08:00", To: "18:00", Upload: rp(1)}, ""},
		{"no days", Window{From: "08:00", To: "18:00", Upload: rp(1)}, "days"},
		{"bad day", Window{Days: []string{"mon", "funday"}, From: "08:00", To: "18:00", Upload: rp(1)}, "days[1]"},
		{"bad from", Window{Days: []string{"mon"}, From: "8am", To: "18:00", Upload: rp(1)}, "from"},
		{"bad to", Window{Days: []string{"mon"}, From: "08:00", To: "25:00", Upload: rp(1)}, "to"},
		{"empty", Window{Days: []string{"mon"}, From: "08:00", To: "08:00", Upload: rp(1)}, "to"},
		{"no caps", Window{Days: []string{"mon"}, From: "08:00", To: "18:00"}, "upload"},
		{"negative from", Window{Days: []string{"mon"}, From: "-1:00", To: "06:00", Upload: rp(Off)}, "from"},
		{"negative minutes", Window{Days: []string{"mon"}, From: "00:-5", To: "06:00", Upload: rp(Off)}, "from"},
		{"from 24:00", Window{Days: []string{"mon"}, From: "24:00", To: "06:00", Upload: rp(Off)}, "from"},
		{"to 24:00", Window{Days: []string{"mon"}, From: "22:00", To: "24:00", Upload: rp(Off)}, ""},
	} {
		err := tc.w.Validate()
		var fe *FieldError
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: error %v, want field %q", tc.name, err, tc.field)
		}
	}
}

func TestPeriodStart(t *testing.T) {
	berlin := testLoc(t, "Europe/Berlin")
	for _, tc := range []struct {
		now  time.Time
		day  int
		want time.Time
	}{
		{time.Date(2026, 12, 6, 12, 0, 0, 0, berlin), 1, time.Date(2026, 12, 1, 0, 0, 0, 0, berlin)},
		{time.Date(2026, 12, 6, 12, 0, 0, 0, berlin), 15, time.Date(2026, 11, 15, 0, 0, 0, 0, berlin)},
		{time.Date(2026, 1, 3, 12, 0, 0, 0, berlin), 28, time.Date(2025, 12, 28, 0, 0, 0, 0, berlin)},
		// 23:30 UTC on the 31st is already the 1st in Berlin.
		{time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC), 1, time.Date(2026, 4, 1, 0, 0, 0, 0, berlin)},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, berlin), 1, time.Date(2026, 4, 1, 0, 0, 0, 0, berlin)},
	} {
		if got := PeriodStart(tc.now, tc.day, berlin); !got.Equal(tc.want) {
			t.Errorf("PeriodStart(%s, %d) = %s, want %s", tc.now, tc.day, got, tc.want)
		}
	}
	if got := NextPeriod(time.Date(2026, 12, 6, 0, 0, 0, 0, berlin), 5, berlin); !got.Equal(time.Date(2027, 1, 5, 0, 0, 0, 0, berlin)) {
		t.Errorf("NextPeriod = %s", got)
	}
}

func TestPolicyValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		p     Policy
		field string
	}{
		{Policy{QuotaResetDay: 29}, "quota_reset_day"},
		{Policy{Schedule: []Window{{Days: []string{"mon"}, From: "08:00", To: "x", Upload: rp(1)}}}, "schedule[0].to"},
		{Policy{Weights: map[string]float64{"a.example": 0}}, "sites[a.example].weight"},
		{Policy{Upload: -5}, "upload"},
	} {
		var fe *FieldError
		if err := tc.p.Validate(); !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Validate(%+v) = %v, want field %s", tc.p, err, tc.field)
		}
	}
}

func TestParseClock(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		bad  bool
	}{
		{"00:00", 0, false},
		{"07:30", 450, false},
		{"23:59", 1439, false},
		{"24:00", 1440, false},
		{"24:01", 0, true},
		{"25:00", 0, true},
		{"12:60", 0, true},
		{"-1:00", 0, true},
		{"00:-5", 0, true},
		{"+1:00", 0, true},
		{" 7:00", 0, true},
		{"7:00", 0, true},
		{"07:0", 0, true},
		{"0a:00", 0, true},
		{"", 0, true},
	} {
		got, err := parseClock(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("parseClock(%q) = %d, %v; want %d (bad=%v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"08:00", "24:00", "-1:00", "00:-5", "+1:00", " 7:00", "99:99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseClock(s)
		if err != nil {
			return
		}
		if m < 0 || m > endOfDay {
			t.Fatalf("parseClock(%q) = %d, outside 00:00-24:00", s, m)
		}
		if back := fmt.Sprintf("%02d:%02d", m/60, m%60); back != s {
			t.Fatalf("parseClock(%q) = %d, which writes as %q", s, m, back)
		}
	})
}
