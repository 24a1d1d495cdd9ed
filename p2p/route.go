package p2p

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// Reaching a peer. The DSHT names nodes by peer ID only, and lookups hand
// out contacts this node has never met, so before a stream can be opened the
// host may need to learn addresses — and, when the direct path is broken
// (NAT, firewall, a non-transitive link), to go through a relay. In order:
//
//  1. an existing connection (direct or relayed);
//  2. addresses already in the peerstore, with a circuit address through
//     every connected relay when the peerstore holds none: direct first,
//     relays relayDialDelay later (dialRanker);
//  3. addresses asked from a few connected members over /coral/peers (the
//     member that told the DSHT about the node usually knows it), plus a
//     circuit address through every connected relay, dialled together —
//     the swarm prefers direct addresses and tries relays shortly after.
const (
	directDialTimeout = 5 * time.Second
	lookupTimeout     = 3 * time.Second
	lookupFanout      = 6
	relayFanout       = 4
	maxLookupAddrs    = 16
	learnedAddrTTL    = 10 * time.Minute
	peersRPCTimeout   = 5 * time.Second
	relayDialDelay    = 250 * time.Millisecond
	relayStagger      = 50 * time.Millisecond
)

// dialRanker is libp2p's default ranking, except for relay addresses:
// libp2p dials them at once when the peer has only private direct
// addresses (every home member), so a healthy LAN link also opened a
// relayed connection, and it spaces them 250 ms apart, so a peer with a
// few stale circuit addresses first took a second to reach. Here they
// wait relayDialDelay behind the direct addresses and follow each other
// relayStagger apart.
func dialRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	ranked := swarm.DefaultDialRanker(addrs)
	base := time.Duration(0)
	if slices.ContainsFunc(addrs, func(a ma.Multiaddr) bool { return !isRelayed(a) }) {
		base = relayDialDelay
	}
	n := 0
	for i := range ranked {
		if isRelayed(ranked[i].Addr) {
			ranked[i].Delay = base + time.Duration(n)*relayStagger
			n++
		}
	}
	slices.SortStableFunc(ranked, func(a, b network.AddrDelay) int { return cmp.Compare(a.Delay, b.Delay) })
	return ranked
}

// ErrNoRoute means no direct or relayed path to the peer was found.
var ErrNoRoute = errors.New("p2p: no route to peer")

// ensureConnected makes sure a connection (possibly relayed) to p exists.
// Concurrent calls for one peer share one attempt (singleflight): a burst
// of fetches from a peer not yet connected costs one address lookup. The
// attempt runs under the context of the caller that started it, as each
// call's own attempt did before; if that caller gives up, the others try
// again for themselves rather than inherit its cancellation.
func (h *Host) ensureConnected(ctx context.Context, p peer.ID) error {
	if p == h.ID() {
		return fmt.Errorf("p2p: refusing to dial self")
	}
	if h.scorer.isBanned(p) {
		return fmt.Errorf("p2p: peer %s is blocked for misbehaviour", p)
	}
	for !hasConn(h.host.Network().Connectedness(p)) {
		var own error // the result of this caller's attempt, if it made it
		ran := false
		ch := h.connects.DoChan(string(p), func() (any, error) {
			ran = true
			own = h.connect(ctx, p)
			if own != nil && ctx.Err() != nil {
				return nil, errConnectAbandoned
			}
			return nil, own
		})
		select {
		case r := <-ch:
			if ran {
				return own
			}
			if !errors.Is(r.Err, errConnectAbandoned) {
				return r.Err
			}
		case <-ctx.Done():
			return fmt.Errorf("p2p: dial %s: %w", p, ctx.Err())
		}
	}
	return nil
}

// errConnectAbandoned is what a shared attempt hands the callers that
// joined it when the caller that started it gave up.
var errConnectAbandoned = errors.New("p2p: connect abandoned by its caller")

// connect finds a route to p and connects (see the order above).
func (h *Host) connect(ctx context.Context, p peer.ID) error {
	var firstErr error
	h.forgetRoutesThroughSelf(p)
	if known := h.host.Peerstore().Addrs(p); len(known) > 0 {
		// Relay routes go in with the direct addresses: the dial ranker
		// tries them relayDialDelay after the direct ones, so a broken
		// direct path costs that delay, not the direct dial's timeout.
		if !slices.ContainsFunc(known, isRelayed) {
			h.host.Peerstore().AddAddrs(p, h.relayRoutes(p), learnedAddrTTL)
		}
		dctx, cancel := context.WithTimeout(ctx, directDialTimeout)
		err := h.host.Connect(dctx, peer.AddrInfo{ID: p})
		cancel()
		if err == nil {
			return nil
		}
		firstErr = err
		if ctx.Err() != nil {
			return fmt.Errorf("p2p: dial %s: %w", p, err)
		}
	}

	addrs := h.lookupAddrs(ctx, p)
	addrs = append(addrs, h.relayRoutes(p)...)
	if len(addrs) == 0 {
		if firstErr != nil {
			return fmt.Errorf("%w %s: %w", ErrNoRoute, p, firstErr)
		}
		return fmt.Errorf("%w %s: no addresses known", ErrNoRoute, p)
	}
	h.host.Peerstore().AddAddrs(p, addrs, learnedAddrTTL)
	if err := h.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		if handshakeRefused(firstErr) {
			err = firstErr // the peer answered and refused us: say that, not the backoff it left
		}
		return fmt.Errorf("%w %s: %w", ErrNoRoute, p, err)
	}
	return nil
}

