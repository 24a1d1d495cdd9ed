package budgettest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
)

// heartbeat is app/node's heartbeatInterval; "a heartbeat or two" is
// checked against twice it plus the exchange timeout and DNS's own delay.
const heartbeat = 5 * time.Second

func proxyIP(i int) string { return "127.0.0." + strconv.Itoa(21+i) }

func startCluster(t *testing.T, n int) *cluster.Cluster {
	t.Helper()
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cluster.StartT(t, 90*time.Second, cluster.Options{
		Nodes: n, Binary: bin, Dir: t.TempDir(), MinPeers: n - 1,
		HTTP:  func(i int) string { return fmt.Sprintf("listen = %q\n", proxyIP(i)+":0") },
		Extra: func(int) string { return "[cache]\nallow_private_origins = true\n" },
	})
}

// answers is the set of proxies node's DNS hands out over a few queries
// (answers rotate among equally good proxies).
func answers(t *testing.T, node *cluster.Node, name string) []string {
	t.Helper()
	out, err := node.Addresses(name, 6)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func putSettings(t *testing.T, node *cluster.Node, patch string) {
	t.Helper()
	if _, err := node.ControlDo(context.Background(), http.MethodPut, "/api/settings", strings.NewReader(patch)); err != nil {
		t.Fatal(err)
	}
}

func budget(t *testing.T, node *cluster.Node) control.BudgetStatus {
	t.Helper()
	st, err := node.Status(context.Background())
	if err != nil || st.Budget == nil {
		t.Fatalf("status: %v %+v", err, st.Budget)
	}
	return *st.Budget
}

// visit GETs path of the origin through node's proxy.
func visit(t *testing.T, node *cluster.Node, originHost, path string) (int, string, string) {
	t.Helper()
	resp, body, err := node.Get(context.Background(), originHost, path)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body), resp.Header.Get("X-Coral-Cache")
}

// A node that pauses, or whose upload cap leaves no headroom, leaves the
// DNS answers of every node within a heartbeat or two and is no longer
// chosen for peer fetches; it comes back once it has room.
func TestNoHeadroomMovesDNSAndPeersAway(t *testing.T) {
	var hits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, "object "+r.URL.Path+" "+strings.Repeat("x", 4096))
	}))
	defer origin.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(origin.URL, "http://"))
	host := "127.0.0.1." + port + ".localhost"

	c := startCluster(t, 3)
	all := []string{proxyIP(0), proxyIP(1), proxyIP(2)}
	name := "www.example.com.localhost"
	testkit.Eventually(t, 60*time.Second, "every node hands out all three proxies", func() bool {
		return slices.Equal(answers(t, c.Nodes[0], name), all) && slices.Equal(answers(t, c.Nodes[2], name), all)
	})

	// Each phase's object is held by nodes 2 and 0 (0 got it from 2).
	warm := func(p string) {
		t.Helper()
		before := hits.Load()
		if code, _, _ := visit(t, c.Nodes[2], host, p); code != 200 {
			t.Fatalf("warm %s on node 2: %d", p, code)
		}
		if code, _, _ := visit(t, c.Nodes[0], host, p); code != 200 || hits.Load() != before+1 {
			t.Fatalf("node 0 did not get %s from node 2: %d, origin hits %d", p, code, hits.Load()-before)
		}
	}

	for _, phase := range []struct{ name, leave, back string }{
		{"paused", `{"paused": true}`, `{"paused": null}`},
		{"capped tiny", `{"bandwidth": {"upload": "4KiB/s"}}`, `{"bandwidth": {"upload": null}}`},
	} {
		shared := "/shared-" + strings.ReplaceAll(phase.name, " ", "-")
		warm(shared)
		start := time.Now()
		putSettings(t, c.Nodes[2], phase.leave)
		without := all[:2]
		took := testkit.Eventually(t, 2*heartbeat+10*time.Second, phase.name+": node 2 leaves the DNS answers", func() bool {
			return slices.Equal(answers(t, c.Nodes[0], name), without) && slices.Equal(answers(t, c.Nodes[1], name), without) &&
				slices.Equal(answers(t, c.Nodes[2], name), without)
		})
		t.Logf("%s: DNS answers moved away from node 2 in %.1fs", phase.name, took.Seconds())
		sentBefore := budget(t, c.Nodes[2]).Sites["127.0.0.1"].Sent
		hitsBefore := hits.Load()
		// Node 1 holds nothing: the object must come from node 0 (room),
		// not node 2, and not from the origin.
		if code, body, _ := visit(t, c.Nodes[1], host, shared); code != 200 || !strings.HasPrefix(body, "object "+shared) {
			t.Fatalf("%s: %s through node 1: %d", phase.name, shared, code)
		}
		if sent := budget(t, c.Nodes[2]).Sites["127.0.0.1"].Sent; sent != sentBefore {
			t.Errorf("%s: node 2 sent %d bytes to a peer while another peer with room had the object", phase.name, sent-sentBefore)
		}
		if hits.Load() != hitsBefore {
			t.Errorf("%s: node 1 went to the origin although node 0 had the object", phase.name)
		}
		putSettings(t, c.Nodes[2], phase.back)
		testkit.Eventually(t, 2*heartbeat+10*time.Second, phase.name+": node 2 is handed out again", func() bool {
			return slices.Equal(answers(t, c.Nodes[0], name), all)
		})
		t.Logf("%s: back in the answers %.1fs after leaving", phase.name, time.Since(start).Seconds())
	}
}
