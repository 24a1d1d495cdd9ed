package node

import (
	"context"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// followPeers feeds the DSHT the members libp2p is connected to, with the
// round trip of each one's last link ping (Host.Latency), and bootstraps it from them: libp2p finds members
// (bootstrap list, mDNS, remembered peers), the DSHT learns of them here.
// A new connection is reported when it opens (and once more followEvery
// later if its RTT was not known yet), a known one again every
// followRefresh (its RTT and that it is still there). An idle node wakes
// for this once every followRefresh: reporting all peers every 2 s cost a
// node with 96 peers 48 updates a second, and a 2 s tick alone a wakeup
// every 2 s (issue 17).
func (n *Node) followPeers(ctx context.Context) {
	defer n.wg.Done()
	opened := make(chan struct{}, 1)
	n.host.WatchPeers(func(string) {
		select {
		case opened <- struct{}{}:
		default:
		}
	}, nil)
	t := time.NewTimer(0)
	defer t.Stop()
	bootstrapped := false
	told := map[peer.ID]toldPeer{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-opened:
		case <-t.C:
		}
		now := time.Now()
		ids := n.host.ConnectedPeers()
		connected := make(map[peer.ID]toldPeer, len(ids))
		next := followRefresh
		for _, id := range ids {
			last, ok := told[id]
			if !ok || !now.Before(last.due) {
				last = n.tellDSHT(id, now, ok && last.noRTT)
			}
			connected[id] = last
			next = min(next, last.due.Sub(now))
		}
		told = connected
		if !bootstrapped && len(ids) > 0 {
			bootstrapped = n.bootstrapDSHT(ctx, ids)
		}
		if !bootstrapped {
			next = followEvery
		}
		t.Reset(max(next, followEvery))
	}
}

// toldPeer is when a connected peer is next reported to the DSHT.
type toldPeer struct {
	due   time.Time
	noRTT bool // last reported without an RTT (its quick second report is used up)
}

// tellDSHT reports one connected peer to the DSHT. A peer whose round trip
// no ping has measured yet (just connected) is reported again followEvery
// later, once; after that every followRefresh.
func (n *Node) tellDSHT(id peer.ID, now time.Time, retried bool) toldPeer {
	rtt := n.host.Latency(id)
	n.dht.Observe(n.host.NodeInfo(id), rtt)
	if rtt == 0 && !retried {
		return toldPeer{due: now.Add(followEvery), noRTT: true}
	}
	return toldPeer{due: now.Add(followRefresh), noRTT: rtt == 0}
}

// bootstrapDSHT bootstraps the DSHT from the connected peers and says
// whether it did.
func (n *Node) bootstrapDSHT(ctx context.Context, ids []peer.ID) bool {
	seeds := make([]dsht.NodeInfo, 0, len(ids))
	for _, id := range ids {
		seeds = append(seeds, n.host.NodeInfo(id))
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := n.dht.Bootstrap(bctx, seeds); err != nil {
		n.log.Debug("dsht bootstrap", "err", err)
		return false
	}
	return true
}

const (
	followEvery   = 2 * time.Second
	followRefresh = 30 * time.Second
)
