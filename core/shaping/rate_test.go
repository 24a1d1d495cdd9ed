package shaping

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
		bad  bool
	}{
		{"2MiB/s", 2 << 20, false},
		{"256KiB/s", 256 << 10, false},
		{"1MB/s", 1000000, false},
		{"1000", 1000, false},
		{"0", Unlimited, false},
		{"off", Off, false},
		{"OFF", Off, false},
		{" 1KiB/s ", 1024, false},
		{"", 0, true},
		{"fast", 0, true},
		{"-1KiB/s", 0, true},
		{"99999999PiB/s", 0, true},
		// Bits are bits: a lowercase b (or "bit") is an eighth of a byte.
		{"10Mbit/s", 1250000, false},
		{"10Mbps", 1250000, false},
		{"10 Mb/s", 1250000, false},
		{"10mbps", 1250000, false},
		{"1Mb/s", 125000, false},
		{"8kbps", 1000, false},
		{"100Mbits/s", 12500000, false},
		{"1Gbit", 125000000, false},
		{"8Kibit/s", 1024, false},
		{"1MBps", 1000000, false},
		{"1.5MB/s", 1500000, false},
		{"2 MiB/s", 2 << 20, false},
		{"0MiB/s", Unlimited, false},
		{"1bit/s", 0, true}, // an eighth of a byte: not a cap
		{"1e3", 0, true},
		{"NaN", 0, true},
		{"-5", 0, true},
		{"+5", 0, true},
		{".5MB/s", 0, true},
		{"5furlongs/s", 0, true},
		{"MiB/s", 0, true},
	} {
		got, err := ParseRate(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("ParseRate(%q) error = %v, want bad=%v", tc.in, err, tc.bad)
			continue
		}
		if !tc.bad && got != tc.want {
			t.Errorf("ParseRate(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestRateRoundTrip(t *testing.T) {
	for _, r := range []Rate{Off, Unlimited, 1024, 2 << 20, 256 << 10, 1500000, 1234, 3 << 40} {
		b, _ := r.MarshalText()
		var back Rate
		if err := back.UnmarshalText(b); err != nil || back != r {
			t.Errorf("%d → %q → %d, %v", r, b, back, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size
		bad  bool
	}{
		{"300GiB", 300 << 30, false},
		{"0", 0, false},
		{"lots", 0, true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"2MiB/s", "0", "off", "1e3", "KiB/s", "18446744073709551615", "10Mbps", "10 Mbit/s", "1.5kb", "7bits/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r < Off || r > maxRate {
			t.Fatalf("ParseRate(%q) = %d out of range", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("ParseRate(%q) = %d writes as %q, which reads back as %d, %v", s, r, r.String(), back, err)
		}
	})
}

func FuzzWindowValidate(f *testing.F) {
	f.Add("mon", "08:00", "18:00")
	f.Add("sun", "22:00", "06:00")
	f.Add("xyz", "24:00", "7:0")
	f.Fuzz(func(t *testing.T, day, from, to string) {
		up := Rate(1024)
		w := Window{Days: []string{day}, From: from, To: to, Upload: &up}
		if w.Validate() == nil {
			Schedule{Windows: []Window{w}}.At(testTime(t), testLoc(t, "Europe/Berlin"))
		}
	})
}

func TestRateRefusesABareNumber(t *testing.T) {
	var r Rate
	for _, in := range []string{`5`, `-1`, `true`, `{}`} {
		if err := json.Unmarshal([]byte(in), &r); err == nil || !strings.Contains(err.Error(), `want a string such as "2MiB/s", "0" or "off"`) {
			t.Errorf("JSON %s: error %v, want the string form named", in, err)
		}
	}
	if err := json.Unmarshal([]byte(`"10Mbps"`), &r); err != nil || r != 1250000 {
		t.Errorf(`JSON "10Mbps" = %d, %v`, r, err)
	}
	r = 7
	if err := json.Unmarshal([]byte(`null`), &r); err != nil || r != 7 {
		t.Errorf("JSON null changed the rate to %d, %v", r, err)
	}
	if err := r.UnmarshalTOML(int64(5)); err == nil || !strings.Contains(err.Error(), "want a string") {
		t.Errorf("TOML 5: %v", err)
	}
}
