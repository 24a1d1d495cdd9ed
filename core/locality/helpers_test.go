package locality

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/test/testkit"
)

func testLogger() *slog.Logger {
	if os.Getenv("CORAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// memNet joins real DSHT nodes in one process through the blocking Network
// interface, encoding every message with CBOR as package p2p does.
type memNet struct {
	mu    sync.Mutex
	nodes map[string]*dsht.Node
}

type memEndpoint struct {
	net  *memNet
	self dsht.NodeInfo
}

func (e *memEndpoint) Call(ctx context.Context, to dsht.NodeInfo, req *dsht.Request) (*dsht.Response, error) {
	e.net.mu.Lock()
	n := e.net.nodes[to.Addr]
	e.net.mu.Unlock()
	if n == nil {
		return nil, fmt.Errorf("memnet: %s unreachable", to.Addr)
	}
	var in dsht.Request
	if err := roundTrip(req, &in); err != nil {
		return nil, err
	}
	resp, err := n.HandleRPC(ctx, e.self, &in)
	if err != nil {
		return nil, err
	}
	var out dsht.Response
	if err := roundTrip(resp, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func roundTrip(v, into any) error {
	b, err := cbor.Marshal(v)
	if err != nil {
		return err
	}
	return cbor.Unmarshal(b, into)
}

func nodeInfo(i int) dsht.NodeInfo {
	id := "peer-" + strconv.Itoa(i)
	return dsht.NodeInfo{ID: dsht.NodeID([]byte(id)), Addr: id}
}

// newDSHT starts n real DSHT nodes joined through node 0.
func newDSHT(t *testing.T, n int) []*dsht.Node {
	t.Helper()
	mn := &memNet{nodes: map[string]*dsht.Node{}}
	var nodes []*dsht.Node
	for i := range n {
		cfg := dsht.DefaultConfig(nodeInfo(i))
		cfg.Logger = testLogger()
		node, err := dsht.New(cfg, &memEndpoint{net: mn, self: nodeInfo(i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		mn.mu.Lock()
		mn.nodes[nodeInfo(i).Addr] = node
		mn.mu.Unlock()
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
