package node

import (
	"context"
	"io"
	"time"

	"github.com/coralcdn/coral/core/coop"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/shaping"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// peerFetcher adapts the libp2p host to coop.Fetcher, which names peers by
// their ID string so core stays free of libp2p types. Bodies come in
// through the download cap.
type peerFetcher struct {
	host   *p2p.Host
	budget *shaping.Budget
}

var _ coop.Fetcher = peerFetcher{}

func (f peerFetcher) FetchObject(ctx context.Context, from, key string) (store.Meta, io.ReadCloser, error) {
	id, err := peer.Decode(from)
	if err != nil {
		return store.Meta{}, nil, err
	}
	m, body, err := f.host.FetchObject(ctx, id, key)
	if err != nil {
		return m, body, err
	}
	return m, receiveShaped(ctx, f.budget, siteOf(m.URL), body), nil
}

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
