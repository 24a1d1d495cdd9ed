package dsht

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Config is a node's DSHT configuration. Zero numeric fields take the
// defaults below; DefaultConfig also turns indirect routing on.
type Config struct {
	// Self is this node; Self.ID must be set (NodeID of the peer identity).
	Self NodeInfo

	// Levels holds the RTT threshold of each level, indexed by level. Level 0
	// is the global cluster and its entry must be 0; each higher level is more
	// local and needs a smaller threshold. Default {0, 60ms, 20ms}.
	Levels []time.Duration

	// K is the bucket size and the number of nodes a find_node lookup
	// settles on (20).
	K int
	// Alpha is the window of outstanding RPCs per lookup (4).
	Alpha int
	// RootNeighbours is how many of the closest nodes a get or put forward
	// phase hears from before it settles: the root and its neighbours (3).
	RootNeighbours int
	// Copies is how many nodes a put stores its value at per level: the one
	// the reverse phase settles on, plus the next ones down its stack (the
	// next closest to the key), so a get still finds the value when a holder
	// dies before the owner renews it (3: with 10% of nodes dying between a put
	// and its renewal, 2 copies left 1.1% of gets of 1,000 simulated nodes
	// empty-handed, 3 copies 0.1%).
	Copies int

	// FullValues (l) is how many values, each with at least half the new
	// value's TTL left and each from a different sender, make a node full
	// for a key (4).
	FullValues int
	// LoadedRate (β) is how many requests for a key within LoadWindow make a
	// node loaded for it (12 per minute).
	LoadedRate int
	LoadWindow time.Duration
	// MaxValuesPerKey bounds the values kept per key per level; the one
	// expiring first is dropped (16).
	MaxValuesPerKey int
	// ReturnValues bounds the values returned in one response (8).
	ReturnValues int
	// MaxStoredValues bounds all values this node stores (100000).
	MaxStoredValues int
	// MaxValuesPerSender bounds the values this node stores on behalf of
	// one other node (MaxStoredValues/16, 6250 by default), so one member
	// cannot fill the store; a sender under it may evict a value of the
	// sender holding the most when the store is full.
	MaxValuesPerSender int
	// MaxValueBytes bounds one value (1024); values are small referrals.
	MaxValueBytes int
	// MaxTTL bounds a value's lifetime (24h).
	MaxTTL time.Duration

	// ClusterFraction of the sampled members of a cluster must be within the
	// level's threshold for the cluster to be acceptable (0.8).
	ClusterFraction float64
	// ClusterMinSamples is the number of sampled members (or the cluster's
	// size, when smaller) needed before judging a cluster (3).
	ClusterMinSamples int
	// ClusterSample is how many members are pinged when sampling (8).
	ClusterSample int
	// ClusterInterval is how often cluster membership is re-evaluated (30s).
	ClusterInterval time.Duration
	// RefreshInterval is how often routing tables are refreshed, values
	// expired and the peer cache pruned (10m).
	RefreshInterval time.Duration
	// ClaimTTL is how long a peer's cluster claim counts (10m).
	ClaimTTL time.Duration

	// UnreachableTTL is how long a node this node failed to reach stays
	// "recently unreachable" (5m).
	UnreachableTTL time.Duration
	// Adaptive RPC timeouts are clamped to [MinRTO, MaxRTO]; InitialRTO is
	// used before any RTT was measured (50ms, 5s, 1s).
	MinRTO, MaxRTO, InitialRTO time.Duration
	// OpTimeout bounds one get, put or lookup (30s).
	OpTimeout time.Duration
	// PeerCacheSize bounds the cache of live/unreachable/indirect nodes (1024).
	PeerCacheSize int

	// IndirectRouting enables routing around non-transitive links: remember
	// "B via C" from lookups and relay through C (and relay for others).
	IndirectRouting bool
	// MaxForwards bounds the relays this node runs at once (64).
	MaxForwards int

	// Clock and AfterFunc let the simulator run nodes in virtual time
	// (default time.Now and time.AfterFunc).
	Clock     func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Rand drives every random choice (default: seeded from the runtime).
	Rand rand.Source
	// Logger gets the component attribute "dsht" (default slog.Default()).
	Logger *slog.Logger
}

// DefaultConfig returns the configuration a deployed node should use.
func DefaultConfig(self NodeInfo) Config {
	c := Config{Self: self, IndirectRouting: true}
	c.fill()
	return c
}

// DefaultLevels are CoralCDN's thresholds: global, < 60 ms, < 20 ms.
func DefaultLevels() []time.Duration {
	return []time.Duration{0, 60 * time.Millisecond, 20 * time.Millisecond}
}

