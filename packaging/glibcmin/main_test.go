package main

import "testing"

func TestNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"2.34", "2.3.4", true},
		{"2.34", "2.34", false},
		{"2.3.4", "2.3", true},
		{"2.2.5", "2.17", false},
		{"2.17", "2.2.5", true},
	} {
		a, _ := parseVersion(tc.a)
		b, _ := parseVersion(tc.b)
		if got := newer(a, b); got != tc.want {
			t.Errorf("newer(%s, %s) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if _, ok := parseVersion("2.x"); ok {
		t.Error("parseVersion(2.x) accepted")
	}
}
