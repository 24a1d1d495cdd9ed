package p2p

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	peersFile        = "peers.json"
	maxKnownPeers    = 256
	knownPeerMaxAge  = 30 * 24 * time.Hour
	maxAddrsPerPeer  = 8
	rejoinPeers      = 32 // known peers dialled when (re)joining
	joinParallel     = 8
	mdnsDialAttempts = 4
	aloneCheckPeriod = 30 * time.Second
	// peerSaveGap throttles the looks for changed peers and the saves
	// that follow: the first change is written at once, later ones at
	// most this often.
	peerSaveGap = 5 * time.Second
)

// joinDialTimeout outlasts the swarm's own per-address dial timeout (15 s,
// 5 s on a LAN), so a dial that stalls in the handshake ends with the
// transport's error, which says so: about 3 in 10 dials with the wrong
// network key stall rather than fail (netid.go).
const joinDialTimeout = 20 * time.Second

// peerBook remembers peers this node has been connected to, so a restarted
// node rejoins the network without its bootstrap list.
type peerBook struct {
	path string
	log  *slog.Logger

	mu    sync.Mutex
	peers map[peer.ID]*knownPeer
}

type knownPeer struct {
	addrs    []ma.Multiaddr
	lastSeen time.Time
}

type peerFileEntry struct {
	ID       string    `json:"id"`
	Addrs    []string  `json:"addrs"`
	LastSeen time.Time `json:"last_seen"`
}

type peerFileV1 struct {
	Version int             `json:"version"`
	Peers   []peerFileEntry `json:"peers"`
}

func newPeerBook(dataDir string, log *slog.Logger) *peerBook {
	return &peerBook{path: filepath.Join(dataDir, peersFile), log: log, peers: map[peer.ID]*knownPeer{}}
}

// load reads the peer file. Entries that do not parse are skipped.
func (b *peerBook) load() error {
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("p2p: read %s: %w", b.path, err)
	}
	var f peerFileV1
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("p2p: decode %s: %w", b.path, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("p2p: %s: unknown version %d", b.path, f.Version)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range f.Peers {
		id, err := peer.Decode(e.ID)
		if err != nil {
			continue
		}
		kp := &knownPeer{lastSeen: e.LastSeen}
		for _, s := range e.Addrs {
			if a, err := ma.NewMultiaddr(s); err == nil {
				kp.addrs = append(kp.addrs, a)
			}
		}
		if len(kp.addrs) > 0 {
			b.peers[id] = kp
		}
	}
	return nil
}

// update records the currently connected peers with their direct
// addresses. It reports whether that changed what a save would write
// beyond the last-seen times: a new peer or new addresses.
func (b *peerBook) update(h host.Host) (changed bool) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range h.Network().Peers() {
		var addrs []ma.Multiaddr
		for _, a := range h.Peerstore().Addrs(p) {
			// Relay addresses go stale with the reservation; direct ones
			// are worth trying after a restart.
			if !isRelayed(a) && len(addrs) < maxAddrsPerPeer {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		if old, ok := b.peers[p]; !ok || !sameAddrs(old.addrs, addrs) {
			changed = true
		}
		b.peers[p] = &knownPeer{addrs: addrs, lastSeen: now}
	}
	return changed
}

func sameAddrs(a, b []ma.Multiaddr) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x ma.Multiaddr) bool {
		return !slices.ContainsFunc(b, x.Equal)
	})
}

// recent returns up to n peers, most recently seen first.
func (b *peerBook) recent(n int) []peer.AddrInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	type entry struct {
		id peer.ID
		kp *knownPeer
	}
	all := make([]entry, 0, len(b.peers))
	for id, kp := range b.peers {
		all = append(all, entry{id, kp})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].kp.lastSeen.After(all[j].kp.lastSeen) })
	if len(all) > n {
		all = all[:n]
	}
	out := make([]peer.AddrInfo, 0, len(all))
	for _, e := range all {
		out = append(out, peer.AddrInfo{ID: e.id, Addrs: e.kp.addrs})
	}
	return out
}

// save writes the book, dropping entries not seen for knownPeerMaxAge and
// keeping the maxKnownPeers most recent.
func (b *peerBook) save() error {
	cutoff := time.Now().Add(-knownPeerMaxAge)
	b.mu.Lock()
	for id, kp := range b.peers {
		if kp.lastSeen.Before(cutoff) {
			delete(b.peers, id)
		}
	}
	b.mu.Unlock()
	f := peerFileV1{Version: 1}
	for _, ai := range b.recent(maxKnownPeers) {
		b.mu.Lock()
		seen := b.peers[ai.ID].lastSeen
		b.mu.Unlock()
		e := peerFileEntry{ID: ai.ID.String(), LastSeen: seen.UTC()}
		for _, a := range ai.Addrs {
			e.Addrs = append(e.Addrs, a.String())
		}
		f.Peers = append(f.Peers, e)
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("p2p: encode known peers: %w", err)
	}
	if err := writeFileAtomic(b.path, data, 0o600); err != nil {
		return fmt.Errorf("p2p: save known peers: %w", err)
	}
	return nil
}

