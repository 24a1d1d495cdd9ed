// Package config is Coral's configuration: the TOML file format, its
// defaults, and the validation that stops start-up with a message naming the
// offending key and file.
//
// Every key has a default, so an empty or missing file is a working
// single-node configuration. Sizes are strings such as "4GiB" or "50MiB";
// durations are Go duration strings such as "12h" or "60s" ("0" turns a
// duration feature off where the key says so).
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/coralcdn/coral/core/runstate"
	"github.com/dustin/go-humanize"
	"github.com/multiformats/go-multiaddr"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/shaping"
)

// Config is the whole node configuration. Field names follow the TOML keys.
type Config struct {
	// DataDir holds the Badger store, the node's identity key, the control
	// token and other state. Relative paths are relative to the config file.
	DataDir string `toml:"data_dir"`
	// Zone is the Coralized suffix: origin www.example.com is reached as
	// www.example.com.<zone>.
	Zone string `toml:"zone"`

	HTTP    HTTP    `toml:"http"`
	Control Control `toml:"control"`
	DNS     DNS     `toml:"dns"`
	Cache   Cache   `toml:"cache"`
	P2P     P2P     `toml:"p2p"`
	DSHT    DSHT    `toml:"dsht"`
	Log     Log     `toml:"log"`
	// Operator is whose signed run-state documents the node follows.
	Operator Operator `toml:"operator"`
	// Groups are the site groups this node is a member of ([[groups]]).
	Groups []Group `toml:"groups"`
	// GroupsReserve is the least share of a member node's upload cap that
	// other sites keep while its groups' sites are busy (0 to 0.9).
	GroupsReserve float64 `toml:"groups_reserve"`

	Bandwidth Bandwidth `toml:"bandwidth"`
	Sites     []Site    `toml:"sites"`
}

// HTTP is the visitor-facing proxy listener.
type HTTP struct {
	Listen string `toml:"listen"`
	// OriginTimeout bounds connecting to an origin and waiting for its
	// response headers; a body that stalls for this long is abandoned too.
	OriginTimeout Duration `toml:"origin_timeout"`
	// MaxOriginFetches caps concurrent origin downloads of this node.
	MaxOriginFetches int `toml:"max_origin_fetches"`
	// MaxFetchesPerSite caps the origin downloads of one site (registrable
	// domain or IP address) at a time; 0: a quarter of MaxOriginFetches.
	MaxFetchesPerSite int `toml:"max_fetches_per_site"`
	// Advertise are the IPs visitors use to reach this proxy when the node
	// cannot see them itself (a port-forwarded router's public address).
	// Default: the listen address if specific, else the machine's addresses
	// and the address peers see the node at.
	Advertise []string `toml:"advertise"`
}

// Control is the local control listener: status page, JSON API, metrics.
type Control struct {
	Listen string `toml:"listen"`
	// TokenFile holds the bearer token that any request changing settings
	// must carry. Created with a random token on first start.
	TokenFile string `toml:"token_file"`
}

// DNS is the authoritative DNS server for the zone.
type DNS struct {
	// Listen is host:port for UDP and TCP; empty turns the DNS server off.
	Listen string `toml:"listen"`
	// Nameserver says whether other nodes hand this one out as a volunteer
	// nameserver: "auto" when Listen is on port 53, "yes" when port 53
	// reaches it some other way (a port redirect), "no" never.
	Nameserver string `toml:"nameserver"`
	// Nameservers are the names registered with the parent zone and their
	// glue: the node answers for them and names them when it knows no
	// live volunteer nameserver.
	Nameservers []NameServer `toml:"nameservers"`
	// Response rate limiting over UDP, as BIND's RRL: identical responses
	// (same query name, type and kind) to one client network (IPv4 /24,
	// IPv6 /56) per second; 0 turns the limiter off.
	RRLResponsesPerSecond int `toml:"rrl_responses_per_second"`
	// RRLBurst is how many identical responses may go out at once.
	RRLBurst int `toml:"rrl_burst"`
	// RRLSlip: every RRLSlip-th suppressed response is sent empty with TC,
	// so a real resolver behind a flooded network retries over TCP; 0 never.
	RRLSlip int `toml:"rrl_slip"`
	// RRLTableSize is how many responses the limiter tracks at once.
	RRLTableSize int `toml:"rrl_table_size"`
}

