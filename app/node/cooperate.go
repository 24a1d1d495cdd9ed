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
func (n *Node) followPeers(ctx context.Context) {
	defer n.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	bootstrapped := false
	for {
		var seeds []dsht.NodeInfo
		for _, p := range n.host.Status().Peers {
			id, err := peer.Decode(p.ID)
			if err != nil {
				continue
			}
			info := p2p.NodeInfoFor(id)
			n.dht.Observe(info, time.Duration(p.LatencyMS*float64(time.Millisecond)))
			seeds = append(seeds, info)
		}
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
