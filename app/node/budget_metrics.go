package node

import (
	"github.com/prometheus/client_golang/prometheus"
)

// budgetCollector exports the budget and the usage record to Prometheus.
type budgetCollector struct {
	n *Node
}

var budgetDescs = map[string]*prometheus.Desc{
	"sent":      prometheus.NewDesc("coral_budget_sent_bytes_total", "Bytes sent for the network (visitors, peers, relayed circuits, DSHT and DNS).", nil, nil),
	"received":  prometheus.NewDesc("coral_budget_received_bytes_total", "Bytes received from origins and peers.", nil, nil),
	"serving":   prometheus.NewDesc("coral_budget_serving", "1 while the node serves visitors and peers; 0 paused, in an off window or over the quota.", nil, nil),
	"upcap":     prometheus.NewDesc("coral_budget_upload_cap_bytes_per_second", "Upload cap in force (0: none; -1: off).", nil, nil),
	"downcap":   prometheus.NewDesc("coral_budget_download_cap_bytes_per_second", "Download cap in force (0: none; -1: off).", nil, nil),
	"sendrate":  prometheus.NewDesc("coral_budget_send_rate_bytes_per_second", "Measured upload rate over the last seconds.", nil, nil),
	"recvrate":  prometheus.NewDesc("coral_budget_receive_rate_bytes_per_second", "Measured download rate over the last seconds.", nil, nil),
	"quota":     prometheus.NewDesc("coral_budget_quota_bytes", "Monthly quota of bytes sent (0: none).", nil, nil),
	"quotaused": prometheus.NewDesc("coral_budget_quota_used_bytes", "Bytes sent in this quota month.", nil, nil),
	"site":      prometheus.NewDesc("coral_budget_site_month_bytes", "Bytes of one origin site in this quota month.", []string{"site", "direction"}, nil),
}

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range budgetDescs {
		ch <- d
	}
}

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.n.budgetStatus()
	sent, recv := c.n.budget.Totals()
	gauge := func(name string, v int64) {
		ch <- prometheus.MustNewConstMetric(budgetDescs[name], prometheus.GaugeValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(budgetDescs["sent"], prometheus.CounterValue, float64(sent))
	ch <- prometheus.MustNewConstMetric(budgetDescs["received"], prometheus.CounterValue, float64(recv))
	serving := int64(0)
	if b.Serving {
		serving = 1
	}
	gauge("serving", serving)
	st := c.n.budget.State()
	gauge("upcap", int64(st.Caps.Upload))
	gauge("downcap", int64(st.Caps.Download))
	gauge("sendrate", b.SentRate)
	gauge("recvrate", b.ReceivedRate)
	gauge("quota", b.QuotaBytes)
	gauge("quotaused", b.QuotaUsed)
	for site, u := range b.Sites {
		ch <- prometheus.MustNewConstMetric(budgetDescs["site"], prometheus.GaugeValue, float64(u.Sent), site, "sent")
		ch <- prometheus.MustNewConstMetric(budgetDescs["site"], prometheus.GaugeValue, float64(u.Received), site, "received")
	}
}
