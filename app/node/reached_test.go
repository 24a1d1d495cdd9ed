package node

import (
	"net/http"
	"strings"
	"testing"
)

// The address the node is reached at from outside (here [http] advertise,
// a router's public address) is refused as an origin: through NAT
// hairpinning it would lead back into the volunteer's network.
func TestProxyRefusesAddressNodeIsReachedAt(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cache.AllowPrivateOrigins = false
	cfg.HTTP.Advertise = []string{"198.51.100.7"}
	n := startNode(t, cfg)
	if got := n.reachedAt(); len(got) == 0 || got[0].String() != "198.51.100.7" {
		t.Fatalf("reachedAt = %v, want the advertised address first", got)
	}
	resp, body := coralGet(t, n, "198.51.100.7.8080.localhost", "/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "allow_private_origins") {
		t.Errorf("advertised address as origin: %d %q", resp.StatusCode, body)
	}
}