// validateRRL checks the rate limiter's keys.
func (d DNS) validateRRL(bad func(key, format string, args ...any)) {
	if d.RRLResponsesPerSecond < 0 || d.RRLResponsesPerSecond > 1_000_000 {
		bad("dns.rrl_responses_per_second", "want 0 (off) to 1000000, got %d", d.RRLResponsesPerSecond)
	}
	if d.RRLResponsesPerSecond > 0 && (d.RRLBurst < 1 || d.RRLBurst > 1_000_000) {
		bad("dns.rrl_burst", "want 1 to 1000000 responses, got %d", d.RRLBurst)
	}
	if d.RRLSlip < 0 || d.RRLSlip > 10 {
		bad("dns.rrl_slip", "want 0 (never) to 10, as BIND's slip, got %d", d.RRLSlip)
	}
	if d.RRLTableSize < 1024 || d.RRLTableSize > 16<<20 {
		bad("dns.rrl_table_size", "want 1024 to 16777216 tracked responses, got %d", d.RRLTableSize)
	}
}

// NameServer is one nameserver of the parent zone's delegation.
type NameServer struct {
	Name  string   `toml:"name"`
	Addrs []string `toml:"addrs"`
}

// IPs parses the glue addresses; the index of the first bad one comes
// with the error.
func (ns NameServer) IPs() ([]netip.Addr, int, error) {
	var out []netip.Addr
	for j, a := range ns.Addrs {
		ip, err := netip.ParseAddr(a)
		if err == nil && ip.IsUnspecified() {
			err = errors.New("unspecified address")
		}
		if err != nil {
			return nil, j, fmt.Errorf("want an IP address, got %q", a)
		}
		out = append(out, ip.Unmap())
	}
	return out, -1, nil
}

// Cache holds the proxy's caching and safety policy.
type Cache struct {
	MaxBytes            Size     `toml:"max_bytes"`
	MaxObjectBytes      Size     `toml:"max_object_bytes"`
	MemoryBytes         Size     `toml:"memory_bytes"`   // hot objects kept in memory, ready to send
	MinFreeBytes        Size     `toml:"min_free_bytes"` // below this much free space on the data dir's filesystem, objects pass through unstored
	HeuristicTTL        Duration `toml:"heuristic_ttl"`
	MaxStale            Duration `toml:"max_stale"`
	NegativeTTL         Duration `toml:"negative_ttl"`
	PeerCopyMaxAge      Duration `toml:"peer_copy_max_age"` // a copy from a peer is fresh at most this long
	AllowPrivateOrigins bool     `toml:"allow_private_origins"`
	PassUnsafeMethods   bool     `toml:"pass_unsafe_methods"`
	StripCookies        bool     `toml:"strip_cookies"`
	OriginPorts         []string `toml:"origin_ports"`
}

// P2P is the libp2p side: how this node finds and admits other nodes.
type P2P struct {
	Listen     []string `toml:"listen"`
	Bootstrap  []string `toml:"bootstrap"`
	SecretFile string   `toml:"secret_file"`
	// MDNS finds other nodes on the same LAN.
	MDNS bool `toml:"mdns"`
	// Reachability forces what AutoNAT would find out: "auto", "public" or
	// "private". Tests and nodes with a known situation set it.
	Reachability string `toml:"reachability"`
	// RelayService lets this node relay for members that cannot reach each
	// other directly.
	RelayService bool `toml:"relay_service"`
	// PutGet makes the lookup before an origin fetch one put+get
	// (test-and-set) instead of a get then a put.
	PutGet bool `toml:"put_get"`
	// NATPortMap asks the home router for a port mapping (UPnP / NAT-PMP).
	NATPortMap bool `toml:"nat_port_map"`
	// EmulateRTT plants round-trip times between address ranges, for
	// benchmarks of many nodes on one machine (loopback has no latency and
	// kernel emulation is not always available). Never set in real use.
	EmulateRTT []RTTRule `toml:"emulate_rtt"`
}

