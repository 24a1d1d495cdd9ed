package runstate

import (
	"crypto/ed25519"
	"fmt"
	"strconv"
	"strings"

	sdoc "github.com/coralcdn/coral/core/signed"
)

// Tracker holds the document in force on one node: the last one accepted,
// kept in a file so that it applies across restarts with or without the
// network (see core/signed). It is safe for concurrent use.
type Tracker = sdoc.Tracker[Document]

// NewTracker loads the last accepted document from path, if any. trusted
// may be nil (the node follows no operator). A stored document that no
// longer verifies (the key changed, the file was damaged) is not applied,
// and the error says why; the tracker is usable either way.
func NewTracker(path string, trusted ed25519.PublicKey) (*Tracker, error) {
	return sdoc.NewTracker(kind, path, trusted)
}

// Effect is what a document means for one node of a given version.
type Effect struct {
	Serving map[string]bool // component -> serves
	// Why explains each stopped component (empty when all serve).
	Why     string
	Message string
}

// EffectFor is what doc means for a node running version. A node older
// than the minimum stops every component; a version that is not a release
// number (a development build) cannot be compared and is let run, with
// Why saying so.
func EffectFor(doc Document, version string) Effect {
	e := Effect{Serving: map[string]bool{}, Message: doc.Message}
	var why []string
	tooOld := false
	if doc.MinVersion != "" {
		min, _ := ParseVersion(doc.MinVersion)
		have, ok := ParseVersion(version)
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("the network requires coral %s or newer; this build (%q) has no release number, so it runs anyway", doc.MinVersion, version))
		case have.Less(min):
			tooOld = true
			why = append(why, fmt.Sprintf("stopped: this node runs coral %s, the network requires %s or newer: upgrade coral", version, doc.MinVersion))
		}
	}
	var paused []string
	for _, c := range Components {
		e.Serving[c] = !tooOld && !doc.IsPaused(c)
		if doc.IsPaused(c) {
			paused = append(paused, c)
		}
	}
	if len(paused) > 0 {
		why = append(why, fmt.Sprintf("paused by the network's operator: %s (run state %d)", strings.Join(paused, ", "), doc.Serial))
	}
	e.Why = strings.Join(why, "; ")
	return e
}

// Version is a release number major.minor.patch.
type Version [3]int

// ParseVersion reads "1.2.3", "v1.2.3", "1.2" or a build's version such as
// "0.2.0+git1a2b3c" (anything after the numbers is ignored).
func ParseVersion(s string) (Version, bool) {
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexAny(s, "+-~ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return Version{}, false
	}
	var v Version
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || p == "" || p[0] == '+' {
			return Version{}, false
		}
		v[i] = n
	}
	return v, true
}

// Less reports whether v is older than w.
func (v Version) Less(w Version) bool {
	for i := range v {
		if v[i] != w[i] {
			return v[i] < w[i]
		}
	}
	return false
}
