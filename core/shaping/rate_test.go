package shaping

import "testing"

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
	for _, s := range []string{"2MiB/s", "0", "off", "1e3", "KiB/s", "18446744073709551615"} {
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
