package p2p

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	reserveTimeout  = 10 * time.Second
	reserveBackoff  = 5 * time.Minute
	reserveRefresh  = 5 * time.Minute // renew when a reservation has less left
	reserveTick     = 30 * time.Second
	relayProtectTag = "coral-relay"
	maxCircuitAddrs = 4 // per relay
)

// reserver holds circuit-relay reservations on a few neighbours while the
// node is not known to be publicly reachable, so members whose direct path
// to it is broken (NAT, firewall, a non-transitive link) can still reach it
// through those neighbours.
//
// go-libp2p's autorelay does this too, but only once AutoNAT says
// "private" — on a LAN or behind a NAT without public addresses it stays
// "unknown" forever — and it drops relays with private addresses, which is
// every relay of a home network. So Coral keeps its own, simpler loop.
type reserver struct {
	h    *Host
	want int

	trigger chan struct{}
	done    chan struct{}
	sub     event.Subscription

	mu      sync.Mutex
	rsv     map[peer.ID]*reservation
	backoff map[peer.ID]time.Time
}

type reservation struct {
	expires time.Time
	// circuit are our addresses through this relay, computed when the slot
	// was reserved: the host's address factory reads them and must not
	// touch the host (it runs while the host is still being built).
	circuit []ma.Multiaddr
}

func newReserver(h *Host, want int) *reserver {
	return &reserver{
		h:       h,
		want:    want,
		trigger: make(chan struct{}, 1),
		done:    make(chan struct{}),
		rsv:     map[peer.ID]*reservation{},
		backoff: map[peer.ID]time.Time{},
	}
}

func (r *reserver) start() error {
	if r.want <= 0 {
		close(r.done)
		return nil
	}
	sub, err := r.h.host.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerConnectednessChanged),
	}, eventbus.Name("coral-reserver"))
	if err != nil {
		return fmt.Errorf("p2p: subscribe for relay reservations: %w", err)
	}
	r.sub = sub
	go r.loop()
	return nil
}

func (r *reserver) kick() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

func (r *reserver) close() {
	<-r.done
}

func (r *reserver) loop() {
	defer close(r.done)
	defer r.sub.Close()
	tick := time.NewTicker(reserveTick)
	defer tick.Stop()
	r.kick()
	for {
		select {
		case <-r.h.ctx.Done():
			return
		case <-r.sub.Out():
			r.kick()
		case <-tick.C:
			r.kick()
		case <-r.trigger:
			r.run(r.h.ctx)
		}
	}
}

// relays lists the relays currently holding a reservation for us.
func (r *reserver) relays() []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]peer.ID, 0, len(r.rsv))
	for p := range r.rsv {
		out = append(out, p)
	}
	return out
}

// circuitAddrs are our addresses through the relays that hold reservations.
func (r *reserver) circuitAddrs() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ma.Multiaddr
	for _, rv := range r.rsv {
		out = append(out, rv.circuit...)
	}
	return out
}

// run brings the reservations up to date: drop lost relays, renew those
// about to expire, and take new ones until we hold r.want.
func (r *reserver) run(ctx context.Context) {
	hst := r.h.host
	now := time.Now()

	if r.h.Reachability() == ReachabilityPublic {
		r.mu.Lock()
		for p := range r.rsv {
			hst.ConnManager().Unprotect(p, relayProtectTag)
			delete(r.rsv, p)
		}
		r.mu.Unlock()
		return
	}

	r.mu.Lock()
	var renew []peer.ID
	for p, rv := range r.rsv {
		switch {
		case hst.Network().Connectedness(p) != network.Connected:
			hst.ConnManager().Unprotect(p, relayProtectTag)
			delete(r.rsv, p)
		case rv.expires.Sub(now) < reserveRefresh:
			renew = append(renew, p)
		}
	}
	for p, until := range r.backoff {
		if now.After(until) {
			delete(r.backoff, p)
		}
	}
	r.mu.Unlock()

	for _, p := range renew {
		r.reserve(ctx, p)
	}

	r.mu.Lock()
	need := r.want - len(r.rsv)
	r.mu.Unlock()
	if need <= 0 {
		return
	}
	for _, p := range r.candidates() {
		if ctx.Err() != nil || need <= 0 {
			return
		}
		if r.reserve(ctx, p) {
			need--
		}
	}
}

// candidates are directly connected peers that run the relay service and
// that we hold no reservation with, in random order.
func (r *reserver) candidates() []peer.ID {
	hst := r.h.host
	var out []peer.ID
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range hst.Network().Peers() {
		if _, ok := r.rsv[p]; ok {
			continue
		}
		if _, ok := r.backoff[p]; ok {
			continue
		}
		if hst.Network().Connectedness(p) != network.Connected {
			continue // only a relayed (limited) connection
		}
		if ok, _ := hst.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) == 0 {
			continue
		}
		out = append(out, p)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (r *reserver) reserve(ctx context.Context, p peer.ID) bool {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	rv, err := client.Reserve(ctx, r.h.host, peer.AddrInfo{ID: p})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.h.log.Debug("relay reservation failed", "relay", p, "err", err)
		delete(r.rsv, p)
		r.backoff[p] = time.Now().Add(reserveBackoff)
		r.h.host.ConnManager().Unprotect(p, relayProtectTag)
		return false
	}
	if _, had := r.rsv[p]; !had {
		r.h.log.Info("relay reservation acquired", "relay", p, "expires", rv.Expiration)
	}
	var circuit []ma.Multiaddr
	if suffix, err := ma.NewMultiaddr("/p2p/" + p.String() + "/p2p-circuit"); err == nil {
		for _, a := range r.h.host.Peerstore().Addrs(p) {
			if !isRelayed(a) && len(circuit) < maxCircuitAddrs {
				circuit = append(circuit, a.Encapsulate(suffix))
			}
		}
	}
	r.rsv[p] = &reservation{expires: rv.Expiration, circuit: circuit}
	r.h.host.ConnManager().Protect(p, relayProtectTag)
	return true
}
