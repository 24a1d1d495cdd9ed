package node

import (
	"context"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/libp2p/go-libp2p/core/peer"
)

// followPeers feeds the DSHT the members libp2p is connected to, with the
// RTT libp2p measured, and bootstraps it from them: libp2p finds members
// (bootstrap list, mDNS, remembered peers), the DSHT learns of them here.
// A new connection is reported within followEvery, a known one again every
// followRefresh (its RTT and that it is still there): reporting all of them
// every 2 s cost a node with 96 peers 48 updates a second (issue 17).
func (n *Node) followPeers(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(followEvery)
	defer t.Stop()
	bootstrapped := false
	told := map[peer.ID]time.Time{} // connected peers, when last reported
	for {
		now := time.Now()
		ids := n.host.ConnectedPeers()
		connected := make(map[peer.ID]time.Time, len(ids))
		for _, id := range ids {
			if last, ok := told[id]; ok && now.Sub(last) < followRefresh {
				connected[id] = last
				continue
			}
			n.dht.Observe(n.host.NodeInfo(id), n.host.Latency(id))
			connected[id] = now
		}
		told = connected
		if !bootstrapped && len(ids) > 0 {
			bootstrapped = n.bootstrapDSHT(ctx, ids)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
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
	followRefresh = 10 * time.Second
)
