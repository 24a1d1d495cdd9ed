package coralurl

import (
	"strings"
	"testing"
)

func TestDefaultOriginPorts(t *testing.T) {
	s, err := ParsePorts(DefaultOriginPorts)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[int]bool{
		80: true, 443: true, 1024: true, 8080: true, 65535: true,
		0: false, 22: false, 25: false, 79: false, 81: false, 444: false, 1023: false,
		1719: false, 2049: false, 5060: false, 6000: false, 6667: false, 10080: false,
	}
	for port, want := range tests {
		if got := s.Allows(port); got != want {
			t.Errorf("default Allows(%d) = %v, want %v", port, got, want)
		}
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		specs   []string
		allowed []int
		refused []int
		err     string
	}{
		{specs: []string{"8080"}, allowed: []int{8080}, refused: []int{80, 8081}},
		{specs: []string{" 6000 ", "1-100"}, allowed: []int{6000, 1 + 1, 80}, refused: []int{22, 101, 6001}},
		{specs: []string{"100-100"}, allowed: []int{100}, refused: []int{99, 101}},
		{specs: nil, refused: []int{80, 443}},
		{specs: []string{"0"}, err: "1..65535"},
		{specs: []string{"65536"}, err: "1..65535"},
		{specs: []string{"-5"}, err: "want a port"},
		{specs: []string{"+80"}, err: "want a port"},
		{specs: []string{"http"}, err: "want a port"},
		{specs: []string{""}, err: "want a port"},
		{specs: []string{"90-80"}, err: "ends before it starts"},
		{specs: []string{"80-"}, err: "want a port"},
	}
	for _, tc := range tests {
		s, err := ParsePorts(tc.specs)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePorts(%q) error %v, want one containing %q", tc.specs, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePorts(%q): %v", tc.specs, err)
			continue
		}
		for _, p := range tc.allowed {
			if !s.Allows(p) {
				t.Errorf("ParsePorts(%q) refuses %d", tc.specs, p)
			}
		}
		for _, p := range tc.refused {
			if s.Allows(p) {
				t.Errorf("ParsePorts(%q) allows %d", tc.specs, p)
			}
		}
	}
}

// FuzzParsePorts: any accepted list allows only ports in 1..65535.
func FuzzParsePorts(f *testing.F) {
	for _, s := range []string{"80", "1024-65535", "0", "5-3", " 7 ", "-", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParsePorts(strings.Split(spec, ","))
		if err != nil {
			return
		}
		for _, p := range []int{-1, 0, 65536} {
			if s.Allows(p) {
				t.Fatalf("ParsePorts(%q) allows %d", spec, p)
			}
		}
	})
}
