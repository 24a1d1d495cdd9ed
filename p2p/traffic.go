package p2p

import (
	"context"
	"hash"
	"io"
	"sync/atomic"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/metrics"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// Budget is the volunteer's budget as the host needs it (app/node passes
// core/shaping's): every byte is counted, and circuits this node relays for
// other members wait for the upload cap.
type Budget interface {
	// Send waits until n bytes of site may be sent under the upload cap
	// and counts them.
	Send(ctx context.Context, site string, n int) error
	// Receive waits until n bytes of site may be received under the
	// download cap and counts them.
	Receive(ctx context.Context, site string, n int) error
	// CountSent and CountReceived count bytes without holding them back.
	CountSent(site string, n int64)
	CountReceived(site string, n int64)
}

// RelayedSite is the name relayed circuits are counted under in the usage
// record and share the upload cap as.
const RelayedSite = "(relayed)"

// trafficReporter counts the bytes of every stream by protocol, through
// libp2p's bandwidth reporter hook (libp2p takes one: next is told of
// everything too): DSHT, info, identify, ping… Object transfers are
// counted where they are shaped (FetchObject, app/node), and relay streams by
// relayHost, so those are left out here; a relay's hop and stop streams on
// a client carry its own streams, already counted.
func (h *Host) trafficReporter(next metrics.Reporter) metrics.Reporter {
	if h.cfg.Budget == nil {
		return next
	}
	return &trafficReporter{Reporter: next, budget: h.cfg.Budget, fetch: h.protos.fetch}
}

type trafficReporter struct {
	metrics.Reporter
	budget Budget
	fetch  protocol.ID
}

func (t *trafficReporter) counted(p protocol.ID) bool {
	return p != t.fetch && p != proto.ProtoIDv2Hop && p != proto.ProtoIDv2Stop
}

func (t *trafficReporter) LogSentMessageStream(n int64, p protocol.ID, id peer.ID) {
	t.Reporter.LogSentMessageStream(n, p, id)
	if n > 0 && t.counted(p) {
		t.budget.CountSent("", n)
	}
}

func (t *trafficReporter) LogRecvMessageStream(n int64, p protocol.ID, id peer.ID) {
	t.Reporter.LogRecvMessageStream(n, p, id)
	if n > 0 && t.counted(p) {
		t.budget.CountReceived("", n)
	}
}

// relayHost is the host the relay service runs on: the streams it accepts
// (hop) and opens (stop) write through the upload cap, so the circuits
// this node relays share the volunteer's upload with everything else, and
// stop carrying anything while the node does not serve. The relay itself
// is go-libp2p's.
func (h *Host) relayHost() host.Host {
	if h.cfg.Budget == nil && h.cfg.Serving == nil {
		return h.host
	}
	return &relayHost{Host: h.host, budget: h.cfg.Budget, serving: h.serving}
}

// serving says whether the budget lets the node serve now (Config.Serving).
func (h *Host) serving() bool { return h.cfg.Serving == nil || h.cfg.Serving() }

// relayACL refuses reservations and new circuits while the node does not
// serve (paused, in an "off" window, over quota): relaying for others is
// serving them, and each circuit could carry 1 GiB for an hour.
type relayACL struct{ serving func() bool }

func (a relayACL) AllowReserve(peer.ID, ma.Multiaddr) bool          { return a.serving() }
func (a relayACL) AllowConnect(peer.ID, ma.Multiaddr, peer.ID) bool { return a.serving() }

type relayHost struct {
	host.Host
	budget  Budget // nil: nothing counted or capped
	serving func() bool
}

func (r *relayHost) wrap(s network.Stream) *relayStream {
	return &relayStream{Stream: s, budget: r.budget, serving: r.serving}
}

func (r *relayHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	r.Host.SetStreamHandler(pid, func(s network.Stream) { handler(r.wrap(s)) })
}

func (r *relayHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	s, err := r.Host.NewStream(ctx, p, pids...)
	if err != nil {
		return s, err
	}
	return r.wrap(s), nil
}

// relayStream waits for the upload cap before each write of relayed bytes
// and counts what it reads. While the node does not serve, writes fail
// with shaping.ErrOff, and go-libp2p's relay then resets both ends of the
// circuit.
type relayStream struct {
	network.Stream
	budget  Budget
	serving func() bool
	written atomic.Int64
}

// relayPiece is the most written between two cap checks.
const relayPiece = 16 << 10

// relayControlBytes is what a relay stream may write while the node does
// not serve: room for the relay protocol's own messages (the relay reads
// at most 4 KiB per message), so a refused reservation or circuit still
// gets its PERMISSION_DENIED answer rather than a reset. A circuit that
// has carried data is past it and fails at its next write.
const relayControlBytes = 4 << 10

func (s *relayStream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		piece := p[:min(len(p), relayPiece)]
		if err := s.mayWrite(len(piece)); err != nil {
			return written, err
		}
		n, err := s.Stream.Write(piece)
		written += n
		s.written.Add(int64(n))
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// mayWrite waits until n bytes may be written under the upload cap and
// counts them, or refuses them while the node does not serve.
func (s *relayStream) mayWrite(n int) error {
	if !s.serving() {
		if s.written.Load()+int64(n) > relayControlBytes {
			return shaping.ErrOff
		}
		if s.budget != nil {
			s.budget.CountSent(RelayedSite, int64(n)) // a protocol message: counted, not held
		}
		return nil
	}
	if s.budget == nil {
		return nil
	}
	return s.budget.Send(context.Background(), RelayedSite, n)
}

func (s *relayStream) Read(p []byte) (int, error) {
	n, err := s.Stream.Read(p)
	if n > 0 && s.budget != nil {
		s.budget.CountReceived(RelayedSite, int64(n))
	}
	return n, err
}

// receiveShaped passes a body fetched from a peer through the download cap,
// as site's traffic; without a Budget it is the body itself.
func (h *Host) receiveShaped(ctx context.Context, site string, body io.ReadCloser) io.ReadCloser {
	if h.cfg.Budget == nil {
		return body
	}
	return &receivedBody{ReadCloser: body, ctx: ctx, site: site, budget: h.cfg.Budget}
}

// receivedBody waits for the cap after each read of at most relayPiece
// bytes: the bytes just read are the ones that came in.
type receivedBody struct {
	io.ReadCloser
	ctx    context.Context
	site   string
	budget Budget
}

// Hash passes on the fetched body's own hash (object.HashingBody).
func (b *receivedBody) Hash() hash.Hash { return object.HashOf(b.ReadCloser) }

func (b *receivedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p[:min(len(p), relayPiece)])
	if n > 0 {
		if werr := b.budget.Receive(b.ctx, b.site, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}
