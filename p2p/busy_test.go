package p2p

import (
	"errors"
	"fmt"
	"testing"

	"github.com/coralcdn/coral/core/object"
	"github.com/libp2p/go-libp2p/core/network"
)

// A fetch refused for lack of a slot — the peer's resource manager reset
// the stream with StreamResourceLimitExceeded, or this node's own limits
// refused to open it — is marked object.ErrBusy (so coop waits or asks
// another holder); other failures are not.
func TestMarkBusy(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		busy bool
	}{
		{"peer's resource manager", &network.StreamError{ErrorCode: network.StreamResourceLimitExceeded, Remote: true}, true},
		{"wrapped", fmt.Errorf("read header: %w", &network.StreamError{ErrorCode: network.StreamResourceLimitExceeded, Remote: true}), true},
		{"this node's limits", fmt.Errorf("stream limit: %w", network.ErrResourceLimitExceeded), true},
		{"protocol negotiation failed", &network.StreamError{ErrorCode: network.StreamProtocolNegotiationFailed, Remote: true}, false},
		{"plain reset", network.ErrReset, false},
		{"other", errors.New("connection refused"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := markBusy(tc.err)
			if errors.Is(got, object.ErrBusy) != tc.busy {
				t.Errorf("markBusy(%v) = %v: busy %v, want %v", tc.err, got, !tc.busy, tc.busy)
			}
			if !errors.Is(got, tc.err) {
				t.Errorf("markBusy(%v) = %v lost the cause", tc.err, got)
			}
		})
	}
}