// RTTRule is one planted RTT: traffic between an address in A and one in
// B (CIDR prefixes, either way round) is delayed by RTT per round trip.
type RTTRule struct {
	A   string   `toml:"a"`
	B   string   `toml:"b"`
	RTT Duration `toml:"rtt"`
}

// Prefixes parses A and B; the error names the field ("a" or "b").
func (r RTTRule) Prefixes() (a, b netip.Prefix, field string, err error) {
	if a, err = netip.ParsePrefix(r.A); err != nil {
		return a, b, "a", fmt.Errorf("want an address prefix such as \"127.0.1.0/24\", got %q", r.A)
	}
	if b, err = netip.ParsePrefix(r.B); err != nil {
		return a, b, "b", fmt.Errorf("want an address prefix such as \"127.0.1.0/24\", got %q", r.B)
	}
	return a.Masked(), b.Masked(), "", nil
}

// DSHT tunes the hierarchical DHT's latency levels.
type DSHT struct {
	// Level2RTT and Level1RTT are the RTT thresholds of the regional and
	// the continental clusters (the global level has none).
	Level2RTT Duration `toml:"level2_rtt"`
	Level1RTT Duration `toml:"level1_rtt"`
}

// Operator names the network operator whose signed run-state documents
// (pauses, minimum version, secret rotation, message) this node applies.
type Operator struct {
	// Key is the operator's public key, "ed25519:..." (`coral operator
	// keygen` prints it). Empty: the key `coral join` recorded, if any.
	Key string `toml:"key"`
}

// Group is one site group the node belongs to: the group's public key
// (`coral group init` prints it) and, optionally, a signed manifest file
// to start from (newer versions then arrive over the network).
type Group struct {
	Key string `toml:"key"`
	// Manifest is a file holding a signed manifest (`coral group sign`);
	// relative paths are relative to the config file.
	Manifest string `toml:"manifest"`
}

// Log sets logging.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `toml:"level"`
}

// MinFreeFloor is the smallest cache.min_free_bytes: the store stops
// writing its database at 64 MiB free (store.BadgerRoom), and objects in
// flight need room above that.
const MinFreeFloor = 128 << 20

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		DataDir:       defaultDataDir(),
		Zone:          "localhost",
		GroupsReserve: 0.2,
		HTTP: HTTP{
			Listen:           ":8080",
			OriginTimeout:    Duration(30 * time.Second),
			MaxOriginFetches: 64,
		},
		Control: Control{Listen: "127.0.0.1:8081", TokenFile: "control.token"},
		DNS: DNS{Listen: "127.0.0.1:5354", Nameserver: "auto",
			RRLResponsesPerSecond: 20, RRLBurst: 40, RRLSlip: 2, RRLTableSize: 65536},
		Cache: Cache{
			MaxBytes:       4 << 30,
			MaxObjectBytes: 50 << 20,
			MemoryBytes:    32 << 20,
			MinFreeBytes:   1 << 30,
			HeuristicTTL:   Duration(12 * time.Hour),
			PeerCopyMaxAge: Duration(24 * time.Hour),
			MaxStale:       Duration(24 * time.Hour),
			NegativeTTL:    Duration(60 * time.Second),
			StripCookies:   true,
			OriginPorts:    slices.Clone(coralurl.DefaultOriginPorts),
		},
		P2P: P2P{
			Listen:       []string{"/ip4/0.0.0.0/tcp/4100"},
			Bootstrap:    []string{},
			SecretFile:   "network.key",
			MDNS:         true,
			Reachability: "auto",
			RelayService: true,
			NATPortMap:   true,
			PutGet:       true,
		},
		DSHT: DSHT{Level2RTT: Duration(20 * time.Millisecond), Level1RTT: Duration(60 * time.Millisecond)},
		Log:  Log{Level: "info"},

		Bandwidth: DefaultBandwidth(),
	}
}

