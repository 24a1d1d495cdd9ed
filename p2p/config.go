package p2p

import (
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultProtocolVersion is the version in Coral's protocol IDs. Bump it (or
// set Config.ProtocolVersion, the network's version nonce) to keep
// incompatible releases from linking up, as CoralCDN did with its secrets.
const DefaultProtocolVersion = "1.0.0"

// DefaultListenAddrs is used when Config.ListenAddrs is empty.
var DefaultListenAddrs = []string{"/ip4/0.0.0.0/tcp/4100"}

// Reachability values for Config.Reachability and Status.Reachability.
const (
	ReachabilityAuto    = "auto"
	ReachabilityPublic  = "public"
	ReachabilityPrivate = "private"
	ReachabilityUnknown = "unknown"
)

// Config configures a Host. The zero value of every optional field is the
// setting for a volunteer's home node; switches are phrased as Disable* so
// that holds.
type Config struct {
	// DataDir holds identity.key (the node's libp2p identity, hence its
	// peer ID and DSHT node ID) and peers.json (known peers). Required.
	DataDir string
	// ListenAddrs are TCP multiaddrs ([p2p] listen). Default DefaultListenAddrs.
	ListenAddrs []string
	// Bootstrap are multiaddrs with a /p2p/<id> part ([p2p] bootstrap).
	Bootstrap []string
	// SecretFile is the network secret in libp2p PSK v1 format ([p2p]
	// secret_file); relative paths are inside DataDir. A missing file is
	// created with a fresh secret (the first node of a new network).
	SecretFile string
	// Secret, if set, is used instead of SecretFile.
	Secret pnet.PSK
	// Operator is the network operator's Ed25519 public key, nil if the
	// network has none. It is part of the network's identity: the key
	// libp2p's private network uses is derived from the secret and it
	// (NetworkPSK), so a node given another operator key cannot connect.
	Operator ed25519.PublicKey

	// DisableMDNS turns off LAN discovery (on by default).
	DisableMDNS bool
	// Reachability forces what AutoNAT would find: "auto" (or ""), "public"
	// or "private". Tests and nodes with a known set-up use it.
	Reachability string
	// DisableRelayService stops this node relaying for other members.
	DisableRelayService bool
	// DisableNATPortMap turns off UPnP / NAT-PMP port mapping.
	DisableNATPortMap bool
	// RelayReservations is how many neighbours this node holds relay
	// reservations with while it is not known to be publicly reachable.
	// Default 2; negative disables reservations.
	RelayReservations int

	// ConnLow and ConnHigh are the connection manager's watermarks
	// (default 32 / 96).
	ConnLow, ConnHigh int
	// MemoryLimit caps libp2p's memory in the resource manager
	// (default 256 MiB); FDLimit caps its file descriptors (default 512).
	MemoryLimit int64
	FDLimit     int
	// FetchStreams and FetchStreamsPerPeer cap the object transfers
	// (/coral/fetch streams) this node serves at once, to all peers and to
	// one peer (default 256 / 16). A peer refused for lack of a slot waits
	// and asks again or asks another holder (core/coop), never the origin.
	FetchStreams, FetchStreamsPerPeer int

	// EmulateRTT plants round-trip times between address ranges (tests and
	// benchmarks on one machine; see RTTRule). Empty in real use.
	EmulateRTT []RTTRule

	// ProtocolVersion goes into the protocol IDs /coral/dsht/<v>,
	// /coral/fetch/<v> and /coral/peers/<v>. Default DefaultProtocolVersion.
	ProtocolVersion string

	// PeerSaveInterval is how often known peers are written to DataDir
	// (default 2 minutes; they are also written on Close).
	PeerSaveInterval time.Duration
	// LinkCheckInterval is how often a watched direct connection is
	// pinged (default 2s; an unwatched idle one every 5 intervals);
	// LinkPingTimeout is how long an echo may take before a connection
	// that received nothing meanwhile is closed as dead (default 2s; 5
	// times that for an idle one). See links.go.
	LinkCheckInterval, LinkPingTimeout time.Duration
	// BanDuration is how long a peer over the misbehaviour threshold is
	// refused (default 30 minutes).
	BanDuration time.Duration

	// ConnectionGater, if set, is consulted after the built-in gater that
	// refuses banned peers. Tests use it to cut links.
	ConnectionGater connmgr.ConnectionGater
	// Registerer receives libp2p's Prometheus metrics; nil disables them.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default(); a component=p2p attribute is added.
	Logger *slog.Logger

	// Budget is told of the bytes the host carries (traffic.go): nil, none.
	Budget Budget
	// Serving says whether the volunteer's budget lets the node serve now
	// (not paused, not in an "off" window, under quota); app/node passes
	// core/shaping's Budget.Serving. While it is false the node relays
	// nothing for others (traffic.go). nil: always serving.
	Serving func() bool
}

type protocolIDs struct {
	dsht, fetch, peers protocol.ID
}

func protocolsFor(version string) protocolIDs {
	return protocolIDs{
		dsht:  protocol.ID("/coral/dsht/" + version),
		fetch: protocol.ID("/coral/fetch/" + version),
		peers: protocol.ID("/coral/peers/" + version),
	}
}

// setLimits validates the connection and resource limits and fills in
// their defaults.
func (c *Config) setLimits() error {
	if c.ConnLow == 0 {
		c.ConnLow = defaultConnLow
	}
	if c.ConnHigh == 0 {
		c.ConnHigh = defaultConnHigh
	}
	if c.ConnLow < 0 || c.ConnHigh < c.ConnLow {
		return fmt.Errorf("p2p: config: connection watermarks low=%d high=%d: want 0 <= low <= high", c.ConnLow, c.ConnHigh)
	}
	if c.MemoryLimit == 0 {
		c.MemoryLimit = defaultMemoryLimit
	}
	if c.MemoryLimit < 32<<20 {
		return fmt.Errorf("p2p: config: memory limit %d bytes is below 32 MiB", c.MemoryLimit)
	}
	if c.FDLimit == 0 {
		c.FDLimit = defaultFDLimit
	}
	if c.FetchStreams <= 0 {
		c.FetchStreams = defaultFetchStreams
	}
	if c.FetchStreamsPerPeer <= 0 {
		c.FetchStreamsPerPeer = min(defaultFetchStreamsPerPeer, c.FetchStreams)
	}
	if c.FDLimit < 32 {
		return fmt.Errorf("p2p: config: file descriptor limit %d is below 32", c.FDLimit)
	}
	return nil
}

// withDefaults validates c and fills in defaults.
func (c Config) withDefaults() (Config, error) {
	if c.DataDir == "" {
		return c, fmt.Errorf("p2p: config: data_dir is required")
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = DefaultListenAddrs
	}
	for _, a := range c.ListenAddrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return c, fmt.Errorf("p2p: config: listen address %q: %w", a, err)
		}
		if _, err := m.ValueForProtocol(ma.P_TCP); err != nil {
			return c, fmt.Errorf("p2p: config: listen address %q: only TCP is supported (the network secret cannot protect QUIC)", a)
		}
	}
	if c.Secret == nil && c.SecretFile == "" {
		return c, fmt.Errorf("p2p: config: secret_file is required")
	}
	if c.SecretFile != "" && !filepath.IsAbs(c.SecretFile) {
		c.SecretFile = filepath.Join(c.DataDir, c.SecretFile)
	}
	if c.Secret != nil && len(c.Secret) != 32 {
		return c, fmt.Errorf("p2p: config: secret must be 32 bytes, got %d", len(c.Secret))
	}
	if c.Operator != nil && len(c.Operator) != ed25519.PublicKeySize {
		return c, fmt.Errorf("p2p: config: operator key must be %d bytes, got %d", ed25519.PublicKeySize, len(c.Operator))
	}
	switch strings.ToLower(c.Reachability) {
	case "", ReachabilityAuto:
		c.Reachability = ReachabilityAuto
	case ReachabilityPublic, ReachabilityPrivate:
		c.Reachability = strings.ToLower(c.Reachability)
	default:
		return c, fmt.Errorf("p2p: config: reachability %q: want auto, public or private", c.Reachability)
	}
	if c.RelayReservations == 0 {
		c.RelayReservations = 2
	}
	if err := c.setLimits(); err != nil {
		return c, err
	}
	if c.ProtocolVersion == "" {
		c.ProtocolVersion = DefaultProtocolVersion
	}
	if strings.ContainsAny(c.ProtocolVersion, "/ \t\r\n") {
		return c, fmt.Errorf("p2p: config: protocol version %q must not contain '/' or spaces", c.ProtocolVersion)
	}
	if c.PeerSaveInterval <= 0 {
		c.PeerSaveInterval = 2 * time.Minute
	}
	if c.LinkCheckInterval <= 0 {
		c.LinkCheckInterval = defaultLinkCheckInterval
	}
	if c.LinkPingTimeout <= 0 {
		c.LinkPingTimeout = defaultLinkPingTimeout
	}
	if c.BanDuration <= 0 {
		c.BanDuration = defaultBan
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
