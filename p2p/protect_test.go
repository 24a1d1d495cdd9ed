package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
	"github.com/libp2p/go-libp2p/core/peer"
)

type protectMsg struct {
	N int `cbor:"1,keyasint"`
}

// An RPC in flight protects its connections from the connection manager's
// trim at both ends, and only while it runs: a node past its high
// watermark trimmed connections mid-exchange, and the DSHT then counted
// the peer as failed for minutes.
func TestRPCProtectsItsConnections(t *testing.T) {
	psk := testSecret(t)
	noRelay := func(c *Config) { c.DisableRelayService, c.RelayReservations = true, -1 }
	server, client := newTestHost(t, psk, noRelay), newTestHost(t, psk, noRelay)
	mustConnect(t, client, server)
	const pid = "/coral-test/protect/1"
	inside, release := make(chan struct{}), make(chan struct{})
	serveRPC(server, pid, 1<<10, 10*time.Second, func(ctx context.Context, _ peer.ID, req *protectMsg) (*protectMsg, error) {
		close(inside)
		<-release
		return &protectMsg{N: req.N + 1}, nil
	})
	protected := func(h, other *Host) bool { return h.host.ConnManager().IsProtected(other.ID(), "") }
	done := make(chan error, 1)
	go func() {
		resp, err := callRPC[protectMsg, protectMsg](testCtx(t), client, server.ID(), pid, 1<<10, 10*time.Second, &protectMsg{N: 1})
		if err == nil && resp.N != 2 {
			t.Errorf("reply %d, want 2", resp.N)
		}
		done <- err
	}()
	<-inside
	if !protected(client, server) || !protected(server, client) {
		t.Errorf("mid-RPC: client protects the server %v, server the client %v; want both",
			protected(client, server), protected(server, client))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "both ends to drop the protection", func() bool {
		return !protected(client, server) && !protected(server, client)
	})
}