func (h *Host) savePeers() error {
	h.book.update(h.host)
	return h.book.save()
}

// maintain keeps the node joined: it dials bootstrap and known peers at
// start and whenever the node finds itself alone, and saves known peers
// when they change (looked at and written at most once per peerSaveGap,
// the first change at once) and every PeerSaveInterval, so a node killed
// at any time after it met a peer finds the network again without its
// bootstrap list. A connection event only schedules a look: walking every
// peer's addresses on each of them cost an idle node with a hundred peers
// 5 % of its CPU (issue 17).
func (h *Host) maintain() {
	sub, err := h.host.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerConnectednessChanged),
	}, eventbus.Name("coral-peerbook"))
	if err != nil {
		h.log.Warn("known peers are saved on a timer only", "err", err)
	} else {
		defer sub.Close()
	}
	h.wg.Go(h.join) // concurrently: changes are saved while it dials
	alone := time.NewTicker(aloneCheckPeriod)
	defer alone.Stop()
	save := time.NewTicker(h.cfg.PeerSaveInterval)
	defer save.Stop()
	var look <-chan time.Time // a look for changes is due
	var lastLook time.Time
	lookNow := func() {
		lastLook = time.Now()
		if h.book.update(h.host) {
			h.trySavePeers()
		}
	}
	if h.book.update(h.host) { // peers met before the subscription (mDNS)
		lookNow()
	}
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-alone.C:
			h.scorer.prune()
			h.links.trimIdle()
			if len(h.host.Network().Peers()) == 0 {
				h.wg.Go(h.join)
			}
		case ev := <-subOut(sub):
			h.observed.note(ev)
			if look == nil {
				look = time.After(max(0, peerSaveGap-time.Since(lastLook)))
			}
		case <-look:
			look = nil
			lookNow()
		case <-save.C:
			h.trySavePeers()
		}
	}
}

func subOut(sub event.Subscription) <-chan any {
	if sub == nil {
		return nil
	}
	return sub.Out()
}

func (h *Host) trySavePeers() {
	if err := h.savePeers(); err != nil {
		h.log.Warn("saving known peers failed", "err", err)
	}
}

// join dials the bootstrap peers and the most recently seen known peers.
func (h *Host) join() {
	seen := map[peer.ID]bool{h.ID(): true}
	var targets []peer.AddrInfo
	for _, ai := range append(append([]peer.AddrInfo{}, h.boot...), h.book.recent(rejoinPeers)...) {
		if seen[ai.ID] || h.scorer.isBanned(ai.ID) {
			continue
		}
		seen[ai.ID] = true
		targets = append(targets, ai)
	}
	if len(targets) == 0 {
		return
	}
	sem := make(chan struct{}, joinParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for _, ai := range targets {
		select {
		case sem <- struct{}{}:
		case <-h.ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(h.ctx, joinDialTimeout)
			defer cancel()
			if err := h.host.Connect(ctx, ai); err != nil {
				h.log.Debug("join: dial failed", "peer", ai.ID, "err", err)
				if handshakeRefused(err) {
					mu.Lock()
					refused++
					mu.Unlock()
				}
				return
			}
			mu.Lock()
			ok++
			mu.Unlock()
		})
	}
	wg.Wait()
	h.noteJoin(len(targets), ok, refused)
	h.log.Info("joined network", "dialled", len(targets), "connected", ok)
}

// mdnsNotifee dials members found on the LAN.
type mdnsNotifee struct{ h *Host }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	h := n.h
	if ai.ID == h.ID() || h.ctx.Err() != nil || h.scorer.isBanned(ai.ID) {
		return
	}
	// mDNS reports a member once; a dial lost to a race (both ends
	// dialling at once, a listener not yet up) is not reported again, so
	// it is retried a few times before the member is left to the DSHT.
	go func() {
		backoff := time.Second
		for attempt := 1; ; attempt++ {
			ctx, cancel := context.WithTimeout(h.ctx, joinDialTimeout)
			if attempt > 1 {
				// Past the swarm's dial backoff, which the failure set.
				ctx = network.WithForceDirectDial(ctx, "mDNS retry")
			}
			err := h.host.Connect(ctx, ai)
			cancel()
			if err == nil {
				h.log.Debug("mDNS: connected", "peer", ai.ID)
				return
			}
			h.log.Debug("mDNS: dial failed", "peer", ai.ID, "attempt", attempt, "err", err)
			if attempt == mdnsDialAttempts {
				return
			}
			select {
			case <-h.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff *= 2
		}
	}()
}
