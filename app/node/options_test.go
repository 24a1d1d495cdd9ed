package node

import (
	"testing"
	"time"

	"github.com/coralcdn/coral/core/proxy"
)

// "0" in the config turns heuristic_ttl, max_stale, negative_ttl and
// memory_bytes off; proxy.Options reads zero as "use the default", so the
// node must hand it proxy.Off.
func TestZeroIsOff(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, proxy.Off},
		{time.Minute, time.Minute},
		{24 * time.Hour, 24 * time.Hour},
	} {
		if got := zeroIsOff(tc.in); got != tc.want {
			t.Errorf("zeroIsOff(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := zeroIsOff(int64(0)); got != proxy.Off {
		t.Errorf("zeroIsOff(int64(0)) = %d, want proxy.Off", got)
	}
}
