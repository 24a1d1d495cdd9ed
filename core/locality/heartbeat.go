package locality

import (
	"context"
	"sync"
	"time"
)

// The heartbeat that keeps the Directory current.
//
// Peers learn each other's proxy over /coral/info (p2p.ServeInfo): the
// reply is this node's Announcement — the addresses its HTTP proxy accepts
// visitors on, whether it is publicly reachable, whether it answers DNS on
// port 53, its DSHT clusters. Chosen over announcing in the DSHT because
// the exchange doubles as the liveness heartbeat, reaches exactly the peers
// whose liveness this node can vouch for (the connected ones), and needs no
// lookup per peer.
//
// A newly connected peer is asked at once. After that a peer is asked
// again only when it says its announcement changed (Peers.NotifyInfoChanged,
// sent by the heartbeat when Refresh sees a change that matters to peers:
// addresses, reachability, clusters, room to serve) or when heartbeatRefresh
// has passed. Between exchanges liveness rides on the traffic the peer sends
// anyway (Peers.HeardFrom): every heartbeatInterval a peer whose last
// exchange succeeded and that delivered bytes since is marked alive
// (Directory.Alive) — the link watch pings an idle direct connection every
// 20 s, so a live peer always has. An idle node with 96 peers thus costs an
// exchange every few seconds, not one per peer every few seconds, and not
// a stream per peer per LiveWindow either (issue 17). Peers reached only
// through a relay and not heard from, and peers whose last exchange
// failed, are still asked every heartbeatInterval: the link watch does not
// ping relayed connections, so for those the heartbeat is the liveness
// check.
//
// A failed exchange makes the peer "not heard from" until one succeeds
// again, so the nameserver pings it synchronously (libp2p ping) before
// handing it out; a second failure in a row drops it from the answers until
// it answers again; and a peer whose last connection closes is dropped at
// once. A crashed proxy therefore leaves the answers when the kernel closes
// its connections, and a hung one when the link watch (p2p/links.go,
// pinging every direct connection that carried nothing for 2 s, 2 s
// timeout) closes its connection; dnsserver's LiveWindow (60 s, longer
// than the link watch's idle ping interval) is only the bound for a
// stalled heartbeat loop or a link that goes quiet without closing.
const (
	heartbeatInterval = 5 * time.Second
	heartbeatRefresh  = 5 * time.Minute
	heartbeatTimeout  = 2 * time.Second
	heartbeatParallel = 16
)

// heartbeat keeps the directory current, and tells connected peers when
// this node's announcement changed, until ctx ends.
func (l *Locator) heartbeat(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	sched := l.sched
	dnsOn := l.cfg.DNSListen != ""
	sem := make(chan struct{}, heartbeatParallel)
	run := func(f func()) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			f()
		})
	}
	ask := func(id string) {
		if sched.start(id) {
			run(func() {
				for sched.done(id, l.exchange(ctx, id), time.Now()) {
				}
			})
		}
	}
	unsent := newUnsentNotices()
	notify := func(id string) {
		run(func() { unsent.done(id, l.notifyChanged(ctx, id)) })
	}
	beat := func() {
		l.Refresh()
		for _, id := range unsent.retry(l.peers.IsConnected) {
			notify(id)
		}
		if !dnsOn {
			return
		}
		l.sweep(ask)
	}
	beat()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.wake.ready:
			for _, id := range l.wake.take() {
				if dnsOn {
					ask(id)
				}
			}
		case <-l.changed:
			unsent.reset()
			for _, id := range l.peers.ConnectedIDs() {
				notify(id)
			}
		case <-t.C:
			beat()
		}
	}
}

// sweep asks the connected peers that are due, marks alive those whose
// traffic shows it, and forgets the ones that left.
func (l *Locator) sweep(ask func(id string)) {
	// One list of the connected peers per sweep, not a lookup per peer
	// and per table: a sweep touches every peer (issue 17).
	ids := l.peers.ConnectedIDs()
	connected := make(map[string]bool, len(ids))
	for _, id := range ids {
		connected[id] = true
	}
	isConnected := func(id string) bool { return connected[id] }
	l.dir.Retain(isConnected)
	l.sched.retain(isConnected)
	now := time.Now()
	for _, id := range ids {
		heard := l.peers.HeardFrom(id)
		switch {
		case l.sched.due(id, now, heard, len(l.peers.PeerIPs(id)) == 0):
			ask(id)
		case l.sched.heardSince(id, heard):
			l.dir.Alive(id, heard)
		}
	}
}

// notifyChanged tells one peer that this node's announcement changed and
// reports whether it got through. Peers that do not listen (an older
// version) refresh on their own.
func (l *Locator) notifyChanged(ctx context.Context, id string) bool {
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	defer cancel()
	err := l.peers.NotifyInfoChanged(cctx, id)
	if err != nil && ctx.Err() == nil {
		l.log.Debug("telling a peer our announcement changed", "peer", id, "err", err)
	}
	return err == nil
}

// noticeRetries is how many sweeps a failed change notice is sent again:
// after heartbeatRefresh the peer asks anyway.
const noticeRetries = int(heartbeatRefresh / heartbeatInterval)

