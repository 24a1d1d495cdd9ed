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
// Every heartbeatInterval the node asks each connected peer (no dial,
// heartbeatTimeout each); a newly connected peer is asked at once. A failed
// exchange makes the peer "not heard from" until one succeeds again, so the
// nameserver pings it synchronously (libp2p ping) before handing it out; a
// second failure in a row drops it from the answers until it answers again;
// and a peer whose last connection closes is dropped at once. A crashed proxy
// therefore leaves the answers when the kernel closes its connections, and
// a hung one within heartbeatInterval+heartbeatTimeout; dnsserver's
// LiveWindow (60 s) is only the bound for a stalled heartbeat loop.
const (
	heartbeatInterval = 5 * time.Second
	heartbeatTimeout  = 2 * time.Second
	heartbeatParallel = 16
	startupRetry      = 500 * time.Millisecond
)

// heartbeat keeps the directory current until ctx ends. A node without a
// nameserver only keeps its own announcement current.
func (l *Locator) heartbeat(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	ask := l.asker(ctx, &wg)
	dnsOn := l.cfg.DNSListen != ""
	beat := func() {
		l.Refresh()
		if !dnsOn {
			return
		}
		l.dir.Retain(l.peers.IsConnected)
		for _, id := range l.peers.ConnectedIDs() {
			ask(id)
		}
	}
	beat()
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-l.wake:
			if dnsOn {
				ask(id)
			}
		case <-t.C:
			beat()
		}
	}
}

// asker returns ask(id), which exchanges with a peer in the background,
// at most heartbeatParallel at once and one at a time per peer.
func (l *Locator) asker(ctx context.Context, wg *sync.WaitGroup) (ask func(id string)) {
	sem := make(chan struct{}, heartbeatParallel)
	var mu sync.Mutex
	busy := map[string]bool{}
	return func(id string) {
		mu.Lock()
		if busy[id] {
			mu.Unlock()
			return
		}
		busy[id] = true
		mu.Unlock()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() {
				<-sem
				mu.Lock()
				delete(busy, id)
				mu.Unlock()
			}()
			l.exchange(ctx, id)
		})
	}
}

// exchange asks one peer for its announcement and records the outcome.
func (l *Locator) exchange(ctx context.Context, id string) {
	cctx, cancel := context.WithTimeout(ctx, heartbeatTimeout)
	data, _, err := l.peers.PeerInfo(cctx, id)
	cancel()
	now := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			l.dir.Failed(id, now)
			l.log.Debug("proxy heartbeat failed", "peer", id, "err", err)
		}
		return
	}
	ann, err := ParseAnnouncement(data)
	if err != nil {
		l.dir.Failed(id, now)
		l.log.Debug("bad proxy announcement", "peer", id, "err", err)
		return
	}
	l.dir.Heard(id, ann, l.peers.PeerIPs(id), now)
	if !l.peers.IsConnected(id) {
		l.dir.Forget(id) // it left while we were asking
		return
	}
	if len(ann.Addrs) == 0 && !ann.AnyAddr {
		// A node connects before its HTTP listener is bound; ask again
		// soon rather than a heartbeat later.
		time.AfterFunc(startupRetry, func() { l.Connected(id) })
	}
}
