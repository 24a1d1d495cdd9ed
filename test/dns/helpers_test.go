package dnstest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/coralcdn/coral/test/cluster"
)

// buildCoral builds the coral binary once per test (CORAL_BIN overrides).
func buildCoral(t testing.TB) string {
	t.Helper()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startCluster starts n nodes whose proxies listen on 127.0.0.11, .12, …
// (http(i) adds lines to node i's [http] table) and stops them at the end,
// printing their logs if the test failed.
func startCluster(t *testing.T, n int, http func(i int) string) *cluster.Cluster {
	t.Helper()
	c, logs, err := tryCluster(t, n, http)
	if err != nil {
		t.Fatalf("start cluster: %v\n%s", err, logs())
	}
	return c
}

// tryCluster is startCluster returning the error and the nodes' output.
func tryCluster(t *testing.T, n int, http func(i int) string) (*cluster.Cluster, func() string, error) {
	t.Helper()
	lw := &cluster.LogBuffer{}
	logs := lw.String
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{
		Nodes:  n,
		Binary: buildCoral(t),
		Dir:    t.TempDir(),
		HTTP: func(i int) string {
			s := fmt.Sprintf("listen = %q\n", proxyIP(i)+":0")
			if http != nil {
				s += http(i)
			}
			return s
		},
		MinPeers: n - 1,
		Log:      lw,
	})
	t.Cleanup(func() {
		if c != nil {
			c.Stop()
		}
		if t.Failed() && err == nil {
			t.Logf("node logs:\n%s", logs())
		}
	})
	return c, logs, err
}

// proxyIP is node i's proxy address.
func proxyIP(i int) string { return "127.0.0." + strconv.Itoa(11+i) }

// lookup asks server for name's A records over TCP (the rate limiter only
// limits UDP, and tests poll) and returns them in answer order.
func lookup(t testing.TB, server, name string, ecs *netip.Prefix) ([]string, *mdns.Msg) {
	t.Helper()
	return exchange(t, "tcp", server, name, ecs)
}

func exchange(t testing.TB, proto, server, name string, ecs *netip.Prefix) ([]string, *mdns.Msg) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	o := m.SetEdns0(1232, false).IsEdns0()
	if ecs != nil {
		fam := uint16(1)
		if ecs.Addr().Is6() {
			fam = 2
		}
		o.Option = append(o.Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: fam,
			SourceNetmask: uint8(ecs.Bits()), Address: net.IP(ecs.Addr().AsSlice())})
	}
	c := &mdns.Client{Net: proto, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s %s: %v", server, name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out, r
}

// union is the sorted set of addresses over n answers (answers rotate
// among equally good proxies, so one answer need not show every one).
func union(t testing.TB, server, name string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		got, _ := lookup(t, server, name, nil)
		for _, a := range got {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	slices.Sort(out)
	return out
}

// pidOf finds the coral process started with config file cfg (the harness
// does not export it; a hung proxy is simulated with SIGSTOP).
func pidOf(t testing.TB, cfg string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if slices.Contains(args, "serve") && slices.Contains(args, cfg) {
			return pid
		}
	}
	t.Fatalf("no process for %s", cfg)
	return 0
}

// dshtPut stores value under key through node's token-guarded control API.
func dshtPut(t testing.TB, node *cluster.Node, key, value string) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(filepath.Dir(node.Config), "data", "control.token"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"key": key, "value": value, "ttl": "10m"})
	req, _ := http.NewRequest(http.MethodPost, "http://"+node.Control+"/api/dsht/put", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("dsht put %s: %s %s", key, resp.Status, b)
	}
}

// dshtGet returns the values under key as node sees them.
func dshtGet(t testing.TB, node *cluster.Node, key string) []string {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(filepath.Dir(node.Config), "data", "control.token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+node.Control+"/api/dsht/get?key="+url.QueryEscape(key), nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vals []struct {
		Value string `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vals); err != nil {
		t.Fatalf("dsht get %s: %s: %v", key, resp.Status, err)
	}
	var out []string
	for _, v := range vals {
		out = append(out, v.Value)
	}
	return out
}