// forgetRoutesThroughSelf drops p's circuit addresses that go through this
// node (p holds a reservation here): dialling them is a dial to self.
func (h *Host) forgetRoutesThroughSelf(p peer.ID) {
	for _, a := range h.host.Peerstore().Addrs(p) {
		if r, ok := relayOf(a); ok && r == h.ID() {
			h.host.Peerstore().SetAddr(p, a, 0)
		}
	}
}

// relayOf names the relay of a circuit address (…/p2p/<relay>/p2p-circuit…).
func relayOf(a ma.Multiaddr) (peer.ID, bool) {
	var relay peer.ID
	for _, c := range a {
		switch c.Code() {
		case ma.P_P2P:
			if id, err := peer.IDFromBytes(c.RawValue()); err == nil {
				relay = id
			}
		case ma.P_CIRCUIT:
			return relay, relay != ""
		}
	}
	return "", false
}

func hasConn(c network.Connectedness) bool {
	return c == network.Connected || c == network.Limited
}

// relayRoutes are circuit addresses for p through connected relays. A relay
// without a reservation for p refuses quickly, so trying a few is cheap.
func (h *Host) relayRoutes(p peer.ID) []ma.Multiaddr {
	var out []ma.Multiaddr
	peers := h.host.Network().Peers()
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	for _, r := range peers {
		if len(out) >= relayFanout {
			break
		}
		if r == p || h.host.Network().Connectedness(r) != network.Connected {
			continue
		}
		if ok, _ := h.host.Peerstore().SupportsProtocols(r, proto.ProtoIDv2Hop); len(ok) == 0 {
			continue
		}
		if a, err := ma.NewMultiaddr("/p2p/" + r.String() + "/p2p-circuit"); err == nil {
			out = append(out, a)
		}
	}
	return out
}

type peersRequest struct {
	Peer []byte `cbor:"1,keyasint"`
}

type peersResponse struct {
	Addrs [][]byte `cbor:"1,keyasint"`
}

// lookupAddrs asks up to lookupFanout connected members for p's addresses
// and returns what the first one that knows answers, with whatever else
// arrived by then.
func (h *Host) lookupAddrs(ctx context.Context, p peer.ID) []ma.Multiaddr {
	var asks []peer.ID
	for _, q := range h.host.Network().Peers() {
		if q != p {
			asks = append(asks, q)
		}
	}
	rand.Shuffle(len(asks), func(i, j int) { asks[i], asks[j] = asks[j], asks[i] })
	if len(asks) > lookupFanout {
		asks = asks[:lookupFanout]
	}
	if len(asks) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	self := "/p2p/" + h.ID().String() + "/p2p-circuit"
	results := make(chan []ma.Multiaddr, len(asks))
	var wg sync.WaitGroup
	for _, q := range asks {
		wg.Go(func() {
			var resp peersResponse
			if err := h.call(ctx, q, h.protos.peers, &peersRequest{Peer: []byte(p)}, &resp, maxPeersMsg, peersRPCTimeout); err != nil {
				results <- nil
				return
			}
			var addrs []ma.Multiaddr
			for _, b := range resp.Addrs {
				if len(addrs) >= maxLookupAddrs {
					break
				}
				a, err := ma.NewMultiaddrBytes(b)
				if err != nil {
					continue // one bad address is not worth a penalty
				}
				// A relay address must relay through someone other than p.
				if id, err := peer.IDFromP2PAddr(a); err == nil && id == p {
					a, _ = ma.SplitLast(a)
					if a == nil {
						continue
					}
				}
				if strings.Contains(a.String(), self) {
					continue // a route through ourselves
				}
				addrs = append(addrs, a)
			}
			results <- addrs
		})
	}
	go func() { wg.Wait(); close(results) }()
	var out []ma.Multiaddr
	for addrs := range results {
		out = append(out, addrs...)
		if len(out) > 0 {
			break
		}
	}
	// Collect whatever else is already there without waiting.
	for {
		select {
		case addrs, ok := <-results:
			if !ok {
				return ma.Unique(out)
			}
			out = append(out, addrs...)
		default:
			return ma.Unique(out)
		}
	}
}

// handlePeers answers an address lookup (answerPeers) on its stream; a
// malformed request counts against the sender.
func (h *Host) handlePeers(s network.Stream) {
	defer h.recoverStream(s)
	from := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(peersRPCTimeout))
	resp, err := h.answerPeers(bufio.NewReader(s))
	if err != nil {
		h.streamFailed(s, from, err)
		return
	}
	if err := WriteMsg(s, &resp); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// answerPeers reads one address lookup and answers it from the peerstore,
// adding a circuit address through this node when it relays and is
// directly connected to the peer (which then likely holds a reservation
// here).
func (h *Host) answerPeers(r *bufio.Reader) (peersResponse, error) {
	var req peersRequest
	if err := ReadMsg(r, &req, maxPeersMsg); err != nil {
		return peersResponse{}, err
	}
	target, err := peer.IDFromBytes(req.Peer)
	if err != nil {
		return peersResponse{}, fmt.Errorf("%w: bad peer id: %v", ErrMalformed, err)
	}
	var resp peersResponse
	for _, a := range h.host.Peerstore().Addrs(target) {
		if len(resp.Addrs) >= maxLookupAddrs {
			break
		}
		resp.Addrs = append(resp.Addrs, a.Bytes())
	}
	if h.relay != nil && h.host.Network().Connectedness(target) == network.Connected {
		if a, err := ma.NewMultiaddr("/p2p/" + h.ID().String() + "/p2p-circuit"); err == nil {
			resp.Addrs = append(resp.Addrs, a.Bytes())
		}
	}
	return resp, nil
}
