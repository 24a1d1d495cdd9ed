package proxy

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// A download that breaks off says "keeping the old copy" only when there
// was one; on a first miss it says nothing was stored.
func TestBrokenTransferLogSaysWhatIsKept(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fillFirst  bool
		want, lack string
	}{
		{"first miss", false, "nothing stored (there was no copy)", "keeping the old copy"},
		{"refresh of a stored copy", true, "keeping the old copy", "there was no copy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs testkit.LogBuffer
			e := newEnv(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
			o := newOrigin(t, e.clock, static("old copy", "Cache-Control", "max-age=60"))
			if tc.fillFirst {
				expect(t, "fill", e.get(o, "/p"), 200, CacheMiss, "old copy")
				e.clock.Advance(2 * time.Minute)
			}
			o.set(brokenBody(true, nil, false))
			r := e.get(o, "/p")
			switch {
			case tc.fillFirst: // the refresh broke off: the stale copy, whole
				expect(t, "refresh broke off", r, 200, CacheStale, "old copy")
			case r.readErr == nil:
				t.Fatalf("visitor read a complete-looking body %q", trunc(r.body))
			}
			testkit.Eventually(t, 10*time.Second, "the broken transfer's log line", func() bool { return strings.Contains(logs.String(), "transfer broke off") })
			if got := logs.String(); !strings.Contains(got, tc.want) || strings.Contains(got, tc.lack) {
				t.Errorf("log %q: want %q, not %q", got, tc.want, tc.lack)
			}
		})
	}
}
