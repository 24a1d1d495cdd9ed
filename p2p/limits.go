package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
)

// Limits for a volunteer's home machine. The numbers assume a node that
// shares an ordinary home connection and a desktop's memory with its owner:
//
//   - Connection manager: keep 32 peers (low watermark), trim back to 32 when
//     over 96 (high watermark), 1 minute grace for new connections. A DSHT
//     with three levels needs a few dozen live contacts, not hundreds.
//   - Resource manager (rcmgr), whole libp2p stack: 256 MiB memory, 512 file
//     descriptors, 256 connections (192 in, 192 out), 2048 streams (1024 in).
//     Transient (not yet attributed) resources: 64 connections, 256 streams,
//     32 MiB. Per peer: 8 connections, 256 streams (128 in), 32 MiB.
//     System connections stay well above the connection manager's high
//     watermark so trimming, not refusing, is what normally bounds peers.
//   - Coral protocols, all peers together / per peer, inbound streams:
//     DSHT 512 / 32 (16 MiB), fetch 256 / 16 (64 MiB; Config.FetchStreams),
//     peer lookup 128 / 8;
//     ping 256 / 8 each way (the link watch pings every connection).
//   - Relay service for members: 1 GiB per direction and 1 hour per relayed
//     connection (the libp2p defaults, 128 KiB and 2 minutes, would cut
//     object transfers), 64 reservations, 16 circuits per peer, 16 reservations
//     per IP (households behind one CGNAT address), 32 KiB copy buffers.
const (
	defaultConnLow     = 32
	defaultConnHigh    = 96
	connGrace          = time.Minute
	defaultMemoryLimit = 256 << 20
	defaultFDLimit     = 512

	// A flash crowd is exactly many inbound fetches of one object, from
	// many peers at once: 256 in all lets a node feed its whole connection
	// manager's worth of peers plus a second wave, and 16 per peer covers
	// one peer fetching many objects of a page at once while still bounding
	// what one (possibly hostile) member can hold. A fetch stream costs
	// about two 64 KiB buffers; the protocol's 64 MiB memory cap holds.
	defaultFetchStreams        = 256
	defaultFetchStreamsPerPeer = 16

	relayDataLimit     = 1 << 30
	relayDurationLimit = time.Hour
)

// newConnManager keeps cfg.ConnHigh connections: libp2p's manager trims
// once it holds as many as its high watermark, not more, so a node at
// exactly 96 peers fell back to 32 every 10 s; it is given one more.
func newConnManager(cfg *Config) (*connmgr.BasicConnMgr, error) {
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh+1, connmgr.WithGracePeriod(connGrace))
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	return cm, nil
}

// resourceLimits builds the rcmgr limits described above. memory and fd
// replace the system-wide caps, fetch and fetchPerPeer the object-transfer
// streams; everything else is fixed.
func resourceLimits(memory int64, fd int, fetch, fetchPerPeer int, protos protocolIDs) rcmgr.ConcreteLimitConfig {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)

	in := func(total, perPeer int, mem int64) (rcmgr.BaseLimit, rcmgr.BaseLimit) {
		return rcmgr.BaseLimit{StreamsInbound: total, StreamsOutbound: total, Streams: 2 * total, Memory: mem},
			rcmgr.BaseLimit{StreamsInbound: perPeer, StreamsOutbound: perPeer, Streams: 2 * perPeer, Memory: mem / 4}
	}
	for _, p := range []struct {
		id            protocol.ID
		total, perPer int
		mem           int64
	}{
		{protos.dsht, 512, 32, 16 << 20},
		{protos.fetch, fetch, fetchPerPeer, 64 << 20},
		{protos.peers, 128, 8, 4 << 20},
	} {
		all, one := in(p.total, p.perPer, p.mem)
		scaling.AddProtocolLimit(p.id, all, rcmgr.BaseLimitIncrease{})
		scaling.AddProtocolPeerLimit(p.id, one, rcmgr.BaseLimitIncrease{})
	}
	// Direct connections are pinged every few seconds (links.go): the
	// ping protocol gets room for one ping per connection in each
	// direction, plus the nameserver's (libp2p allows 3 streams per peer).
	scaling.AddProtocolLimit(ping.ID, rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 16 << 20}, rcmgr.BaseLimitIncrease{})
	scaling.AddProtocolPeerLimit(ping.ID, rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 16 << 20}, rcmgr.BaseLimitIncrease{})
	scaling.AddServiceLimit(ping.ServiceName, rcmgr.BaseLimit{StreamsInbound: 256, StreamsOutbound: 256, Streams: 512, Memory: 16 << 20}, rcmgr.BaseLimitIncrease{})
	scaling.AddServicePeerLimit(ping.ServiceName, rcmgr.BaseLimit{StreamsInbound: 8, StreamsOutbound: 8, Streams: 16, Memory: 16 << 20}, rcmgr.BaseLimitIncrease{})
	base := scaling.Scale(memory, fd)

	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: 256, ConnsInbound: 192, ConnsOutbound: 192,
			Streams: 2048, StreamsInbound: 1024, StreamsOutbound: 2048,
			FD: rcmgr.LimitVal(fd), Memory: rcmgr.LimitVal64(memory),
		},
		Transient: rcmgr.ResourceLimits{
			Conns: 64, ConnsInbound: 32, ConnsOutbound: 64,
			Streams: 256, StreamsInbound: 128, StreamsOutbound: 256,
			FD: rcmgr.LimitVal(fd / 4), Memory: 32 << 20,
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: 8, ConnsInbound: 8, ConnsOutbound: 8,
			Streams: 256, StreamsInbound: 128, StreamsOutbound: 256,
			Memory: 32 << 20,
		},
	}
	return partial.Build(base)
}

// newResourceManager builds the resource manager. Its Prometheus
// statistics are kept only when someone collects them: they are fed by a
// trace event (with a formatted timestamp) for every stream, connection
// and memory reservation, which was 9 % of an idle node's CPU while the
// metrics went to no registry (issue 17).
func newResourceManager(cfg *Config, protos protocolIDs) (network.ResourceManager, error) {
	var opts []rcmgr.Option
	if cfg.Registerer == nil { // else libp2p.New registers them
		opts = append(opts, rcmgr.WithMetricsDisabled())
	}
	limits := resourceLimits(cfg.MemoryLimit, cfg.FDLimit, cfg.FetchStreams, cfg.FetchStreamsPerPeer, protos)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	return rm, nil
}

// relayOptions are the relay service's limits; acl decides who may
// reserve a slot or open a circuit.
func relayOptions(acl relayv2.ACLFilter) []relayv2.Option {
	rc := relayv2.DefaultResources()
	rc.Limit = &relayv2.RelayLimit{Duration: relayDurationLimit, Data: relayDataLimit}
	rc.MaxReservations = 64
	rc.MaxCircuits = 16
	rc.MaxReservationsPerIP = 16
	rc.BufferSize = 32 << 10
	return []relayv2.Option{
		relayv2.WithResources(rc),
		relayv2.WithACL(acl),
		// Members on one LAN relay for each other too, so the voucher may
		// carry private addresses.
		relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true }),
	}
}