// defaultDataDir is /var/lib/coral for a system service (root) and the
// user's data directory for a desktop volunteer.
func defaultDataDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/coral"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "coral")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "coral")
	}
	return "coral-data"
}

// Load reads the file at path over the defaults. A missing path ("") gives
// the defaults. Relative paths inside the file are made relative to the
// file's directory so a node started from anywhere finds its data.
func Load(path string) (Config, error) {
	cfg := Default()
	if path == "" {
		return cfg, cfg.Validate()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	cfg, err = Parse(data)
	if err != nil {
		return cfg, fmt.Errorf("config: %s: %w", path, err)
	}
	base := filepath.Dir(path)
	if cfg.DataDir, err = expandHome(cfg.DataDir); err != nil {
		return cfg, fmt.Errorf("config: %s: key \"data_dir\": %w", path, err)
	}
	if !filepath.IsAbs(cfg.DataDir) {
		cfg.DataDir = filepath.Join(base, cfg.DataDir)
	}
	for i, g := range cfg.Groups {
		if g.Manifest != "" && !filepath.IsAbs(g.Manifest) {
			cfg.Groups[i].Manifest, _ = filepath.Abs(filepath.Join(base, g.Manifest))
		}
	}
	// Resolved once, here, to an absolute path: the parts that join file
	// names to it (p2p, the store) must not resolve it a second time.
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return cfg, fmt.Errorf("config: %s: data_dir: %w", path, err)
	}
	if fi, err := os.Stat(cfg.DataDir); err == nil && !fi.IsDir() {
		return cfg, fmt.Errorf("config: %s: key \"data_dir\": %s is a file, not a directory", path, cfg.DataDir)
	}
	return cfg, nil
}

// Parse decodes TOML over the defaults and validates the result. Unknown keys
// are errors: a typo must not silently fall back to a default.
func Parse(data []byte) (Config, error) {
	cfg := Default()
	// A listed key replaces the default list rather than appending to it.
	cfg.P2P.Listen, cfg.P2P.Bootstrap = nil, nil
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		return cfg, describeDecodeError(err)
	}
	if !md.IsDefined("p2p", "listen") {
		cfg.P2P.Listen = Default().P2P.Listen
	}
	if cfg.P2P.Bootstrap == nil {
		cfg.P2P.Bootstrap = []string{}
	}
	// Names are case-insensitive: "Nyud.Net." is the zone nyud.net.
	cfg.Zone = strings.TrimSuffix(strings.ToLower(cfg.Zone), ".")
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = fmt.Sprintf("%q", k.String())
			if s := suggestKey(k.String()); s != "" {
				keys[i] += fmt.Sprintf(" (did you mean %q?)", s)
			} else if top := misplacedTopKey(k.String()); top != "" {
				keys[i] += fmt.Sprintf(" (%s is a top-level key: put it above the first [table] line)", top)
			}
		}
		return cfg, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	return cfg, cfg.Validate()
}

func describeDecodeError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if pe.LastKey != "" {
			return fmt.Errorf("line %d: key %q: %s", pe.Position.Line, pe.LastKey, pe.Message)
		}
		return fmt.Errorf("line %d: %s", pe.Position.Line, pe.Message)
	}
	return describeTypeError(err)
}

