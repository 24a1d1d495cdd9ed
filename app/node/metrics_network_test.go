package node

import (
	"io"
	"net/http"
	"regexp"
	"testing"
)

// /metrics covers the network, not only the proxy: the DSHT per level, the
// DNS server, libp2p peers and relays, as a scraper reads them.
func TestMetricsCoverTheNetwork(t *testing.T) {
	n := startNode(t, testConfig(t))
	resp, err := http.Get("http://" + n.Addrs().Control + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`(?m)^coral_dsht_routing_entries\{level="0"\} \d+$`,
		`(?m)^coral_dsht_cluster_size\{level="1"\} \d+$`,
		`(?m)^coral_dsht_rpcs_sent_total \d+$`,
		`(?m)^coral_dns_queries_total \d+$`,
		`(?m)^coral_dns_rate_limited_total \d+$`,
		`(?m)^coral_p2p_connected_peers \d+$`,
		`(?m)^coral_p2p_relayed [01]$`,
		`(?m)^coral_p2p_relay_addresses \d+$`,
		`(?m)^coral_p2p_reachability\{reachability="\w+"\} 1$`,
		`(?m)^coral_proxy_requests_total \d+$`,
	} {
		if !regexp.MustCompile(want).Match(b) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
