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

func dshtStatus(s dsht.Status) *control.DSHTStatus {
	out := &control.DSHTStatus{RPCsSent: int64(s.RPC.Sent), RPCsReceived: int64(s.RPC.Received)}
	for _, l := range s.Levels {
		cluster := ""
		if l.Cluster != (dsht.ID{}) {
			cluster = hex.EncodeToString(l.Cluster[:6])
		}
		out.Levels = append(out.Levels, control.LevelStatus{
			Level: l.Level, ClusterID: cluster, ClusterSize: int(l.ClusterSize), RoutingSize: len(l.Table),
		})
		out.StoredKeys += l.StoredKeys
		out.StoredValues += l.StoredValues
	}
	return out
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
