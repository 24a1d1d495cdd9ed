package dsht

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// deadNet fails every call.
type deadNet struct{}

func (deadNet) Call(context.Context, NodeInfo, *Request) (*Response, error) {
	return nil, errors.New("no network")
}

// fixedNet answers every call with the same (possibly malformed) response.
type fixedNet struct{ resp *Response }

func (f fixedNet) Call(context.Context, NodeInfo, *Request) (*Response, error) {
	if f.resp == nil {
		return nil, errors.New("no response")
	}
	r := *f.resp
	return &r, nil
}

func fuzzNode(tb testing.TB, net Network) *Node {
	cfg := DefaultConfig(NodeInfo{ID: NodeID([]byte("fuzz")), Addr: "self"})
	cfg.Rand = rand.NewPCG(1, 1)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.OpTimeout = 2 * time.Second
	cfg.InitialRTO = 100 * time.Millisecond
	n, err := New(cfg, net)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func mustCBOR(tb testing.TB, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzHandleRPC feeds decoded peer requests to a node: nothing panics, a
// request is served exactly when it is valid, and every answer is one a peer
// would accept.
func FuzzHandleRPC(f *testing.F) {
	peer := NodeInfo{ID: NodeID([]byte("peer")), Addr: "peer"}
	for _, r := range []Request{
		{Op: OpPing},
		{Op: OpFindNode, Level: 1, Target: ID{1}},
		{Op: OpFindValue, Level: 2, Cluster: ID{2}, Target: ID{3}},
		{Op: OpProbe, TTLMs: 60000, WantValues: true, Target: ID{4}},
		{Op: OpStore, Value: []byte("proxy"), TTLMs: 60000, Target: ID{4}, WantValues: true},
		{Op: OpPing, ForwardTo: &NodeInfo{ID: ID{7}, Addr: "x"}},
		{Op: OpPing, Clusters: []ClusterInfo{{Level: 1, ID: ID{8}, Size: 10}}},
	} {
		f.Add(mustCBOR(f, r))
	}
	f.Add([]byte{0xa1, 0x01, 0x19, 0xff, 0xff})
	n := fuzzNode(f, deadNet{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Request
		if cbor.Unmarshal(data, &req) != nil {
			return // the transport rejects what does not decode
		}
		want := validateRequest(&req, n.numLevels(), n.cfg.MaxValueBytes, n.cfg.MaxTTL.Milliseconds())
		if want == nil && req.ForwardTo != nil && (req.ForwardTo.ID == n.self.ID || req.ForwardTo.ID == peer.ID) {
			want = errors.New("forward loop")
		}
		resp, err := n.HandleRPC(ctx, peer, &req)
		if (err == nil) != (want == nil) {
			t.Fatalf("request %+v: err %v, validation %v", req, err, want)
		}
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("rejection does not wrap ErrBadMessage: %v", err)
			}
			return
		}
		if verr := validateResponse(resp); verr != nil {
			t.Fatalf("answer a peer would reject: %v", verr)
		}
		if len(resp.Contacts) > n.cfg.K || len(resp.Values) > n.cfg.ReturnValues {
			t.Fatalf("answer too long: %d contacts, %d values", len(resp.Contacts), len(resp.Values))
		}
	})
}

// FuzzResponses has every peer answer with the same decoded response:
// bootstrap and a get finish without panicking, and only well-formed
// values come back.
func FuzzResponses(f *testing.F) {
	good := Response{Contacts: []Contact{{Node: NodeInfo{ID: ID{9}, Addr: "nine"}, AgeMs: 10}},
		Values: []WireValue{{Data: []byte("proxy-9"), TTLMs: 1000}}, Clusters: []ClusterInfo{{Level: 1, ID: ID{1}, Size: 3}}}
	f.Add(mustCBOR(f, good))
	f.Add(mustCBOR(f, Response{Code: CodeWrongCluster}))
	f.Add(mustCBOR(f, Response{Values: []WireValue{{Data: nil, TTLMs: -1}}}))
	f.Add(mustCBOR(f, Response{Contacts: []Contact{{Node: NodeInfo{}, AgeMs: -5}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp Response
		if cbor.Unmarshal(data, &resp) != nil {
			return
		}
		n := fuzzNode(t, fixedNet{resp: &resp})
		defer n.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Bootstrap(ctx, []NodeInfo{{ID: ID{5}, Addr: "seed"}})
		vs, err := n.Get(ctx, ID{6})
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("get did not finish")
		}
		for _, v := range vs {
			if len(v.Data) == 0 || len(v.Data) > MaxWireValue {
				t.Fatalf("malformed value returned: %d bytes", len(v.Data))
			}
		}
		if validateResponse(&resp) != nil && len(vs) > 0 {
			t.Fatalf("values returned from a malformed response")
		}
	})
}
