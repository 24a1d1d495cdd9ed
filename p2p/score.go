package p2p

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Misbehaviour scoring. Points decay with a half-life so an occasional bug in
// a well-meaning peer is forgiven, while a peer that keeps sending garbage
// crosses the threshold and is disconnected and refused for banDuration.
const (
	penaltyMalformed = 20.0  // a message that broke the wire format
	penaltyBadObject = 100.0 // an object whose length or hash contradicts what the sender stated
	banThreshold     = 100.0
	scoreHalfLife    = 10 * time.Minute
	defaultBan       = 30 * time.Minute
)

type peerScore struct {
	points float64
	at     time.Time
	banned time.Time // zero unless banned; ban ends at banned+banFor
}

// scorer keeps misbehaviour scores and is the host's connection gater: it
// refuses dials to and connections from banned peers, and consults an
// optional extra gater (tests use one to cut links).
type scorer struct {
	log    *slog.Logger
	banFor time.Duration
	extra  connmgr.ConnectionGater
	now    func() time.Time

	mu     sync.Mutex
	scores map[peer.ID]*peerScore

	// onBan is set once the host exists; it disconnects the peer.
	onBan func(peer.ID)
}

var _ connmgr.ConnectionGater = (*scorer)(nil)

func newScorer(log *slog.Logger, banFor time.Duration, extra connmgr.ConnectionGater) *scorer {
	if banFor <= 0 {
		banFor = defaultBan
	}
	return &scorer{log: log, banFor: banFor, extra: extra, now: time.Now, scores: map[peer.ID]*peerScore{}}
}

// penalise adds points to p's score; it returns true if that banned p.
func (s *scorer) penalise(p peer.ID, points float64, reason string) bool {
	if p == "" {
		return false
	}
	now := s.now()
	s.mu.Lock()
	ps := s.scores[p]
	if ps == nil {
		ps = &peerScore{at: now}
		s.scores[p] = ps
	}
	ps.points = decay(ps.points, now.Sub(ps.at)) + points
	ps.at = now
	banned := false
	if ps.points >= banThreshold && !s.bannedLocked(p, now) {
		ps.banned = now
		banned = true
	}
	score := ps.points
	onBan := s.onBan
	s.mu.Unlock()

	s.log.Warn("peer misbehaved", "peer", p, "reason", reason, "score", math.Round(score), "banned", banned)
	if banned && onBan != nil {
		onBan(p)
	}
	return banned
}

func decay(points float64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return points
	}
	return points * math.Exp2(-float64(elapsed)/float64(scoreHalfLife))
}

// score is p's current (decayed) score.
func (s *scorer) score(p peer.ID) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.scores[p]
	if ps == nil {
		return 0
	}
	return decay(ps.points, s.now().Sub(ps.at))
}

func (s *scorer) isBanned(p peer.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bannedLocked(p, s.now())
}

func (s *scorer) bannedLocked(p peer.ID, now time.Time) bool {
	ps := s.scores[p]
	if ps == nil || ps.banned.IsZero() {
		return false
	}
	if now.Sub(ps.banned) < s.banFor {
		return true
	}
	// The ban ran out: start with a clean slate.
	delete(s.scores, p)
	return false
}

// bannedCount counts peers currently refused.
func (s *scorer) bannedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for p := range s.scores {
		if s.bannedLocked(p, now) {
			n++
		}
	}
	return n
}

// prune forgets scores that have decayed to nothing so the map stays small.
func (s *scorer) prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for p, ps := range s.scores {
		// bannedLocked also drops scores whose ban has run out.
		if !s.bannedLocked(p, now) && decay(ps.points, now.Sub(ps.at)) < 1 {
			delete(s.scores, p)
		}
	}
}

func (s *scorer) InterceptPeerDial(p peer.ID) bool {
	if s.isBanned(p) {
		return false
	}
	return s.extra == nil || s.extra.InterceptPeerDial(p)
}

func (s *scorer) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	if s.isBanned(p) {
		return false
	}
	return s.extra == nil || s.extra.InterceptAddrDial(p, a)
}

func (s *scorer) InterceptAccept(cm network.ConnMultiaddrs) bool {
	return s.extra == nil || s.extra.InterceptAccept(cm)
}

func (s *scorer) InterceptSecured(d network.Direction, p peer.ID, cm network.ConnMultiaddrs) bool {
	if s.isBanned(p) {
		return false
	}
	return s.extra == nil || s.extra.InterceptSecured(d, p, cm)
}

func (s *scorer) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	if s.extra == nil {
		return true, 0
	}
	return s.extra.InterceptUpgraded(c)
}
