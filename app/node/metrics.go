package node

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports the node's status counters to Prometheus at scrape time,
// so the numbers on /metrics and /api/status are the same numbers.
type collector struct {
	n     *Node
	descs map[string]*prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

var counterNames = map[string]string{
	"coral_proxy_requests_total":       "Requests the proxy received.",
	"coral_proxy_hits_total":           "Responses served fresh from the local cache.",
	"coral_proxy_misses_total":         "Responses fetched from the origin.",
	"coral_proxy_stale_total":          "Stale copies served because the origin failed.",
	"coral_proxy_revalidated_total":    "Cached copies revalidated with the origin.",
	"coral_proxy_peer_total":           "Responses fetched from other proxies.",
	"coral_proxy_origin_fetches_total": "Requests this node sent to origins.",
	"coral_proxy_negative_hits_total":  "Requests answered from the dead-origin cache.",
	"coral_proxy_errors_total":         "Requests answered with an error.",
	"coral_proxy_bytes_served_total":   "Body bytes sent to visitors.",
}

func newCollector(n *Node) *collector {
	c := &collector{n: n, descs: map[string]*prometheus.Desc{}}
	for name, help := range counterNames {
		c.descs[name] = prometheus.NewDesc(name, help, nil, nil)
	}
	c.descs["coral_cache_bytes"] = prometheus.NewDesc("coral_cache_bytes", "Bytes held in the cache.", nil, nil)
	c.descs["coral_cache_objects"] = prometheus.NewDesc("coral_cache_objects", "Objects held in the cache.", nil, nil)
	c.descs["coral_proxy_in_flight"] = prometheus.NewDesc("coral_proxy_in_flight", "Origin downloads in progress.", nil, nil)
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.n.Status(context.Background())
	if err != nil {
		return
	}
	p := st.Proxy
	counters := map[string]int64{
		"coral_proxy_requests_total":       p.Requests,
		"coral_proxy_hits_total":           p.Hits,
		"coral_proxy_misses_total":         p.Misses,
		"coral_proxy_stale_total":          p.Stale,
		"coral_proxy_revalidated_total":    p.Revalidated,
		"coral_proxy_peer_total":           p.Peer,
		"coral_proxy_origin_fetches_total": p.OriginFetches,
		"coral_proxy_negative_hits_total":  p.NegativeHits,
		"coral_proxy_errors_total":         p.Errors,
		"coral_proxy_bytes_served_total":   p.BytesServed,
	}
	for name, v := range counters {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(c.descs["coral_cache_bytes"], prometheus.GaugeValue, float64(st.Cache.Bytes))
	ch <- prometheus.MustNewConstMetric(c.descs["coral_cache_objects"], prometheus.GaugeValue, float64(st.Cache.Objects))
	ch <- prometheus.MustNewConstMetric(c.descs["coral_proxy_in_flight"], prometheus.GaugeValue, float64(p.InFlight))
}
