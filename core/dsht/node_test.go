package dsht_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/dsht/dshttest"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/test/testkit"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func info(i int) dsht.NodeInfo {
	return dsht.NodeInfo{ID: dsht.NodeID([]byte("node-" + strconv.Itoa(i))), Addr: strconv.Itoa(i)}
}

// newCluster's clock is shared by the nodes (timers stay real: RPCs here
// answer at once).
func newCluster(t *testing.T, n int) (*dshttest.MemNet, []*dsht.Node, *testkit.Clock) {
	t.Helper()
	return newClusterWith(t, n, func(*dsht.Config) {})
}

// newClusterWith is newCluster with each node's configuration adjusted.
func newClusterWith(t *testing.T, n int, configure func(*dsht.Config)) (*dshttest.MemNet, []*dsht.Node, *testkit.Clock) {
	t.Helper()
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	mn := &dshttest.MemNet{}
	var nodes []*dsht.Node
	for i := range n {
		cfg := dsht.DefaultConfig(info(i))
		cfg.Clock = clock.Now
		cfg.Rand = rand.NewPCG(1, uint64(i))
		cfg.Logger = quiet
		configure(&cfg)
		node, err := dsht.New(cfg, mn.Endpoint(info(i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		mn.Add(info(i).Addr, node)
		nodes = append(nodes, node)
	}
	ctx := context.Background()
	for i, node := range nodes {
		var seeds []dsht.NodeInfo
		if i > 0 {
			seeds = []dsht.NodeInfo{info(0), info(i / 2)}
		}
		if err := node.Bootstrap(ctx, seeds); err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
	}
	return mn, nodes, clock
}

func has(vs []dsht.Value, data string) bool {
	for _, v := range vs {
		if string(v.Data) == data {
			return true
		}
	}
	return false
}

func TestPutGetOverBlockingNetwork(t *testing.T) {
	_, nodes, clock := newCluster(t, 30)
	ctx := context.Background()
	key := dsht.ID(object.KeyOf("http://example.com/logo.png"))
	if err := nodes[3].Put(ctx, key, []byte("proxy-3"), time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, g := range []int{0, 17, 29} {
		vs, err := nodes[g].Get(ctx, key)
		if err != nil || !has(vs, "proxy-3") {
			t.Fatalf("get from node %d: %v %+v", g, err, vs)
		}
		if vs[0].Expires.Sub(clock.Now()) > time.Minute || vs[0].Expires.Sub(clock.Now()) < 59*time.Second {
			t.Fatalf("value expires %v from now", vs[0].Expires.Sub(clock.Now()))
		}
	}
	vs, err := nodes[9].Get(ctx, dsht.ID(object.KeyOf("http://example.com/missing")))
	if err != nil || len(vs) != 0 {
		t.Fatalf("missing key: %v %+v", err, vs)
	}
	// Soft state: after the TTL the value is gone everywhere. An extra copy
	// may still land after Put answered, and it expires a TTL after it
	// lands: the clock moves on until the last one has expired too.
	testkit.Eventually(t, 10*time.Second, "the value gone everywhere after its TTL", func() bool {
		clock.Advance(2 * time.Minute)
		vs, err := nodes[17].Get(ctx, key)
		return err == nil && len(vs) == 0
	})
}

func TestPutGetIsTestAndSet(t *testing.T) {
	_, nodes, _ := newCluster(t, 20)
	ctx := context.Background()
	key := dsht.ID(object.KeyOf("http://example.com/new"))
	global := dsht.Levels(0, 0) // no clusters formed yet: every node is alone above level 0
	first, err := nodes[4].PutGet(ctx, key, []byte("proxy-4"), 20*time.Second, global)
	if err != nil || len(first) != 0 {
		t.Fatalf("first put+get met %+v (%v); it should fetch from the origin", first, err)
	}
	second, err := nodes[11].PutGet(ctx, key, []byte("proxy-11"), 20*time.Second, global)
	if err != nil || !has(second, "proxy-4") || has(second, "proxy-11") {
		t.Fatalf("second put+get met %+v (%v), want proxy-4 only", second, err)
	}
	// A get meets both values once the extra copies, which may land after
	// PutGet answered, are in place.
	var vs []dsht.Value
	testkit.Eventually(t, 10*time.Second, "a get to find both values", func() bool {
		vs, err = nodes[0].Get(ctx, key, global)
		return err == nil && has(vs, "proxy-4") && has(vs, "proxy-11")
	})
}

func TestNodeRejectsBadInput(t *testing.T) {
	_, nodes, _ := newCluster(t, 3)
	ctx := context.Background()
	n := nodes[0]
	key := dsht.ID(object.KeyOf("k"))
	if _, err := n.Get(ctx, key, dsht.Levels(5, 0)); !errors.Is(err, dsht.ErrBadLevels) {
		t.Errorf("levels 5..0: %v", err)
	}
	if _, err := n.Get(ctx, key, dsht.Levels(0, 1)); !errors.Is(err, dsht.ErrBadLevels) {
		t.Errorf("levels 0..1: %v", err)
	}
	for _, bad := range []struct {
		v   []byte
		ttl time.Duration
	}{{nil, time.Minute}, {make([]byte, 2000), time.Minute}, {[]byte("x"), 0}, {[]byte("x"), 48 * time.Hour}} {
		if err := n.Put(ctx, key, bad.v, bad.ttl); err == nil {
			t.Errorf("put of %d bytes for %v accepted", len(bad.v), bad.ttl)
		}
	}
	from := info(1)
	for name, req := range map[string]*dsht.Request{
		"nil":                   nil,
		"unknown op":            {Op: 99},
		"level out of range":    {Op: dsht.OpPing, Level: 7},
		"store without value":   {Op: dsht.OpStore, TTLMs: 1000},
		"store without ttl":     {Op: dsht.OpStore, Value: []byte("v")},
		"store too large":       {Op: dsht.OpStore, Value: make([]byte, 5000), TTLMs: 1000},
		"ttl beyond max":        {Op: dsht.OpStore, Value: []byte("v"), TTLMs: int64(48 * time.Hour / time.Millisecond)},
		"local get no cluster":  {Op: dsht.OpFindValue, Level: 2},
		"forward to self":       {Op: dsht.OpPing, ForwardTo: &dsht.NodeInfo{ID: info(0).ID}},
		"cluster claim level 0": {Op: dsht.OpPing, Clusters: []dsht.ClusterInfo{{Level: 0}}},
	} {
		if _, err := n.HandleRPC(ctx, from, req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := n.HandleRPC(ctx, info(0), &dsht.Request{Op: dsht.OpPing}); err == nil {
		t.Error("request claiming to come from the node itself accepted")
	}
	resp, err := n.HandleRPC(ctx, from, &dsht.Request{Op: dsht.OpPing})
	if err != nil || resp.Code != dsht.CodeOK || len(resp.Clusters) != 2 {
		t.Fatalf("ping: %v %+v", err, resp)
	}
	resp, err = n.HandleRPC(ctx, from, &dsht.Request{Op: dsht.OpFindValue, Level: 2, Cluster: dsht.ID{1}})
	if err != nil || resp.Code != dsht.CodeWrongCluster {
		t.Fatalf("find_value in a foreign cluster: %v %+v", err, resp)
	}
}

func TestStatusCloseAndHints(t *testing.T) {
	mn, nodes, clock := newCluster(t, 10)
	ctx := context.Background()
	n := nodes[0]
	if err := n.Put(ctx, dsht.ID(object.KeyOf("a")), []byte("v"), time.Minute, dsht.Levels(0, 0)); err != nil {
		t.Fatal(err)
	}
	st := n.Status()
	if len(st.Levels) != 3 || st.Levels[0].Threshold != 0 || st.Levels[2].Threshold != 20*time.Millisecond {
		t.Fatalf("levels %+v", st.Levels)
	}
	if len(st.Levels[0].Table) < 5 || st.RPC.Sent == 0 || st.RPC.Received == 0 || st.Peers.Live < 5 {
		t.Fatalf("status after bootstrap: table %d, rpc %+v, peers %+v", len(st.Levels[0].Table), st.RPC, st.Peers)
	}
	var stored int
	testkit.Eventually(t, 10*time.Second, "three copies of one put (they may land after Put answered)", func() bool {
		stored = 0
		for _, other := range nodes {
			stored += other.Status().Levels[0].StoredValues
		}
		return stored >= 3
	})
	if stored != 3 {
		t.Fatalf("%d copies stored for one put, want 3 (Copies: the closest node and the next two)", stored)
	}

	// The transport reports a peer down: it leaves the routing tables.
	victim := info(5)
	mn.SetDown(victim.Addr, true)
	clock.Advance(time.Second)
	n.NodeFailed(victim)
	n.NodeFailed(victim)
	for _, e := range n.Status().Levels[0].Table {
		if e.Node.ID == victim.ID {
			t.Fatal("failed node still in the routing table")
		}
	}
	if n.Status().Peers.Unreachable != 1 {
		t.Fatalf("peers %+v", n.Status().Peers)
	}
	// A new connection with its RTT brings it back.
	clock.Advance(time.Second)
	n.Observe(victim, 3*time.Millisecond)
	found := false
	for _, e := range n.Status().Levels[0].Table {
		if e.Node.ID == victim.ID && e.RTT > 0 {
			found = true
		}
	}
	if !found {
		t.Fatal("observed node not in the routing table with its RTT")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := nodes[1].Get(cctx, dsht.ID(object.KeyOf("a"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context: %v", err)
	}

	n.Close()
	if _, err := n.Get(ctx, dsht.ID(object.KeyOf("a"))); !errors.Is(err, dsht.ErrClosed) {
		t.Fatalf("get after close: %v", err)
	}
	if _, err := n.HandleRPC(ctx, info(1), &dsht.Request{Op: dsht.OpPing}); !errors.Is(err, dsht.ErrClosed) {
		t.Fatalf("rpc after close: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	mn := &dshttest.MemNet{}
	ok := dsht.DefaultConfig(info(0))
	for name, mod := range map[string]func(*dsht.Config){
		"zero id":            func(c *dsht.Config) { c.Self.ID = dsht.ID{} },
		"global threshold":   func(c *dsht.Config) { c.Levels = []time.Duration{time.Millisecond, 0} },
		"thresholds grow":    func(c *dsht.Config) { c.Levels = []time.Duration{0, 20 * time.Millisecond, 60 * time.Millisecond} },
		"negative K":         func(c *dsht.Config) { c.K = -1 },
		"K beyond the wire":  func(c *dsht.Config) { c.K = 100 },
		"fraction above one": func(c *dsht.Config) { c.ClusterFraction = 1.5 },
		"negative interval":  func(c *dsht.Config) { c.ClusterInterval = -time.Second },
	} {
		c := ok
		c.Levels = dsht.DefaultLevels()
		mod(&c)
		if _, err := dsht.New(c, mn.Endpoint(dsht.NodeInfo{})); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := dsht.New(ok, nil); err == nil {
		t.Error("nil network accepted")
	}
	two := ok
	two.Levels = []time.Duration{0, 30 * time.Millisecond}
	n, err := dsht.New(two, mn.Endpoint(dsht.NodeInfo{}))
	if err != nil || n.NumLevels() != 2 {
		t.Fatalf("two levels: %v", err)
	}
}

func TestValuesAreCopied(t *testing.T) {
	_, nodes, _ := newCluster(t, 5)
	ctx := context.Background()
	key := dsht.ID(object.KeyOf("copy"))
	v := []byte("original")
	if err := nodes[0].Put(ctx, key, v, time.Minute, dsht.Levels(0, 0)); err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXXXXX")
	vs, err := nodes[1].Get(ctx, key, dsht.Levels(0, 0))
	if err != nil || len(vs) != 1 || !bytes.Equal(vs[0].Data, []byte("original")) {
		t.Fatalf("got %+v (%v)", vs, err)
	}
	vs[0].Data[0] = 'Y'
	again, _ := nodes[2].Get(ctx, key, dsht.Levels(0, 0))
	if len(again) != 1 || string(again[0].Data) != "original" {
		t.Fatalf("stored value changed by a caller: %+v", again)
	}
}

func TestLoneNode(t *testing.T) {
	mn, nodes, _ := newCluster(t, 1)
	ctx := context.Background()
	if err := nodes[0].Put(ctx, dsht.ID(object.KeyOf("k")), []byte("v"), time.Minute); !errors.Is(err, dsht.ErrNoStore) {
		t.Fatalf("put with nobody to store at: %v", err)
	}
	mn.SetDown(info(7).Addr, true)
	if err := nodes[0].Bootstrap(ctx, []dsht.NodeInfo{info(7)}); !errors.Is(err, dsht.ErrNoBootstrap) {
		t.Fatalf("bootstrap through a dead seed: %v", err)
	}
}

// The reverse phase pops the stack when a store fails: with the key's
// root (and the next closest node) refusing to store, the value lands on
// the next node of the forward path, and gets from anywhere still find it.
func TestPutPopsStackOnStoreFailure(t *testing.T) {
	const n = 30
	mn, nodes, _ := newCluster(t, n)
	ctx := context.Background()
	key := dsht.ID(object.KeyOf("http://example.com/popped"))
	// The two nodes closest to the key by XOR refuse stores.
	order := closestFirst(key, n)
	putter := order[n-1] // the farthest: its forward path has nodes to fall back on
	mn.FailStores(info(order[0]).Addr, true)
	mn.FailStores(info(order[1]).Addr, true)
	if err := nodes[putter].Put(ctx, key, []byte("fallback"), time.Minute); err != nil {
		t.Fatalf("put with the root refusing stores: %v", err)
	}
	for _, i := range order[:2] {
		if v := storedAt(nodes[i]); v != 0 {
			t.Errorf("node %d refused stores but holds %d values", i, v)
		}
	}
	stored := 0
	for _, node := range nodes {
		stored += storedAt(node)
	}
	if stored == 0 {
		t.Fatal("the value was stored nowhere")
	}
	for _, g := range []int{order[0], order[n/2], putter} {
		if vs, err := nodes[g].Get(ctx, key); err != nil || !has(vs, "fallback") {
			t.Errorf("get from node %d: %v %+v", g, err, vs)
		}
	}
}

// closestFirst is nodes 0..n-1 (of newCluster) ordered by XOR distance
// to key: the routing space places node and key IDs at their SHA-256.
func closestFirst(key dsht.ID, n int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	pos := sha256.Sum256(key[:])
	slices.SortFunc(order, func(a, b int) int {
		ia, ib := info(a).ID, info(b).ID
		da, db := sha256.Sum256(ia[:]), sha256.Sum256(ib[:])
		for k := range da {
			x, y := da[k]^pos[k], db[k]^pos[k]
			if x != y {
				return int(x) - int(y)
			}
		}
		return 0
	})
	return order
}

// storedAt is how many values node holds over its levels.
func storedAt(node *dsht.Node) (v int) {
	for _, l := range node.Status().Levels {
		v += l.StoredValues
	}
	return v
}

// A plain put answers once its extra copies are stored, so a get right
// after it finds the value at whichever copy holder it meets first (a get
// met a copy holder the copy had not reached yet and came back without
// the value; a put+get still answers without waiting: see putOp.levelDone).
func TestPutAnswersAfterItsCopies(t *testing.T) {
	const n = 12
	mn, nodes, _ := newCluster(t, n)
	ctx := context.Background()
	key := dsht.ID(object.KeyOf("http://example.com/copied"))
	order := closestFirst(key, n)
	held, release := mn.HoldStores(info(order[1]).Addr) // the first extra copy's holder
	done := make(chan error, 1)
	go func() { done <- nodes[order[n-1]].Put(ctx, key, []byte("v"), time.Minute, dsht.Levels(0, 0)) }()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("the put answered (%v) before its copy reached the next closest node", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the put answered (%v) while its copy was still on its way", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if storedAt(nodes[order[1]]) == 0 {
		t.Fatal("the put answered before the next closest node held its copy")
	}
}

// A put leaves a second copy at the next closest node, so the value
// survives its holder dying before the owner renews it.
func TestValueSurvivesHolderDeath(t *testing.T) {
	for _, tc := range []struct {
		name   string
		copies int
		want   bool
	}{
		{"one copy is lost with its holder", 1, false},
		{"the second copy answers", 2, true},
		{"the default's copies answer", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mn, nodes, _ := newClusterWith(t, 12, func(c *dsht.Config) { c.Copies = tc.copies })
			ctx := context.Background()
			key := dsht.ID(object.KeyOf("survivor"))
			if err := nodes[0].Put(ctx, key, []byte("v"), time.Minute, dsht.Levels(0, 0)); err != nil {
				t.Fatal(err)
			}
			// The extra copies may land after Put has answered.
			var holders []int
			want := cmp.Or(tc.copies, 3)
			testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d holders of the value", want), func() bool {
				holders = holders[:0]
				for i, n := range nodes {
					if n.Stores(key, 0) > 0 {
						holders = append(holders, i)
					}
				}
				return len(holders) >= want
			})
			if len(holders) != want {
				t.Fatalf("holders %v, want %d", holders, want)
			}
			mn.SetDown(info(holders[0]).Addr, true)
			getter := nodes[0]
			for i := 0; slices.Contains(holders, i); i++ {
				getter = nodes[i+1] // not a holder: it must ask the others
			}
			vs, err := getter.Get(ctx, key, dsht.Levels(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			if has(vs, "v") != tc.want {
				t.Fatalf("after holder %d died: got %v, want found=%v", holders[0], vs, tc.want)
			}
		})
	}
}

// PutGetNear is test-and-set in one round at the root the routing tables
// name: of nodes racing for a key, the first meets nothing and every later
// one meets it; with that root down, the next closest node decides (the
// first, having met nobody at the root, stored there too).
func TestPutGetNearIsTestAndSet(t *testing.T) {
	for _, rootDown := range []bool{false, true} {
		t.Run(fmt.Sprintf("root down %v", rootDown), func(t *testing.T) {
			mn, nodes, _ := newCluster(t, 12)
			ctx := context.Background()
			key := dsht.ID(object.KeyOf("crowd"))
			racers := nodes
			if rootDown {
				if _, err := nodes[0].PutGetNear(ctx, key, []byte("probe"), time.Minute); err != nil {
					t.Fatal(err)
				}
				root := -1
				rootID := nodes[0].NearRoots(0, key)[0].ID
				for i := range nodes {
					if info(i).ID == rootID {
						root = i
					}
				}
				if nodes[root].Stores(key, 0) == 0 {
					t.Fatalf("the probe's value is not at the root node %d", root)
				}
				mn.SetDown(info(root).Addr, true)
				// The probe met nobody at the root, so it stored at the
				// next closest node too: that node decides the race now,
				// and the probe stays first.
				racers = slices.Delete(slices.Clone(nodes), root, root+1)
			}
			first := ""
			if rootDown {
				first = "probe"
			}
			for i, n := range racers {
				val := fmt.Sprintf("v%d", i)
				vs, err := n.PutGetNear(ctx, key, []byte(val), time.Minute)
				if err != nil {
					t.Fatalf("racer %d: %v", i, err)
				}
				if i == 0 && !rootDown {
					if len(vs) != 0 {
						t.Fatalf("first racer met %v", vs)
					}
					first = val
					continue
				}
				if !has(vs, first) {
					t.Fatalf("racer %d met %v, not the first's %q", i, vs, first)
				}
			}
		})
	}
}

// PutGetNearAt tests at the level asked for (level 0: the global root, where
// the clusters' first nodes meet) and refuses a level the node does not have.
func TestPutGetNearAtLevel(t *testing.T) {
	_, nodes, _ := newCluster(t, 8)
	ctx := context.Background()
	key := dsht.ID(object.KeyOf("crowd-global"))
	for i, n := range nodes {
		vs, err := n.PutGetNearAt(ctx, key, []byte(fmt.Sprintf("v%d", i)), time.Minute, 0)
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
		if (i == 0) != (len(vs) == 0) || i > 0 && !has(vs, "v0") {
			t.Fatalf("racer %d met %v; want the first racer's value, and the first nothing", i, vs)
		}
	}
	if _, err := nodes[0].PutGetNearAt(ctx, key, []byte("x"), time.Minute, 7); err == nil || !strings.Contains(err.Error(), "level 7") {
		t.Errorf("level 7: %v, want an error naming the level", err)
	}
}

// Two racers whose peer caches disagree on the root (one has not heard of
// the closest node) still meet: the one that met nobody at its root also
// tests at the next closest nodes, which both lists share (also when it is
// the root itself). Whoever comes first meets nobody and the other meets
// its value, in either order, and neither meets the other (no cycle of
// waits).
func TestPutGetNearDisagreeingRootsMeet(t *testing.T) {
	for _, tc := range []struct {
		unawareFirst, rootRaces bool
	}{{true, false}, {false, false}, {true, true}, {false, true}} {
		unawareFirst := tc.unawareFirst
		t.Run(fmt.Sprintf("unaware first %v, root races %v", tc.unawareFirst, tc.rootRaces), func(t *testing.T) {
			_, nodes, _ := newCluster(t, 12)
			ctx := context.Background()
			key := dsht.ID(object.KeyOf("crowd-disagree"))
			root := nodes[0].NearRoots(0, key)[0]
			var aware, unaware *dsht.Node
			for i, n := range nodes {
				if info(i).ID == root.ID {
					if tc.rootRaces { // it names itself first
						aware = n
					}
					continue
				}
				switch {
				case unaware == nil:
					unaware = n
				case aware == nil && n.NearRoots(0, key)[0].ID == root.ID:
					aware = n
				}
			}
			if unaware == nil || aware == nil {
				t.Fatal("no two racers that both know the root")
			}
			unaware.ForgetPeer(root.ID)
			if got := unaware.NearRoots(0, key); got[0].ID == root.ID {
				t.Fatalf("the unaware racer still names the root first: %v", got)
			}
			racers := []*dsht.Node{aware, unaware}
			vals := []string{"aware", "unaware"}
			if unawareFirst {
				racers, vals = []*dsht.Node{unaware, aware}, []string{"unaware", "aware"}
			}
			raceNear(t, ctx, key, racers, vals)
		})
	}
}

// raceNear has the racers test-and-set key at the global root one after
// the other, each with its value: the first must meet nobody and the
// second the first's value, or both would go to the origin.
func raceNear(t *testing.T, ctx context.Context, key dsht.ID, racers []*dsht.Node, vals []string) {
	t.Helper()
	for i, n := range racers {
		vs, err := n.PutGetNearAt(ctx, key, []byte(vals[i]), time.Minute, 0)
		if err != nil {
			t.Fatalf("%s: %v", vals[i], err)
		}
		if i == 0 && len(vs) != 0 {
			t.Fatalf("first racer (%s) met %v", vals[0], vs)
		}
		if i == 1 && !has(vs, vals[0]) {
			t.Fatalf("second racer (%s) met %v, not the first's value: both would go to the origin", vals[1], vs)
		}
	}
}

// Two racers whose peer caches share no node (each heard only from its own
// half of the network) name disjoint roots. The near put+get first probes
// its closest node, which knows both halves, for the nodes nearer the key,
// so both store at the same root: in either order the first meets nobody
// and the second meets the first's value (without the probe both met
// nobody).
func TestPutGetNearDisjointViewsMeet(t *testing.T) {
	for _, secondFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("second racer first %v", secondFirst), func(t *testing.T) {
			_, nodes, _ := newCluster(t, 14)
			racers := []*dsht.Node{nodes[0], nodes[1]}
			for i := range nodes {
				switch {
				case i == 1 || i >= 2 && i < 8: // racer 1 and its half: racer 0 never heard of them
					racers[0].ForgetPeer(info(i).ID)
				case i == 0 || i >= 8:
					racers[1].ForgetPeer(info(i).ID)
				}
			}
			key := dsht.ID(object.KeyOf("crowd-disjoint"))
			for _, r := range racers[0].NearRoots(0, key) {
				if slices.ContainsFunc(racers[1].NearRoots(0, key), func(o dsht.NodeInfo) bool { return o.ID == r.ID }) {
					t.Fatalf("the racers' roots share %x: the views are not disjoint", r.ID[:3])
				}
			}
			vals := []string{"zero", "one"}
			if secondFirst {
				racers, vals = []*dsht.Node{racers[1], racers[0]}, []string{"one", "zero"}
			}
			raceNear(t, context.Background(), key, racers, vals)
		})
	}
}
