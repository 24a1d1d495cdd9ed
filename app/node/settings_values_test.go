package node

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/control"
)

// Bad caps and times through the settings API get a 400 naming the field
// in words a volunteer can act on, and change nothing.
func TestSettingsRefuseBadRatesAndTimes(t *testing.T) {
	n := startNode(t, testConfig(t))
	for _, tc := range []struct {
		patch, field, says string
	}{
		{`{"bandwidth":{"upload": 5}}`, "bandwidth.upload", `want a string such as "2MiB/s", "0" or "off"`},
		{`{"bandwidth":{"upload": -1}}`, "bandwidth.upload", `want a string such as "2MiB/s", "0" or "off"`},
		{`{"bandwidth":{"download": 1.5}}`, "bandwidth.download", `want a string such as "2MiB/s", "0" or "off"`},
		{`{"bandwidth":{"upload": "-5MiB/s"}}`, "bandwidth.upload", "not a rate"},
		{`{"bandwidth":{"upload": "1bit/s"}}`, "bandwidth.upload", "less than 1 byte/s"},
		{`{"bandwidth":{"schedule":[{"days":["mon"],"from":"-1:00","to":"06:00","upload":"off"}]}}`, "bandwidth.schedule[0].from", `"HH:MM"`},
		{`{"bandwidth":{"schedule":[{"days":["mon"],"from":"24:00","to":"06:00","upload":"off"}]}}`, "bandwidth.schedule[0].from", "24:00 only ends a window"},
		{`{"bandwidth":{"schedule":[{"days":["mon"],"from":"08:00","to":"18:00","upload":-9}]}}`, "bandwidth.schedule", `want a string such as "2MiB/s", "0" or "off"`},
	} {
		code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(), tc.patch)
		var fe control.FieldError
		if err := json.Unmarshal([]byte(b), &fe); err != nil || code != 400 || fe.Field != tc.field || !strings.Contains(fe.Msg, tc.says) {
			t.Errorf("%s: %d %s; want 400, field %q saying %q", tc.patch, code, b, tc.field, tc.says)
		}
		if bs := budgetOf(t, n); !bs.Serving || bs.Upload != "0" {
			t.Errorf("%s: refused, yet the budget changed: %+v", tc.patch, bs)
		}
	}
}

// A cap in megabits is an eighth of the same number of megabytes, and a
// download "off" stops serving as an upload "off" does.
func TestSettingsBitRatesAndDownloadOff(t *testing.T) {
	n := startNode(t, testConfig(t))
	for _, tc := range []struct {
		patch, upload, download string
		serving                 bool
		reason                  string
	}{
		{`{"bandwidth":{"upload":"10Mbps"}}`, "1250kB/s", "0", true, ""},
		{`{"bandwidth":{"upload":"10 Mbit/s"}}`, "1250kB/s", "0", true, ""},
		{`{"bandwidth":{"upload":"8Mb/s"}}`, "1MB/s", "0", true, ""},
		{`{"bandwidth":{"upload":"1MB/s","download":"off"}}`, "1MB/s", "off", false, "off window"},
		{`{"bandwidth":{"upload":"1MB/s","download":"0","schedule":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"00:00","to":"24:00","download":"off"}]}}`, "1MB/s", "off", false, "off window"},
	} {
		if code, b := controlAs(t, n, "PUT", "/api/settings", n.Token(), tc.patch); code != 200 {
			t.Fatalf("%s: %d %s", tc.patch, code, b)
		}
		bs := budgetOf(t, n)
		if bs.Upload != tc.upload || bs.Download != tc.download || bs.Serving != tc.serving || bs.Reason != tc.reason {
			t.Errorf("%s: upload %q download %q serving %v (%q); want %q %q %v (%q)", tc.patch,
				bs.Upload, bs.Download, bs.Serving, bs.Reason, tc.upload, tc.download, tc.serving, tc.reason)
		}
		controlAs(t, n, "PUT", "/api/settings", n.Token(), `{"bandwidth": null}`)
	}
}
