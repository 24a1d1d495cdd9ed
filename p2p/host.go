package p2p

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sync/singleflight"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// mdnsServiceName is the DNS-SD service Coral nodes announce on the LAN.
// Nodes of other networks may answer too; the network secret keeps them out.
const mdnsServiceName = "_coral._udp"

// Host is a Coral node's libp2p side.
type Host struct {
	fetchSeq atomic.Uint64 // tags of protect
	cfg      Config
	log      *slog.Logger
	host     host.Host
	protos   protocolIDs
	scorer   *scorer
	relay    *relayv2.Relay
	res      *reserver
	mdns     mdns.Service
	book     *peerBook
	boot     []peer.AddrInfo
	links    *linkWatch
	ids      *peerIDs
	observed observedIPs // what each connected peer sees this node at

	psOnce sync.Once // pubsub: the gossipsub router, made on first use
	ps     *pubsub.PubSub
	psErr  error

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// connects coalesces concurrent ensureConnected calls for one peer.
	connects singleflight.Group

	reach atomic.Int32 // network.Reachability
	// joinProblem is why the last join connected to nobody (netid.go).
	joinProblem atomic.Pointer[string]

	closeOnce sync.Once
	closeErr  error
}

// Status is what /api/status shows about the node's peer-to-peer side.
type Status struct {
	PeerID      string   `json:"peer_id"`
	ListenAddrs []string `json:"listen_addrs"`
	// Addrs are the addresses other members are told to dial, relay
	// (p2p-circuit) addresses included.
	Addrs []string `json:"addrs"`
	// Reachability is AutoNAT's verdict (or the forced setting): public,
	// private or unknown.
	Reachability string `json:"reachability"`
	// Relayed is true when the node is not known to be public and holds
	// relay reservations, so members reach it through relays.
	Relayed bool `json:"relayed"`
	// RelayReservations are the peer IDs of the relays holding a slot for us.
	RelayReservations []string `json:"relay_reservations"`
	// RelayService is true when this node relays for other members.
	RelayService bool         `json:"relay_service"`
	Peers        []PeerStatus `json:"peers"`
	BlockedPeers int          `json:"blocked_peers"`
	// JoinProblem says why the node has no peer when it can tell: members
	// answered but refused it (ErrNotTheNetwork).
	JoinProblem string `json:"join_problem,omitempty"`
}

