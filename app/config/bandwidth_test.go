package config

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/shaping"
)

func TestBandwidthDefaultsMeanUnlimited(t *testing.T) {
	cfg, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Bandwidth.Policy(false, cfg.Sites)
	if p.Upload != shaping.Unlimited || p.Download != shaping.Unlimited || p.MonthlyQuota != 0 || len(p.Schedule) != 0 || p.QuotaResetDay != 1 {
		t.Fatalf("default budget %+v is not unlimited", p)
	}
}

func TestLoadBandwidth(t *testing.T) {
	cfg, err := Load("testdata/bandwidth.toml")
	if err != nil {
		t.Fatal(err)
	}
	up, off := shaping.Rate(256<<10), shaping.Off
	want := Bandwidth{Upload: 2 << 20, MonthlyQuota: 300 << 30, QuotaResetDay: 1, Schedule: []shaping.Window{
		{Days: []string{"mon", "tue", "wed", "thu", "fri"}, From: "08:00", To: "18:00", Upload: &up},
		{Days: []string{"fri", "sat"}, From: "22:00", To: "06:00", Upload: &off},
	}}
	if !reflect.DeepEqual(cfg.Bandwidth, want) {
		t.Errorf("bandwidth\n got %+v\nwant %+v", cfg.Bandwidth, want)
	}
	if !reflect.DeepEqual(cfg.Sites, []Site{{Host: "www.example.com", Weight: 2}}) {
		t.Errorf("sites %+v", cfg.Sites)
	}
	if err := cfg.Bandwidth.Policy(false, cfg.Sites).Validate(); err != nil {
		t.Errorf("policy of a valid config: %v", err)
	}
}

func TestLoadRejectsBadBudget(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"bad_rate.toml", []string{"bad_rate.toml", `"bandwidth.upload"`, "not a rate"}},
		{"bad_quota.toml", []string{"bad_quota.toml", `"bandwidth.monthly_quota"`, "not a size"}},
		{"bad_reset_day.toml", []string{"bad_reset_day.toml", `"bandwidth.quota_reset_day"`, "1 to 28"}},
		{"bad_window_day.toml", []string{"bad_window_day.toml", `"bandwidth.schedule[0].days[1]"`, `"someday"`}},
		{"bad_window_to.toml", []string{"bad_window_to.toml", `"bandwidth.schedule[0].to"`, "HH:MM"}},
		{"bad_rate_number.toml", []string{"bad_rate_number.toml", `"bandwidth.upload"`, `want a string such as "2MiB/s", "0" or "off"`}},
		{"bad_window_from.toml", []string{"bad_window_from.toml", `"bandwidth.schedule[0].from"`, "HH:MM", `"-1:00"`}},
		{"bad_window_from_end.toml", []string{"bad_window_from_end.toml", `"bandwidth.schedule[0].from"`, "24:00 only ends a window"}},
		{"bad_site_weight.toml", []string{"bad_site_weight.toml", `"sites[0].weight"`}},
		{"bad_site_host.toml", []string{"bad_site_host.toml", `"sites[0].host"`}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
		})
	}
}

// A rate in bits is an eighth of the same rate in bytes, and "off" is off
// in either direction.
func TestLoadBandwidthInBits(t *testing.T) {
	cfg, err := Load("testdata/bandwidth_bits.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bandwidth.Upload != 1250000 || cfg.Bandwidth.Download != shaping.Off {
		t.Errorf("upload %v (want 1250kB/s: 10 Mbit/s), download %v (want off)", cfg.Bandwidth.Upload, cfg.Bandwidth.Download)
	}
}
