package control

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// Health is the node's state in plain words, the same on the status page
// and in the desktop window. Level says how worried to look.
type Health struct {
	Words string
	Level HealthLevel
}

// HealthLevel orders health from fine to broken.
type HealthLevel int

// Health levels.
const (
	HealthOK HealthLevel = iota
	HealthNote
	HealthWarn
)

func (l HealthLevel) String() string {
	return [...]string{"ok", "note", "warn"}[l]
}

// HealthOf words the state a volunteer cares about first: is the node
// serving, and if not fully, why.
func HealthOf(st Status) Health {
	switch {
	case st.RunState != nil && st.RunState.Why != "":
		return Health{"Not serving: " + st.RunState.Why, HealthWarn}
	case st.Budget != nil && !st.Budget.Serving:
		return budgetHealth(st.Budget)
	case st.Cache.DiskNote != "" || (!st.Cache.Storing && st.Cache.FreeBytes >= 0 && st.Cache.MinFreeBytes > 0):
		return Health{"Disk almost full: serving visitors without storing new copies", HealthWarn}
	case st.P2P == nil:
		return Health{"Serving visitors on its own (peer-to-peer is off)", HealthNote}
	case st.P2P.ConnectedPeers == 0 && st.P2P.JoinProblem != "":
		return Health{"Not on the network: " + st.P2P.JoinProblem, HealthWarn}
	case st.P2P.ConnectedPeers == 0:
		return Health{"Serving visitors; looking for other nodes", HealthNote}
	case st.P2P.Relayed:
		return Health{"Not reachable from the Internet: serving through relays", HealthNote}
	case st.P2P.Reachability == "private":
		return Health{"Not reachable from the Internet: looking for a relay", HealthWarn}
	}
	if st.Budget != nil && st.Budget.QuotaWarn && st.Budget.QuotaBytes > 0 {
		return Health{fmt.Sprintf("Serving visitors; %d %% of the monthly quota used", st.Budget.QuotaUsed*100/st.Budget.QuotaBytes), HealthNote}
	}
	return Health{"Serving visitors", HealthOK}
}

// budgetHealth words why the volunteer's budget stops serving, and until
// when: "Quota reached — resumes on the 1st".
func budgetHealth(b *BudgetStatus) Health {
	switch b.Reason {
	case "paused":
		return Health{"Paused", HealthNote}
	case "quota reached":
		return Health{"Quota reached — resumes " + resumeWords(b.ResumeAt, "next month"), HealthNote}
	case "off window":
		if b.Window < 0 { // no window: the configured upload or download cap is "off"
			return Health{`Off: upload or download is set to "off"`, HealthNote}
		}
		return Health{"Off by the schedule — resumes " + resumeWords(b.ResumeAt, "after the window"), HealthNote}
	}
	return Health{"Not serving: " + b.Reason, HealthWarn}
}

// resumeWords is "on the 1st" for another day, "at 18:00" for today.
func resumeWords(at time.Time, unknown string) string {
	if at.IsZero() {
		return unknown
	}
	at = at.Local()
	if y, m, d := time.Now().Date(); at.Year() == y && at.Month() == m && at.Day() == d {
		return "at " + at.Format("15:04")
	}
	return "on the " + ordinal(at.Day())
}

func ordinal(d int) string {
	suffix := "th"
	switch {
	case d%100 >= 11 && d%100 <= 13:
	case d%10 == 1:
		suffix = "st"
	case d%10 == 2:
		suffix = "nd"
	case d%10 == 3:
		suffix = "rd"
	}
	return fmt.Sprintf("%d%s", d, suffix)
}

// nameWords make node names people can tell apart and say aloud; a peer
// ID's printable prefix ("12D3KooW…") is the same on every node.
var nameAdjectives = [...]string{
	"amber", "brisk", "calm", "dusky", "eager", "fern", "gentle", "hazel",
	"ivory", "jolly", "keen", "lucid", "mellow", "noble", "olive", "proud",
	"quiet", "rosy", "sunny", "tidal", "umber", "vivid", "windy", "young",
	"azure", "bold", "coral", "deep", "early", "fair", "golden", "hardy",
}

var nameNouns = [...]string{
	"anchor", "beacon", "cove", "delta", "eddy", "fjord", "grotto", "harbor",
	"inlet", "jetty", "kelp", "lagoon", "marlin", "narwhal", "otter", "pearl",
	"quay", "reef", "shoal", "tern", "urchin", "vortex", "wave", "yawl",
	"atoll", "bay", "current", "dune", "estuary", "ferry", "gull", "heron",
}

// NodeName is a short name for a node ID, stable for the ID, e.g.
// "quiet-heron-3f": two words and two hex digits from a hash of the whole
// ID, so nodes whose IDs share a prefix still get different names.
func NodeName(id string) string {
	if strings.TrimSpace(id) == "" {
		return "unnamed node"
	}
	h := sha256.Sum256([]byte(id))
	return fmt.Sprintf("%s-%s-%02x", nameAdjectives[int(h[0])%len(nameAdjectives)],
		nameNouns[int(h[1])%len(nameNouns)], h[2])
}

// PeersInWords says how connected the node is, e.g. "Connected to 5 other
// nodes, 1 of them a relay".
func PeersInWords(st Status) string {
	if st.P2P == nil {
		return "Peer-to-peer is off: this node works alone"
	}
	n := st.P2P.ConnectedPeers
	s := fmt.Sprintf("Connected to %d other %s", n, plural(n, "node", "nodes"))
	if st.P2P.Relayed {
		s += fmt.Sprintf(", reached by visitors through %d %s", len(st.P2P.RelayAddrs), plural(len(st.P2P.RelayAddrs), "relay", "relays"))
	}
	return s
}

// ClusterWords describes one DSHT level: level 0 is the whole network,
// higher levels are ever closer groups of nodes.
func ClusterWords(l LevelStatus) string {
	scope := "nearby nodes"
	switch l.Level {
	case 0:
		return fmt.Sprintf("Whole network: knows %d %s", l.RoutingSize, plural(l.RoutingSize, "node", "nodes"))
	case 1:
		scope = "nodes in the same region"
	}
	if l.ClusterID == "" || l.ClusterSize <= 1 {
		return fmt.Sprintf("Level %d (%s): no cluster yet, no close node found", l.Level, scope)
	}
	return fmt.Sprintf("Level %d (%s): in a cluster of %d, knows %d", l.Level, scope, l.ClusterSize, l.RoutingSize)
}

// ClusterLabel is a level's cluster ID for a table cell, never blank.
func ClusterLabel(l LevelStatus) string {
	switch {
	case l.Level == 0:
		return "whole network"
	case l.ClusterID == "":
		return "none yet"
	}
	return l.ClusterID
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
