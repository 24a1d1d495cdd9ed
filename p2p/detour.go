package p2p

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Detours. A connection can go through a relay although the direct path
// works: the dial ranker tries relays relayDialDelay behind the direct
// addresses, and a direct handshake slower than that (a busy machine, a
// slow home router) loses the race; or the node knew only the peer's
// circuit addresses when it dialled. libp2p then keeps the relayed
// connection for as long as it is used — its hole punching only runs on
// hosts with public addresses, never on a LAN — and a volunteer's relay
// carries two other members' traffic for good: an idle node with 96 peers
// relayed ~6 messages a second for nodefig's crowd, a third of its own
// messages (issue 17).
//
// So when a peer is reached only through a relay, the node tries its
// direct addresses once, a moment later (the relayed connection's
// identify tells it the peer's own addresses), and at most once per
// detourRetry; once a direct connection is open, relayed connections to
// the peer that carry no stream are closed — at once, and at every heal
// tick for those still busy then. Peers whose direct path the link watch
// cut as dead are left to its healing (healAll).
const (
	detourWaitMin = time.Second
	detourWaitMax = 3 * time.Second
	detourRetry   = 10 * time.Minute
)

// takeDirect tries the direct path to p after a short wait, unless p was
// tried within detourRetry or its direct path was cut as dead.
func (w *linkWatch) takeDirect(p peer.ID) {
	now := time.Now()
	w.mu.Lock()
	_, cut := w.cut[p]
	last, tried := w.detoured[p]
	if cut || (tried && now.Sub(last) < detourRetry) {
		w.mu.Unlock()
		return
	}
	w.detoured[p] = now
	w.mu.Unlock()
	wait := detourWaitMin + rand.N(detourWaitMax-detourWaitMin)
	// Not in h.wg: connection events arrive while Close waits. The wait
	// and the dial are bounded by h.ctx and directDialTimeout.
	go func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-w.h.ctx.Done():
			return
		case <-t.C:
		}
		w.dialDirect(p)
	}()
}

// dialDirect dials p's direct addresses if it is still reached only
// through a relay, and closes the idle relayed connections once a direct
// one is open.
func (w *linkWatch) dialDirect(p peer.ID) {
	if w.directConns(p) == 0 {
		if !hasConn(w.h.host.Network().Connectedness(p)) {
			return // gone meanwhile: nothing to move
		}
		ctx, cancel := context.WithTimeout(w.h.ctx, directDialTimeout)
		err := w.h.host.Connect(network.WithForceDirectDial(ctx, "relay detour"), peer.AddrInfo{ID: p})
		cancel()
		if err != nil || w.directConns(p) == 0 {
			w.h.log.Debug("peer reached through a relay only; its direct path failed", "peer", p, "err", err)
			return
		}
		w.h.log.Debug("peer reached through a relay now reached directly", "peer", p)
	}
	w.closeDetours(p)
}

// forgetDetours forgets tries older than detourRetry.
func (w *linkWatch) forgetDetours(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p, at := range w.detoured {
		if now.Sub(at) >= detourRetry {
			delete(w.detoured, p)
		}
	}
}

// closeDetours closes p's relayed connections that carry no stream when a
// direct connection to p is open and not under a probe (a direct path in
// doubt keeps its detour). New streams take the direct one (the swarm
// prefers it); a relayed one still busy is closed at a later heal tick.
func (w *linkWatch) closeDetours(p peer.ID) {
	if w.directConns(p) == 0 || w.probingPeer(p) {
		return
	}
	for _, c := range w.h.host.Network().ConnsToPeer(p) {
		if relayedConn(c) && len(c.GetStreams()) == 0 {
			_ = c.Close()
		}
	}
}

// probingPeer says whether one of p's connections is being probed.
func (w *linkWatch) probingPeer(p peer.ID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.probing {
		if c.RemotePeer() == p {
			return true
		}
	}
	return false
}

// closeAllDetours closes the idle relayed connections of every peer also
// reached directly.
func (w *linkWatch) closeAllDetours() {
	seen := map[peer.ID]bool{}
	for _, c := range w.h.host.Network().Conns() {
		p := c.RemotePeer()
		if seen[p] || !relayedConn(c) {
			continue
		}
		seen[p] = true
		w.closeDetours(p)
	}
}