// unsentNotices are the peers the last change notice did not reach (a
// stream refused by a busy peer, a timeout under load). Each sweep sends
// it to them again, so such a peer does not keep serving the old
// announcement — a paused node in its DNS answers — until its periodic
// refresh.
type unsentNotices struct {
	mu    sync.Mutex
	tries map[string]int // peer -> notices sent that failed
}

func newUnsentNotices() *unsentNotices { return &unsentNotices{tries: map[string]int{}} }

// reset forgets failures of an older notice: a new one goes to everyone.
func (u *unsentNotices) reset() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.tries)
}

// done records whether the notice reached id.
func (u *unsentNotices) done(id string, ok bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ok {
		delete(u.tries, id)
	} else {
		u.tries[id]++
	}
}

// retry lists the peers to notify again: still connected, and not yet
// tried noticeRetries times. The others are forgotten.
func (u *unsentNotices) retry(connected func(id string) bool) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for id, n := range u.tries {
		if !connected(id) || n > noticeRetries {
			delete(u.tries, id)
			continue
		}
		out = append(out, id)
	}
	return out
}

// askNow is the set of peers to ask at once, with a signal that it is not
// empty: unlike a bounded channel it never drops a request.
type askNow struct {
	mu    sync.Mutex
	ids   map[string]struct{}
	ready chan struct{} // holds a token while ids is not empty
}

func newAskNow() *askNow { return &askNow{ids: map[string]struct{}{}, ready: make(chan struct{}, 1)} }

// add asks for id at once.
func (w *askNow) add(id string) {
	w.mu.Lock()
	w.ids[id] = struct{}{}
	w.mu.Unlock()
	select {
	case w.ready <- struct{}{}:
	default: // already signalled
	}
}

// take returns the peers asked for and empties the set.
func (w *askNow) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.ids))
	for id := range w.ids {
		out = append(out, id)
	}
	clear(w.ids)
	return out
}

// askSchedule remembers, per connected peer, whether an exchange is under
// way and when the last one succeeded.
type askSchedule struct {
	mu   sync.Mutex
	busy map[string]bool
	// again: asked while busy (a change notice arriving while the reply,
	// read before the change, is on its way): ask once more when done.
	again map[string]bool
	ok    map[string]time.Time // last successful exchange; absent: none, or the last failed
}

func newAskSchedule() *askSchedule {
	return &askSchedule{busy: map[string]bool{}, again: map[string]bool{}, ok: map[string]time.Time{}}
}

// due says whether peer id should be asked at now: never asked, last
// exchange failed, reached only through a relay (relayOnly) and not heard
// from (heard: its last bytes) within heartbeatInterval, or
// heartbeatRefresh passed.
func (s *askSchedule) due(id string, now, heard time.Time, relayOnly bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.ok[id]
	// A tick's slack, so a peer asked just after a tick is not a whole
	// interval late at the one a refresh later.
	slack := heartbeatInterval / 2
	switch {
	case !ok:
		return true
	case relayOnly && now.Sub(last) >= heartbeatInterval-slack && now.Sub(heard) >= heartbeatInterval:
		return true
	}
	return now.Sub(last) >= heartbeatRefresh-slack
}

// heardSince says whether peer id, whose last exchange succeeded,
// delivered bytes (at heard) after it.
func (s *askSchedule) heardSince(id string, heard time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	last, ok := s.ok[id]
	return ok && heard.After(last)
}

// start marks id busy; false if it already was, and then the exchange
// under way is followed by another.
func (s *askSchedule) start(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[id] {
		s.again[id] = true
		return false
	}
	s.busy[id] = true
	return true
}

// done records the outcome of the exchange start began, and says whether
// to ask again (start was called meanwhile); id then stays busy.
func (s *askSchedule) done(id string, ok bool, at time.Time) (again bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok {
		s.ok[id] = at
	} else {
		delete(s.ok, id)
	}
	if s.again[id] {
		delete(s.again, id)
		return true
	}
	delete(s.busy, id)
	return false
}

// isBusy says whether an exchange with id is under way.
func (s *askSchedule) isBusy(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.busy[id]
}

// retain forgets peers for which keep is false (disconnected).
func (s *askSchedule) retain(keep func(id string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.ok {
		if !keep(id) {
			delete(s.ok, id)
		}
	}
}

// exchange asks one peer for its announcement, records the outcome and
// reports whether it succeeded.
func (l *Locator) exchange(ctx context.Context, id string) bool {
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	data, _, err := l.peers.PeerInfo(cctx, id)
	cancel()
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			l.dir.Failed(id, now)
			l.log.Debug("proxy heartbeat failed", "peer", id, "err", err)
		}
		return false
	}
	ann, err := ParseAnnouncement(data)
	if err != nil {
		l.dir.Failed(id, now)
		l.log.Debug("bad proxy announcement", "peer", id, "err", err)
		return false
	}
	l.dir.Heard(id, ann, l.peers.PeerIPs(id), now)
	if !l.peers.IsConnected(id) {
		l.dir.Forget(id) // it left while we were asking
		return false
	}
	// A node connects before its HTTP listener is bound: not done with
	// it yet (asked again at the next sweep, or sooner when binding
	// changes its announcement and it tells us).
	return len(ann.Addrs) > 0 || ann.AnyAddr
}
