package node

import (
	"testing"
	"time"
)

// "0" in the config turns max_stale and negative_ttl off; the proxy reads
// zero as "use the default", so the node must hand it a negative value.
func TestOffWhenZero(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, -1},
		{time.Minute, time.Minute},
		{24 * time.Hour, 24 * time.Hour},
	} {
		if got := offWhenZero(tc.in); got != tc.want {
			t.Errorf("offWhenZero(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