// KeyError is a validation failure of one key.
type KeyError struct {
	Key string
	Msg string
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %s", e.Key, e.Msg) }

// Validate checks values that decode fine but make no sense.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if err := validZone(c.Zone); err != nil {
		bad("zone", "%v", err)
	}
	checkAddr := func(key, addr string, mayBeEmpty bool) {
		if addr == "" {
			if !mayBeEmpty {
				bad(key, "must not be empty")
			}
			return
		}
		if _, port, err := net.SplitHostPort(addr); err != nil && strings.Trim(addr, "0123456789") == "" {
			bad(key, "want host:port, got %q: for every address of the machine write %q", addr, ":"+addr)
		} else if err != nil {
			bad(key, "want host:port, got %q", addr)
		} else if !validPort(port) {
			bad(key, "want a port from 0 to 65535 after the colon, got %q", addr)
		}
	}
	checkAddr("http.listen", c.HTTP.Listen, false)
	checkAddr("control.listen", c.Control.Listen, false)
	checkAddr("dns.listen", c.DNS.Listen, true)
	switch c.DNS.Nameserver {
	case "auto", "yes", "no":
	default:
		bad("dns.nameserver", `want "auto", "yes" or "no", got %q`, c.DNS.Nameserver)
	}
	c.DNS.validateRRL(bad)
	for i, ns := range c.DNS.Nameservers {
		key := fmt.Sprintf("dns.nameservers[%d]", i)
		name := strings.TrimSuffix(strings.ToLower(ns.Name), ".")
		if err := validZone(name); err != nil {
			bad(key+".name", "%v", err)
		} else if (name == c.Zone || strings.HasSuffix(name, "."+c.Zone)) && len(ns.Addrs) == 0 {
			bad(key+".addrs", "%s is inside the zone: its glue addresses are needed", ns.Name)
		}
		if _, j, err := ns.IPs(); err != nil {
			bad(fmt.Sprintf("%s.addrs[%d]", key, j), "%v", err)
		}
	}
	if c.HTTP.OriginTimeout <= 0 {
		bad("http.origin_timeout", "must be positive")
	}
	for i, a := range c.HTTP.Advertise {
		if ip, err := netip.ParseAddr(a); err != nil || ip.IsUnspecified() {
			bad(fmt.Sprintf("http.advertise[%d]", i), "want an IP address, got %q", a)
		}
	}
	if c.HTTP.MaxOriginFetches <= 0 {
		bad("http.max_origin_fetches", "must be at least 1")
	}
	if c.HTTP.MaxFetchesPerSite < 0 || c.HTTP.MaxFetchesPerSite > c.HTTP.MaxOriginFetches {
		bad("http.max_fetches_per_site", "want 0 (a quarter of max_origin_fetches) up to max_origin_fetches (%d), got %d",
			c.HTTP.MaxOriginFetches, c.HTTP.MaxFetchesPerSite)
	}
	if len(c.Cache.OriginPorts) == 0 {
		bad("cache.origin_ports", "must name at least one port")
	} else if _, err := coralurl.ParsePorts(c.Cache.OriginPorts); err != nil {
		bad("cache.origin_ports", "%v", err)
	}
	if c.Cache.MaxObjectBytes <= 0 {
		bad("cache.max_object_bytes", "must be positive")
	}
	if c.Cache.MinFreeBytes < MinFreeFloor {
		bad("cache.min_free_bytes", "must be at least %d MiB: the store's database needs that much room to write safely", MinFreeFloor>>20)
	}
	if c.Cache.MaxBytes < 0 {
		bad("cache.max_bytes", "must not be negative")
	}
	if c.Cache.MemoryBytes < 0 {
		bad("cache.memory_bytes", "must not be negative")
	}
	if c.Cache.MaxBytes > 0 && c.Cache.MaxObjectBytes > c.Cache.MaxBytes {
		bad("cache.max_object_bytes", "larger than cache.max_bytes")
	}
	for key, d := range map[string]Duration{"cache.heuristic_ttl": c.Cache.HeuristicTTL, "cache.max_stale": c.Cache.MaxStale, "cache.negative_ttl": c.Cache.NegativeTTL, "cache.peer_copy_max_age": c.Cache.PeerCopyMaxAge} {
		if d < 0 {
			bad(key, "must not be negative")
		}
	}
	for i, a := range c.P2P.Listen {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			bad(fmt.Sprintf("p2p.listen[%d]", i), "not a multiaddr: %v", err)
		}
	}
	if c.DSHT.Level2RTT <= 0 {
		bad("dsht.level2_rtt", "must be positive")
	} else if c.DSHT.Level1RTT <= c.DSHT.Level2RTT {
		bad("dsht.level1_rtt", "must be larger than dsht.level2_rtt (%s)", c.DSHT.Level2RTT.D())
	}
	for i, r := range c.P2P.EmulateRTT {
		key := fmt.Sprintf("p2p.emulate_rtt[%d]", i)
		if _, _, field, err := r.Prefixes(); err != nil {
			bad(key+"."+field, "%v", err)
		}
		if r.RTT < 0 {
			bad(key+".rtt", "must not be negative")
		}
	}
	for i, a := range c.P2P.Bootstrap {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			bad(fmt.Sprintf("p2p.bootstrap[%d]", i), "not a multiaddr: %v", err)
		}
	}
	if c.P2P.SecretFile == "" {
		bad("p2p.secret_file", "must not be empty")
	}
	if c.Control.TokenFile == "" {
		bad("control.token_file", "must not be empty")
	}
	switch c.P2P.Reachability {
	case "auto", "public", "private":
	default:
		bad("p2p.reachability", "want auto, public or private, got %q", c.P2P.Reachability)
	}
	if c.Operator.Key != "" {
		if _, err := runstate.ParsePublicKey(c.Operator.Key); err != nil {
			bad("operator.key", "want \"ed25519:\" and 43 base64url characters, as `coral operator keygen` prints")
		}
	}
	if !(c.GroupsReserve >= 0.05 && c.GroupsReserve <= 0.9) {
		bad("groups_reserve", "want a share from 0.05 to 0.9 of the upload cap, got %g", c.GroupsReserve)
	}
	for i, g := range c.Groups {
		if _, err := group.ParsePublicKey(g.Key); err != nil {
			bad(fmt.Sprintf("groups[%d].key", i), "want \"ed25519:\" and 43 base64url characters, as `coral group init` prints")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	errs = append(errs, validateBudget(c.Bandwidth, c.Sites)...)
	return errors.Join(errs...)
}

func validZone(z string) error {
	if z == "" {
		return errors.New("must not be empty")
	}
	if strings.HasPrefix(z, ".") || strings.HasSuffix(z, ".") {
		return fmt.Errorf("%q: no leading or trailing dot", z)
	}
	for _, label := range strings.Split(z, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%q: empty or overlong label", z)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q: only lower-case letters, digits and '-' are allowed", z)
			}
		}
	}
	return nil
}

// Path resolves a file name from the config (token_file, secret_file)
// against the data directory.
func (c Config) Path(name string) string {
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(c.DataDir, name)
}

// Size is a byte count written as "4GiB", "50MiB", "1000000" or "0".
type Size int64

// UnmarshalText parses a human-readable size.
func (s *Size) UnmarshalText(b []byte) error {
	n, err := humanize.ParseBytes(string(b))
	if err != nil {
		return fmt.Errorf("not a size (want e.g. \"50MiB\"): %q", b)
	}
	if n > 1<<62 {
		return fmt.Errorf("size too large: %q", b)
	}
	*s = Size(n)
	return nil
}

// MarshalText writes the size exactly, in the largest unit that divides
// it ("15872MiB" for 15.5GiB, "20GB"), so the text parses back to the same
// number: a rounded form ("16GiB") would show another size than the one in
// force.
func (s Size) MarshalText() ([]byte, error) {
	return []byte(shaping.Size(s).String()), nil
}

// Duration is a Go duration string such as "12h" or "60s".
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("not a duration (want e.g. \"60s\" or \"12h\"): %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
