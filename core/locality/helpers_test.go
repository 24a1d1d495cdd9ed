package locality

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/dsht/dshttest"
	"github.com/coralcdn/coral/test/testkit"
)

func testLogger() *slog.Logger {
	if os.Getenv("CORAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func nodeInfo(i int) dsht.NodeInfo {
	id := "peer-" + strconv.Itoa(i)
	return dsht.NodeInfo{ID: dsht.NodeID([]byte(id)), Addr: id}
}

// newDSHT starts n real DSHT nodes joined through node 0.
func newDSHT(t *testing.T, n int) []*dsht.Node {
	t.Helper()
	mn := &dshttest.MemNet{}
	var nodes []*dsht.Node
	for i := range n {
		cfg := dsht.DefaultConfig(nodeInfo(i))
		cfg.Logger = testLogger()
		node, err := dsht.New(cfg, mn.Endpoint(nodeInfo(i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		mn.Add(nodeInfo(i).Addr, node)
		nodes = append(nodes, node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i, node := range nodes {
		var seeds []dsht.NodeInfo
		if i > 0 {
			seeds = []dsht.NodeInfo{nodeInfo(0)}
		}
		if err := node.Bootstrap(ctx, seeds); err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
	}
	return nodes
}

func newClock() *testkit.Clock { return testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }

var eventually = testkit.Eventually
