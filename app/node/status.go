package node

import (
	"encoding/hex"
	"strings"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/dnsserver"
	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
)

// viaToken names this node in Via headers. It derives from the node's
// persisted identity, so a loop through this node is recognised across
// restarts.
func viaToken(id dsht.ID) string { return "coral-" + hex.EncodeToString(id[:4]) }

func proxyStatus(s proxy.Stats) control.ProxyStatus {
	return control.ProxyStatus{
		Requests:        int64(s.Requests),
		Hits:            int64(s.Hits),
		Misses:          int64(s.Misses),
		Stale:           int64(s.Stale),
		Revalidated:     int64(s.Revalidated),
		Peer:            int64(s.PeerHits),
		OriginFetches:   int64(s.OriginFetches),
		NegativeHits:    int64(s.NegativeHits),
		Errors:          int64(s.Errors),
		BytesServed:     int64(s.BytesServed),
		InFlight:        s.InFlight,
		CoalescedWaits:  int64(s.Coalesced),
		RefusedRequests: int64(s.Refused),
	}
}

func dnsStatus(s dnsserver.Stats) *control.DNSStatus {
	return &control.DNSStatus{
		Queries: int64(s.Queries),
		Answers: int64(s.Answers),
		Refused: int64(s.Refused),
		Limited: int64(s.RateDropped + s.RateSlipped),
	}
}

// dshtStatus summarises the DSHT; outlook(l) is its view of level l's
// clusters.
func dshtStatus(s dsht.Status, outlook func(l int) dsht.ClusterOutlook) *control.DSHTStatus {
	out := &control.DSHTStatus{RPCsSent: int64(s.RPC.Sent), RPCsReceived: int64(s.RPC.Received),
		RPCTimeouts: int64(s.RPC.Timeouts), RPCFailures: int64(s.RPC.Failures),
		PeersLive: s.Peers.Live, PeersUnreachable: s.Peers.Unreachable}
	for _, l := range s.Levels {
		ls := control.LevelStatus{
			Level: l.Level, ClusterID: clusterHex(l.Cluster), ClusterSize: int(l.ClusterSize), RoutingSize: len(l.Table),
		}
		if l.Level > 0 {
			for _, c := range outlook(l.Level).Others {
				ls.ClustersSeen = append(ls.ClustersSeen, control.ClusterSeen{ClusterID: clusterHex(c.ID), Size: int(c.Size),
					Sampled: c.Sampled, Within: c.Within, Acceptable: c.Acceptable, Preferred: c.Preferred})
			}
		}
		out.Levels = append(out.Levels, ls)
		out.StoredKeys += l.StoredKeys
		out.StoredValues += l.StoredValues
	}
	return out
}

// clusterHex is the status page's short name of a cluster ("" for none).
func clusterHex(id dsht.ID) string {
	if id == (dsht.ID{}) {
		return ""
	}
	return hex.EncodeToString(id[:6])
}

func cacheStatus(u store.Usage, sp store.Space) control.CacheStatus {
	return control.CacheStatus{
		Objects: u.Objects, Bytes: u.Bytes, MaxBytes: u.MaxBytes,
		FreeBytes: sp.FreeBytes, MinFreeBytes: sp.MinFreeBytes, Storing: sp.Admitting, DiskNote: sp.Note,
	}
}

// withoutQuery drops the query (and anything after it) from a visitor's
// URL: queries carry sessions and tokens, and the status page is readable
// by anything on this machine.
func withoutQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i]
	}
	return u
}
