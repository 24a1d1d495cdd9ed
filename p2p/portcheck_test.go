package p2p

import (
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// A second node on a running node's p2p port is told the port is taken
// (libp2p's SO_REUSEPORT bind alone would have shared it silently).
func TestCheckListenPortsFindsTakenPort(t *testing.T) {
	first := newTestHost(t, testSecret(t))
	var taken string
	for _, a := range first.listenAddrs() {
		if _, err := a.ValueForProtocol(ma.P_IP4); err == nil {
			taken = a.String()
		}
	}
	if taken == "" {
		t.Fatalf("no IPv4 listen address in %v", first.listenAddrs())
	}
	for _, tc := range []struct {
		addrs []string
		want  string // "" = no error
	}{
		{[]string{taken}, "the port is taken"},
		{[]string{"/ip4/127.0.0.1/tcp/0"}, ""},
		{[]string{"not a multiaddr"}, "listen address"},
	} {
		err := CheckListenPorts(tc.addrs)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: got %v, want %q", tc.addrs, err, tc.want)
		}
	}
}