func (c *Config) fill() {
	if len(c.Levels) == 0 {
		c.Levels = DefaultLevels()
	}
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.K, 20)
	setInt(&c.Alpha, 4)
	setInt(&c.RootNeighbours, 3)
	setInt(&c.Copies, 3)
	setInt(&c.FullValues, 4)
	setInt(&c.LoadedRate, 12)
	setDur(&c.LoadWindow, time.Minute)
	setInt(&c.MaxValuesPerKey, 16)
	setInt(&c.ReturnValues, 8)
	setInt(&c.MaxStoredValues, 100000)
	setInt(&c.MaxValuesPerSender, max(1, c.MaxStoredValues/16))
	setInt(&c.MaxValueBytes, 1024)
	setDur(&c.MaxTTL, 24*time.Hour)
	if c.ClusterFraction == 0 {
		c.ClusterFraction = 0.8
	}
	setInt(&c.ClusterMinSamples, 3)
	setInt(&c.ClusterSample, 8)
	setDur(&c.ClusterInterval, 30*time.Second)
	setDur(&c.RefreshInterval, 10*time.Minute)
	setDur(&c.ClaimTTL, 10*time.Minute)
	setDur(&c.UnreachableTTL, 5*time.Minute)
	setDur(&c.MinRTO, 50*time.Millisecond)
	setDur(&c.MaxRTO, 5*time.Second)
	setDur(&c.InitialRTO, time.Second)
	setDur(&c.OpTimeout, 30*time.Second)
	setInt(&c.PeerCacheSize, 1024)
	setInt(&c.MaxForwards, 64)
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
	if c.Rand == nil {
		c.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c *Config) validate() error {
	if c.Self.ID == (ID{}) {
		return errors.New("Self.ID is zero")
	}
	if len(c.Self.Addr) > MaxAddrLen {
		return fmt.Errorf("Self.Addr longer than %d bytes", MaxAddrLen)
	}
	if len(c.Levels) > MaxLevels {
		return fmt.Errorf("%d levels (at most %d)", len(c.Levels), MaxLevels)
	}
	if c.Levels[0] != 0 {
		return errors.New("Levels[0] (global) must be 0")
	}
	for l := 1; l < len(c.Levels); l++ {
		if c.Levels[l] <= 0 {
			return fmt.Errorf("Levels[%d] must be positive", l)
		}
		if l > 1 && c.Levels[l] >= c.Levels[l-1] {
			return fmt.Errorf("Levels[%d]=%v must be below Levels[%d]=%v (higher levels are more local)", l, c.Levels[l], l-1, c.Levels[l-1])
		}
	}
	pos := map[string]int{"K": c.K, "Alpha": c.Alpha, "RootNeighbours": c.RootNeighbours, "Copies": c.Copies, "FullValues": c.FullValues,
		"LoadedRate": c.LoadedRate, "MaxValuesPerKey": c.MaxValuesPerKey, "ReturnValues": c.ReturnValues,
		"MaxStoredValues": c.MaxStoredValues, "MaxValuesPerSender": c.MaxValuesPerSender, "MaxValueBytes": c.MaxValueBytes, "ClusterMinSamples": c.ClusterMinSamples,
		"ClusterSample": c.ClusterSample, "PeerCacheSize": c.PeerCacheSize, "MaxForwards": c.MaxForwards}
	for name, v := range pos {
		if v < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	durs := map[string]time.Duration{"LoadWindow": c.LoadWindow, "ClusterInterval": c.ClusterInterval,
		"RefreshInterval": c.RefreshInterval, "ClaimTTL": c.ClaimTTL, "UnreachableTTL": c.UnreachableTTL,
		"MinRTO": c.MinRTO, "MaxRTO": c.MaxRTO, "InitialRTO": c.InitialRTO, "OpTimeout": c.OpTimeout}
	for name, d := range durs {
		if d < 0 {
			return fmt.Errorf("%s must not be negative", name)
		}
	}
	if c.K > MaxWireContacts {
		return fmt.Errorf("K=%d above the wire limit %d", c.K, MaxWireContacts)
	}
	if c.ReturnValues > MaxWireValues {
		return fmt.Errorf("ReturnValues=%d above the wire limit %d", c.ReturnValues, MaxWireValues)
	}
	if c.MaxValueBytes > MaxWireValue {
		return fmt.Errorf("MaxValueBytes=%d above the wire limit %d", c.MaxValueBytes, MaxWireValue)
	}
	if c.MaxTTL <= 0 || c.MaxTTL.Milliseconds() > MaxWireTTL {
		return fmt.Errorf("MaxTTL=%v outside (0, 7d]", c.MaxTTL)
	}
	if c.ClusterFraction <= 0 || c.ClusterFraction > 1 {
		return fmt.Errorf("ClusterFraction=%v outside (0, 1]", c.ClusterFraction)
	}
	if c.MinRTO > c.MaxRTO {
		return fmt.Errorf("MinRTO %v above MaxRTO %v", c.MinRTO, c.MaxRTO)
	}
	return nil
}
