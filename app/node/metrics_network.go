package node

import (
	"context"
	"github.com/coralcdn/coral/p2p"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// networkCollector exports the node's place in the network: the DSHT per
// level, the DNS server, libp2p peers and relays. Like collector it reads
// /api/status at scrape time, so both show the same numbers. (Kept apart
// from the proxy's collector: bandwidth and usage metrics live there.)
type networkCollector struct {
	n *Node
}

var _ prometheus.Collector = networkCollector{}

var (
	dshtRoutingDesc = prometheus.NewDesc("coral_dsht_routing_entries", "Nodes in the DSHT routing table, per level (0 = the whole network).", []string{"level"}, nil)
	dshtClusterDesc = prometheus.NewDesc("coral_dsht_cluster_size", "Estimated nodes in this node's cluster, per level.", []string{"level"}, nil)
	dshtKeysDesc    = prometheus.NewDesc("coral_dsht_stored_keys", "DSHT keys this node holds for the network.", nil, nil)
	dshtValuesDesc  = prometheus.NewDesc("coral_dsht_stored_values", "DSHT values this node holds for the network.", nil, nil)
	dshtSentDesc    = prometheus.NewDesc("coral_dsht_rpcs_sent_total", "DSHT RPCs this node sent.", nil, nil)
	dshtRecvDesc    = prometheus.NewDesc("coral_dsht_rpcs_received_total", "DSHT RPCs this node answered.", nil, nil)
	dnsDescs        = map[string]*prometheus.Desc{
		"queries": prometheus.NewDesc("coral_dns_queries_total", "DNS queries received.", nil, nil),
		"answers": prometheus.NewDesc("coral_dns_answers_total", "DNS queries answered.", nil, nil),
		"refused": prometheus.NewDesc("coral_dns_refused_total", "DNS queries refused (outside the zone, malformed).", nil, nil),
		"limited": prometheus.NewDesc("coral_dns_rate_limited_total", "DNS queries dropped or truncated by the rate limit.", nil, nil),
	}
	p2pPeersDesc     = prometheus.NewDesc("coral_p2p_connected_peers", "Peers connected over libp2p.", nil, nil)
	p2pRelayedDesc   = prometheus.NewDesc("coral_p2p_relayed", "1 when visitors reach this node only through relays.", nil, nil)
	p2pRelaysDesc    = prometheus.NewDesc("coral_p2p_relay_addresses", "Relay addresses this node is reachable at.", nil, nil)
	p2pReachableDesc = prometheus.NewDesc("coral_p2p_reachability", "1 for the node's current reachability (public, private, unknown).", []string{"reachability"}, nil)
)

func (networkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dshtRoutingDesc, dshtClusterDesc, dshtKeysDesc, dshtValuesDesc, dshtSentDesc, dshtRecvDesc,
		p2pPeersDesc, p2pRelayedDesc, p2pRelaysDesc, p2pReachableDesc} {
		ch <- d
	}
	for _, d := range dnsDescs {
		ch <- d
	}
}

func (c networkCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.n.Status(context.Background())
	if err != nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	if d := st.DSHT; d != nil {
		for _, l := range d.Levels {
			gauge(dshtRoutingDesc, float64(l.RoutingSize), strconv.Itoa(l.Level))
			gauge(dshtClusterDesc, float64(l.ClusterSize), strconv.Itoa(l.Level))
		}
		gauge(dshtKeysDesc, float64(d.StoredKeys))
		gauge(dshtValuesDesc, float64(d.StoredValues))
		counter(dshtSentDesc, d.RPCsSent)
		counter(dshtRecvDesc, d.RPCsReceived)
	}
	if d := st.DNS; d != nil {
		counter(dnsDescs["queries"], d.Queries)
		counter(dnsDescs["answers"], d.Answers)
		counter(dnsDescs["refused"], d.Refused)
		counter(dnsDescs["limited"], d.Limited)
	}
	if p := st.P2P; p != nil {
		gauge(p2pPeersDesc, float64(p.ConnectedPeers))
		relayed := 0.0
		if p.Relayed {
			relayed = 1
		}
		gauge(p2pRelayedDesc, relayed)
		gauge(p2pRelaysDesc, float64(len(p.RelayAddrs)))
		gauge(p2pReachableDesc, 1, p.Reachability)
	}
}

// StreamCounts are the libp2p stream writes and reads by protocol since
// start (for figure tools such as app/internal/nodefig).
func (n *Node) StreamCounts() []p2p.ProtocolStreams { return n.host.StreamCounts() }
