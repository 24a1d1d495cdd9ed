package node

import (
	"context"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/p2p"
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
		var seeds []dsht.NodeInfo
		connected := map[peer.ID]time.Time{}
		for _, id := range n.host.ConnectedPeers() {
			info := p2p.NodeInfoFor(id)
			seeds = append(seeds, info)
			last, ok := told[id]
			if ok && now.Sub(last) < followRefresh {
				connected[id] = last
				continue
			}
			n.dht.Observe(info, n.host.Latency(id))
			connected[id] = now
		}
		told = connected
		if !bootstrapped && len(seeds) > 0 {
			bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := n.dht.Bootstrap(bctx, seeds); err == nil {
				bootstrapped = true
			} else {
				n.log.Debug("dsht bootstrap", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

const (
	followEvery   = 2 * time.Second
	followRefresh = 10 * time.Second
)
