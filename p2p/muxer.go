package p2p

import (
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	yamuxlib "github.com/libp2p/go-yamux/v5"
)

// yamuxRTTInterval is how often yamux re-measures a connection's round
// trip (go-yamux's default is 30 s, on every connection, from both ends).
const yamuxRTTInterval = 10 * time.Minute

// quietYamux is libp2p's yamux with fewer session pings. Yamux measures
// each connection's RTT with a ping every 30 s whether or not it is idle:
// 13 frames a second for a node with 96 peers, for a figure only its
// receive-window tuning reads (measured at the start, then every 10
// minutes here). The keepalive stays: it only pings a connection that
// received nothing for 30 s, which the link watch (links.go) never lets
// happen on a live one.
func quietYamux() *yamux.Transport {
	cfg := *(*yamuxlib.Config)(yamux.DefaultTransport)
	cfg.MeasureRTTInterval = yamuxRTTInterval
	return (*yamux.Transport)(&cfg)
}

// hearingMuxer is a muxer whose connections tell the link watch's clock
// whenever the peer's bytes arrive on them, whatever they carry: stream
// data, but also the muxer's own frames — a ping the peer sends us, a
// window update. libp2p reports only stream reads, so a peer that pinged
// us was not heard, and both ends of every idle link pinged on their own
// schedule (issue 17); now one end's ping spares the other's.
type hearingMuxer struct {
	*yamux.Transport
	clock *recvClock
}

var _ network.Multiplexer = hearingMuxer{}

func (m hearingMuxer) NewConn(nc net.Conn, isServer bool, scope network.PeerScope) (network.MuxedConn, error) {
	if sc, ok := nc.(interface{ RemotePeer() peer.ID }); ok {
		nc = &hearingConn{Conn: nc, peer: sc.RemotePeer(), clock: m.clock}
	}
	return m.Transport.NewConn(nc, isServer, scope)
}

// hearingConn is a secured connection that records when its peer's bytes
// arrived.
type hearingConn struct {
	net.Conn
	peer  peer.ID
	clock *recvClock
}

func (c *hearingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.clock.heard(c.peer, time.Now())
	}
	return n, err
}