// PeerStatus describes one connected peer.
type PeerStatus struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Direction string `json:"direction"`
	// Relayed is true when every connection to the peer goes through a relay.
	Relayed   bool    `json:"relayed"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
}

// New builds and starts the libp2p host: it listens, starts the relay
// service, mDNS and the relay-reservation loop, and dials bootstrap and
// previously known peers in the background.
func New(ctx context.Context, cfg Config) (*Host, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "p2p")

	psk := cfg.Secret
	if psk == nil {
		_, statErr := os.Stat(cfg.SecretFile)
		psk, err = LoadOrCreateSecret(cfg.SecretFile)
		if err != nil {
			return nil, err
		}
		if errors.Is(statErr, fs.ErrNotExist) {
			log.Warn("created a new network secret: this node starts its own network; `coral invite` prints a code that lets others join it",
				"secret_file", cfg.SecretFile)
		}
	}
	key, err := loadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	boot, err := parsePeerAddrs(cfg.Bootstrap)
	if err != nil {
		return nil, err
	}

	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := &Host{
		cfg:    cfg,
		log:    log,
		protos: protocolsFor(cfg.ProtocolVersion),
		scorer: newScorer(log, cfg.BanDuration, cfg.ConnectionGater),
		boot:   boot,
		ctx:    hctx,
		cancel: cancel,
	}
	h.reach.Store(int32(network.ReachabilityUnknown))
	h.res = newReserver(h, cfg.RelayReservations)
	h.links = newLinkWatch(h, cfg.LinkCheckInterval, cfg.LinkPingTimeout)
	h.ids = newPeerIDs()

	lh, err := h.buildLibp2p(key, NetworkPSK(psk, cfg.Operator))
	if err != nil {
		cancel()
		return nil, err
	}
	h.host = lh
	h.scorer.mu.Lock()
	h.scorer.onBan = func(p peer.ID) { _ = lh.Network().ClosePeer(p) }
	h.scorer.mu.Unlock()

	if err := h.start(); err != nil {
		cancel()
		_ = lh.Close()
		return nil, err
	}
	log.Info("p2p host started", "peer", lh.ID(), "addrs", h.listenAddrs(),
		"protocol_version", cfg.ProtocolVersion, "reachability", cfg.Reachability)
	return h, nil
}

func (h *Host) buildLibp2p(key crypto.PrivKey, psk pnet.PSK) (host.Host, error) {
	cm, err := newConnManager(&h.cfg)
	if err != nil {
		return nil, err
	}
	rm, err := newResourceManager(&h.cfg, h.protos)
	if err != nil {
		_ = cm.Close()
		return nil, err
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		// Admission: every connection is wrapped by the private-network
		// protector keyed with the network secret; a peer without it cannot
		// even complete the security handshake. pnet only wraps byte-stream
		// transports, so TCP is the only transport: QUIC (and WebTransport,
		// WebRTC) run their own TLS below libp2p's upgrader and go-libp2p
		// refuses to combine them with a PSK.
		libp2p.PrivateNetwork(psk),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Muxer(yamux.ID, hearingMuxer{quietYamux(), h.links.recv}),
		libp2p.ListenAddrStrings(h.cfg.ListenAddrs...),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionGater(h.scorer),
		// When a peer last sent bytes tells a busy link from a dead one;
		// the volunteer's budget counts the bytes (traffic.go).
		libp2p.BandwidthReporter(h.trafficReporter(h.links.recv)),
		libp2p.SwarmOpts(swarm.WithDialRanker(dialRanker)),
		// Circuit relay v2 client: dial and accept connections through
		// relays (members behind NATs, non-transitive links).
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(),
		// Answer other members' AutoNAT probes (outsiders cannot reach us
		// anyway), and run AutoNAT v2 for per-address reachability.
		libp2p.EnableNATService(),
		libp2p.EnableAutoNATv2(),
		libp2p.AddrsFactory(h.addrsFactory),
		libp2p.ProtocolVersion("coral/" + h.cfg.ProtocolVersion),
		libp2p.UserAgent("coral"),
	}
	if h.cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(h.cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if !h.cfg.DisableNATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	switch h.cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	lh, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close()
		_ = cm.Close()
		return nil, fmt.Errorf("p2p: start libp2p host: %w", err)
	}
	return lh, nil
}

// addrsFactory advertises, besides the host's own addresses, a circuit
// address through every relay that holds a reservation for us.
func (h *Host) addrsFactory(addrs []ma.Multiaddr) []ma.Multiaddr {
	return append(addrs, h.res.circuitAddrs()...)
}

func (h *Host) start() error {
	sub, err := h.host.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged), eventbus.Name("coral-p2p"))
	if err != nil {
		return fmt.Errorf("p2p: subscribe to reachability: %w", err)
	}
	h.wg.Go(func() {
		defer sub.Close()
		for {
			select {
			case <-h.ctx.Done():
				return
			case ev, ok := <-sub.Out():
				if !ok {
					return
				}
				r := ev.(event.EvtLocalReachabilityChanged).Reachability
				if old := network.Reachability(h.reach.Swap(int32(r))); old != r {
					h.log.Info("reachability changed", "reachability", reachabilityString(r))
					h.res.kick()
				}
			}
		}
	})

	if !h.cfg.DisableRelayService {
		r, err := relayv2.New(h.relayHost(), relayOptions(relayACL{serving: h.serving})...)
		if err != nil {
			return fmt.Errorf("p2p: start relay service: %w", err)
		}
		h.relay = r
	}

	h.host.SetStreamHandler(h.protos.peers, h.handlePeers)

	h.book = newPeerBook(h.cfg.DataDir, h.log)
	if err := h.book.load(); err != nil {
		// A damaged peer list costs a bootstrap, not the node.
		h.log.Warn("ignoring known peers file", "err", err)
	}

	if err := h.res.start(); err != nil {
		return err
	}
	if !h.cfg.DisableMDNS {
		h.mdns = mdns.NewMdnsService(h.host, mdnsServiceName, mdnsNotifee{h})
		if err := h.mdns.Start(); err != nil {
			// LAN discovery is a convenience; hosts without multicast still join.
			h.log.Warn("mDNS discovery unavailable", "err", err)
			h.mdns = nil
		}
	}
	h.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { h.links.relayedIn(c) },
	})
	h.wg.Go(h.maintain)
	h.wg.Go(h.links.run)
	return nil
}

// ID is the node's peer ID.
func (h *Host) ID() peer.ID { return h.host.ID() }

// Addrs are the addresses the node advertises, relay addresses included.
func (h *Host) Addrs() []ma.Multiaddr { return h.host.Addrs() }

// P2PAddrs are Addrs with the /p2p/<id> suffix, ready for a bootstrap list.
func (h *Host) P2PAddrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.listenAddrs()})
	return addrs
}

// listenAddrs are the transport listen addresses, without the relay
// transport's placeholder /p2p-circuit "listener".
func (h *Host) listenAddrs() []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(h.host.Network().ListenAddresses()), isRelayed)
}

// Reachability is the current reachability: public, private or unknown.
func (h *Host) Reachability() string {
	return reachabilityString(network.Reachability(h.reach.Load()))
}

func reachabilityString(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return ReachabilityPublic
	case network.ReachabilityPrivate:
		return ReachabilityPrivate
	default:
		return ReachabilityUnknown
	}
}

// Status reports the node's peer-to-peer state.
func (h *Host) Status() Status {
	st := Status{
		PeerID:       h.ID().String(),
		Reachability: h.Reachability(),
		RelayService: h.relay != nil,
		BlockedPeers: h.scorer.bannedCount(),
		JoinProblem:  h.JoinProblem(),
	}
	for _, a := range h.listenAddrs() {
		st.ListenAddrs = append(st.ListenAddrs, a.String())
	}
	for _, a := range h.host.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	for _, p := range h.res.relays() {
		st.RelayReservations = append(st.RelayReservations, p.String())
	}
	st.Relayed = len(st.RelayReservations) > 0 && st.Reachability != ReachabilityPublic
	for _, p := range h.host.Network().Peers() {
		conns := h.host.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			continue
		}
		ps := PeerStatus{ID: p.String(), Relayed: true}
		for _, c := range conns {
			if !relayedConn(c) {
				ps.Relayed = false
			}
		}
		c := conns[0]
		ps.Addr = c.RemoteMultiaddr().String()
		ps.Direction = c.Stat().Direction.String()
		if l := h.host.Peerstore().LatencyEWMA(p); l > 0 {
			ps.LatencyMS = float64(l) / float64(time.Millisecond)
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].ID < st.Peers[j].ID })
	return st
}

// ConnectedPeers lists peers with at least one open connection.
func (h *Host) ConnectedPeers() []peer.ID { return h.host.Network().Peers() }

// ConnectDirect dials a peer at its direct addresses only (the given ones
// and those it already knows), even when a relayed connection is open.
func (h *Host) ConnectDirect(ctx context.Context, ai peer.AddrInfo) error {
	return notTheNetwork(h.host.Connect(network.WithForceDirectDial(ctx, "connect directly"), ai))
}

// Latency is the round trip to p measured by the last link ping (0 when
// none yet), with any planted delay. Raw, not libp2p's smoothed estimate:
// its caller, the DSHT, keeps its own windowed minimum, and the estimate
// (a 0.1-weight average over pings tens of seconds apart) remembers a
// seconds-long stall of a busy start for ten minutes or more, keeping
// near peers "far" and clusters changing (issue 17).
func (h *Host) Latency(p peer.ID) time.Duration {
	// A planted delay (EmulateRTT) is added here, or the DSHT, told these
	// figures, would see a benchmark's distant peers as near.
	l := h.links.lastRTT(p)
	if l == 0 {
		return 0
	}
	return l + h.emulatedRTT(p)
}

// Connect dials a peer at the given addresses (or at addresses the node
// already knows or can learn from its neighbours when addrs is empty).
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if len(ai.Addrs) > 0 {
		h.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
	}
	return notTheNetwork(h.ensureConnected(ctx, ai.ID))
}

// Close stops the node: it saves known peers, stops background work and
// closes every connection. It is safe to call more than once.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.cancel()
		h.wg.Wait()
		var errs []error
		if err := h.savePeers(); err != nil {
			errs = append(errs, err)
		}
		if h.mdns != nil {
			errs = append(errs, h.mdns.Close())
		}
		h.res.close()
		if h.relay != nil {
			errs = append(errs, h.relay.Close())
		}
		errs = append(errs, h.host.Close())
		if err := errors.Join(errs...); err != nil {
			h.closeErr = fmt.Errorf("p2p: close: %w", err)
		}
	})
	return h.closeErr
}

func parsePeerAddrs(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("p2p: config: bootstrap address %q (want /ip4/…/tcp/…/p2p/<peer id>): %w", s, err)
		}
		out = append(out, *ai)
	}
	// Merge entries for the same peer (several addresses of one node).
	merged := map[peer.ID]*peer.AddrInfo{}
	var order []peer.ID
	for _, ai := range out {
		if m, ok := merged[ai.ID]; ok {
			m.Addrs = append(m.Addrs, ai.Addrs...)
			continue
		}
		cp := ai
		merged[ai.ID] = &cp
		order = append(order, ai.ID)
	}
	res := make([]peer.AddrInfo, 0, len(order))
	for _, id := range order {
		res = append(res, *merged[id])
	}
	return res, nil
}

func isRelayed(a ma.Multiaddr) bool {
	return slices.ContainsFunc(a, func(c ma.Component) bool { return c.Code() == ma.P_CIRCUIT })
}

// relayedConn reports whether c goes through a relay (libp2p marks such
// connections limited; a circuit address says so too).
func relayedConn(c network.Conn) bool {
	return c.Stat().Limited || isRelayed(c.RemoteMultiaddr())
}
