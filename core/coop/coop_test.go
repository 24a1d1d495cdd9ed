package coop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
	"github.com/fxamacker/cbor/v2"
)

const self = "12D3KooWSelfSelfSelfSelfSelfSelfSelf0000000"

// peerID is a made-up peer ID whose short form (proxy.ShortPeer) is name.
func peerID(name string) string { return "12D3KooWFakeFakeFakeFake" + fmt.Sprintf("%8s", name) }

func short(name string) string { return proxy.ShortPeer(peerID(name)) }

type putCall struct {
	key dsht.ID
	ref Referral
	ttl time.Duration
}

// fakeDSHT answers gets from vals and reports every put on puts (after
// recording it), so tests wait for announcements instead of sleeping.
type fakeDSHT struct {
	mu       sync.Mutex
	vals     map[dsht.ID][]dsht.Value
	putGet   []dsht.Value // what a put+get meets
	getErr   error
	recorded []putCall
	putGets  []putCall
	puts     chan putCall
}

func newFakeDSHT() *fakeDSHT {
	return &fakeDSHT{vals: map[dsht.ID][]dsht.Value{}, puts: make(chan putCall, 64)}
}

func (f *fakeDSHT) Get(ctx context.Context, key dsht.ID, _ ...dsht.Option) ([]dsht.Value, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.vals[key]), f.getErr
}

func (f *fakeDSHT) Put(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, _ ...dsht.Option) error {
	r, err := DecodeReferral(value)
	if err != nil {
		return err
	}
	call := putCall{key, r, ttl}
	f.mu.Lock()
	f.recorded = append(f.recorded, call)
	f.mu.Unlock()
	select {
	case f.puts <- call:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeDSHT) PutGet(ctx context.Context, key dsht.ID, value []byte, ttl time.Duration, _ ...dsht.Option) ([]dsht.Value, error) {
	r, err := DecodeReferral(value)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putGets = append(f.putGets, putCall{key, r, ttl})
	return slices.Clone(f.putGet), nil
}

func (f *fakeDSHT) set(url string, vals ...dsht.Value) {
	f.mu.Lock()
	f.vals[dsht.ID(object.KeyOf(url))] = vals
	f.mu.Unlock()
}

func (f *fakeDSHT) putsFor(url string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.recorded {
		if c.key == dsht.ID(object.KeyOf(url)) {
			n++
		}
	}
	return n
}

func value(peer string, state, level int) dsht.Value {
	return dsht.Value{Data: EncodeReferral(Referral{Peer: peer, State: state}), Level: level}
}

// fakeFetcher runs a per-peer script and reports each call on calls.
type fakeFetcher struct {
	scripts map[string]func(ctx context.Context) (store.Meta, io.ReadCloser, error)
	calls   chan string
}

func (f *fakeFetcher) FetchObject(ctx context.Context, peer, key string) (store.Meta, io.ReadCloser, error) {
	f.calls <- peer
	if s, ok := f.scripts[peer]; ok {
		return s(ctx)
	}
	return store.Meta{}, nil, fmt.Errorf("fake: %w", store.ErrNotFound)
}

// body is a peer body that reports its Close.
type body struct {
	io.Reader
	closed chan struct{}
	once   sync.Once
}

func newBody(s string) *body { return &body{Reader: strings.NewReader(s), closed: make(chan struct{})} }

func (b *body) Close() error { b.once.Do(func() { close(b.closed) }); return nil }

func delivers(b *body) func(context.Context) (store.Meta, io.ReadCloser, error) {
	return func(context.Context) (store.Meta, io.ReadCloser, error) {
		return store.Meta{Status: 200, Size: -1}, b, nil
	}
}

func fails(err error) func(context.Context) (store.Meta, io.ReadCloser, error) {
	return func(context.Context) (store.Meta, io.ReadCloser, error) { return store.Meta{}, nil, err }
}

// fakeTicker is a ticker the test drives; stopped closes when it is stopped.
type fakeTicker struct {
	d       time.Duration
	c       chan time.Time
	stopped chan struct{}
	once    sync.Once
}

type tickers struct{ made chan *fakeTicker }

func (ts *tickers) new(d time.Duration) (<-chan time.Time, func()) {
	t := &fakeTicker{d: d, c: make(chan time.Time), stopped: make(chan struct{})}
	ts.made <- t
	return t.c, func() { t.once.Do(func() { close(t.stopped) }) }
}

func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

func send[T any](t *testing.T, what string, ch chan<- T, v T) {
	t.Helper()
	select {
	case ch <- v:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting to %s", what)
	}
}

type harness struct {
	c       *Coop
	d       *fakeDSHT
	f       *fakeFetcher
	tickers *tickers
	renew   *fakeTicker // renewLoop's ticker
}

func newHarness(t *testing.T, tweak func(*Config)) *harness {
	t.Helper()
	cfg := Config{Self: self, Logger: slog.New(slog.DiscardHandler), FetchTimeout: 10 * time.Second}
	if tweak != nil {
		tweak(&cfg)
	}
	h := &harness{d: newFakeDSHT(), tickers: &tickers{made: make(chan *fakeTicker, 16)},
		f: &fakeFetcher{scripts: map[string]func(context.Context) (store.Meta, io.ReadCloser, error){}, calls: make(chan string, 16)}}
	h.c = newCoop(cfg, h.d, h.f, h.tickers.new)
	h.renew = recv(t, "the renewal ticker", h.tickers.made)
	t.Cleanup(func() { _ = h.c.Close() })
	return h
}

func TestDecodeReferral(t *testing.T) {
	good := EncodeReferral(Referral{Peer: peerID("a"), State: StateCached})
	r, err := DecodeReferral(good)
	if err != nil || r.Peer != peerID("a") || r.State != StateCached || r.Version != referralVersion {
		t.Fatalf("round trip: %+v %v", r, err)
	}
	enc := func(v any) []byte {
		b, err := cbor.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not cbor at all \xff\xfe")},
		{"truncated", good[:len(good)-3]},
		{"a string", enc("12D3KooW...")},
		{"an array", enc([]int{1, 2, 3})},
		{"other version", enc(Referral{Version: 2, Peer: peerID("a"), State: StateCached})},
		{"no version", enc(map[int]any{2: peerID("a"), 3: StateCached})},
		{"no peer", enc(Referral{Version: referralVersion, State: StateCached})},
		{"peer too long", enc(Referral{Version: referralVersion, Peer: strings.Repeat("x", 129), State: StateCached})},
		{"unknown state", enc(Referral{Version: referralVersion, Peer: peerID("a"), State: 7})},
		{"peer of the wrong type", enc(map[int]any{1: referralVersion, 2: 42, 3: StateCached})},
	} {
		if r, err := DecodeReferral(tc.data); err == nil {
			t.Errorf("%s: accepted as %+v", tc.name, r)
		}
	}
}

func FuzzDecodeReferral(f *testing.F) {
	f.Add(EncodeReferral(Referral{Peer: peerID("a"), State: StateCached}))
	f.Add(EncodeReferral(Referral{Peer: "x", State: StateDownloading}))
	f.Add([]byte{0xa3, 0x01, 0x01, 0x02, 0x60, 0x03, 0x02})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReferral(data)
		if err != nil {
			return
		}
		if r.Peer == "" || len(r.Peer) > 128 || (r.State != StateCached && r.State != StateDownloading) {
			t.Fatalf("accepted an invalid referral %+v", r)
		}
		back, err := DecodeReferral(EncodeReferral(r))
		if err != nil || back != r {
			t.Fatalf("re-encoding %+v gave %+v, %v", r, back, err)
		}
	})
}

// Candidates: complete copies before downloads, then the most local level;
// this node, garbage and repeats are left out (a repeat counts at its best).
func TestCandidates(t *testing.T) {
	h := newHarness(t, nil)
	got := h.c.candidates([]dsht.Value{
		value(self, StateCached, 2),
		value(peerID("a"), StateDownloading, 2),
		{Data: []byte("garbage"), Level: 2},
		value(peerID("b"), StateCached, 0),
		value(peerID("c"), StateCached, 1),
		value(peerID("d"), StateDownloading, 1),
		value(peerID("a"), StateCached, 0),
		value(peerID("e"), StateDownloading, 2),
		value(peerID("c"), StateCached, 0),
	})
	var names []string
	for _, cd := range got {
		names = append(names, cd.String())
	}
	want := []string{
		short("c") + " L1 cached", short("a") + " L0 cached", short("b") + " L0 cached",
		short("e") + " L2 downloading", short("d") + " L1 downloading",
	}
	if !slices.Equal(names, want) {
		t.Errorf("candidates\n got %v\nwant %v", names, want)
	}
}

// The first peer to deliver wins; the attempts still waiting are cancelled
// at once, and a loser that delivers after all has its body closed.
func TestRaceFirstDeliveryWins(t *testing.T) {
	h := newHarness(t, nil)
	const url = "http://example.com/obj"
	h.d.set(url, value(peerID("a"), StateCached, 2), value(peerID("b"), StateCached, 2), value(peerID("c"), StateDownloading, 2))
	aCancelled := make(chan struct{})
	releaseB, releaseC := make(chan struct{}), make(chan struct{})
	bBody, cBody := newBody("from b"), newBody("from c")
	h.f.scripts[peerID("a")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
		<-ctx.Done()
		close(aCancelled)
		return store.Meta{}, nil, ctx.Err()
	}
	h.f.scripts[peerID("b")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
		<-releaseB
		return delivers(bBody)(ctx)
	}
	h.f.scripts[peerID("c")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
		<-releaseC
		return delivers(cBody)(ctx)
	}
	tr := &proxy.Trace{}
	type res struct {
		meta store.Meta
		body io.ReadCloser
		err  error
	}
	done := make(chan res, 1)
	before := time.Now()
	go func() {
		m, b, err := h.c.Fetch(proxy.WithTrace(context.Background(), tr), object.KeyOf(url), url, nil)
		done <- res{m, b, err}
	}()
	var started []string
	for range 3 {
		started = append(started, recv(t, "an attempt to start", h.f.calls))
	}
	slices.Sort(started)
	if !slices.Equal(started, []string{peerID("a"), peerID("b"), peerID("c")}) {
		t.Fatalf("attempts %v, want all three at once", started)
	}
	close(releaseB)
	r := recv(t, "Fetch", done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got, _ := io.ReadAll(r.body); string(got) != "from b" {
		t.Errorf("body %q, want b's", got)
	}
	if r.meta.RequestTime.Before(before) || r.meta.ResponseTime.Before(r.meta.RequestTime) {
		t.Errorf("meta times %v / %v are not this node's readings around the request", r.meta.RequestTime, r.meta.ResponseTime)
	}
	recv(t, "the waiting attempt to be cancelled", aCancelled)
	close(releaseC)
	recv(t, "the late loser's body to be closed", cBody.closed)
	select {
	case <-bBody.closed:
		t.Fatal("the winner's body was closed under the caller")
	default:
	}
	r.body.Close()
	recv(t, "the winner's body to be closed", bBody.closed)

	s := h.c.Stats()
	if s.Lookups != 1 || s.LookupHits != 1 || s.PeerFetches != 1 || s.FromLevel[2] != 1 || s.PeerFailures != 0 {
		t.Errorf("stats %+v", s)
	}
	trace := tr.String()
	for _, want := range []string{"lookup: 3 values", "try " + short("b") + " L2 cached: ok", "from peer " + short("b") + " L2"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace %q lacks %q", trace, want)
		}
	}
}

// A referral that fails makes room for the next one.
func TestRaceFailureStartsNext(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Parallel = 1 })
	const url = "http://example.com/next"
	h.d.set(url, value(peerID("a"), StateCached, 2), value(peerID("b"), StateCached, 1), value(peerID("c"), StateDownloading, 2))
	h.f.scripts[peerID("a")] = fails(fmt.Errorf("gone: %w", store.ErrNotFound))
	h.f.scripts[peerID("b")] = fails(errors.New("stream reset"))
	h.f.scripts[peerID("c")] = delivers(newBody("from c"))
	tr := &proxy.Trace{}
	_, b, err := h.c.Fetch(proxy.WithTrace(context.Background(), tr), object.KeyOf(url), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "from c" {
		t.Errorf("body %q", got)
	}
	var order []string
	for range 3 {
		order = append(order, recv(t, "an attempt", h.f.calls))
	}
	if !slices.Equal(order, []string{peerID("a"), peerID("b"), peerID("c")}) {
		t.Errorf("attempt order %v", order)
	}
	want := "lookup: 3 values; try " + short("a") + " L2 cached: not found; try " + short("b") + " L1 cached: failed (stream reset); try " +
		short("c") + " L2 downloading: ok; from peer " + short("c") + " L2"
	if got := tr.String(); got != want {
		t.Errorf("trace\n got %q\nwant %q", got, want)
	}
	if s := h.c.Stats(); s.PeerFailures != 2 || s.PeerFetches != 1 {
		t.Errorf("stats %+v", s)
	}
}

// No referral, or none that delivers: an error wrapping store.ErrNotFound,
// which sends the proxy to the origin.
func TestFetchNotFound(t *testing.T) {
	// BusyWait of 1ns: the holder that never answers is not asked again
	// (busy_test.go covers that).
	h := newHarness(t, func(c *Config) { c.FetchTimeout, c.BusyWait = 50*time.Millisecond, time.Nanosecond })
	const url = "http://example.com/none"
	if _, _, err := h.c.Fetch(context.Background(), object.KeyOf(url), url, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no referral: %v", err)
	}
	h.d.set(url, value(self, StateCached, 2), value(peerID("a"), StateCached, 2), value(peerID("b"), StateCached, 2),
		value(peerID("c"), StateCached, 0), value(peerID("d"), StateCached, 0))
	h.f.scripts[peerID("a")] = fails(errors.New("connection refused"))
	h.f.scripts[peerID("b")] = fails(fmt.Errorf("x: %w", store.ErrNotFound))
	h.f.scripts[peerID("c")] = func(ctx context.Context) (store.Meta, io.ReadCloser, error) {
		<-ctx.Done() // never answers: FetchTimeout gives up on it
		return store.Meta{}, nil, ctx.Err()
	}
	tr := &proxy.Trace{}
	_, _, err := h.c.Fetch(proxy.WithTrace(context.Background(), tr), object.KeyOf(url), url, nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("all failing: %v", err)
	}
	if !strings.Contains(tr.String(), "try "+short("c")+" L0 cached: no response") {
		t.Errorf("trace %q", tr.String())
	}
	h.d.mu.Lock()
	h.d.getErr = errors.New("dsht down")
	h.d.mu.Unlock()
	if _, _, err := h.c.Fetch(context.Background(), object.KeyOf(url), url, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lookup failing: %v", err)
	}
}

// "I am downloading" is announced at once and renewed at half its TTL
// until done.
func TestDownloadingRenewsUntilDone(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DownloadingTTL = 20 * time.Second })
	const url = "http://example.com/dl"
	done := h.c.Downloading(object.KeyOf(url), url)
	tk := recv(t, "the renewal ticker", h.tickers.made)
	if tk.d != 10*time.Second {
		t.Errorf("renewal every %v, want half of 20s", tk.d)
	}
	for i := range 3 {
		if i > 0 {
			send(t, "tick", tk.c, time.Now())
		}
		p := recv(t, "an announcement", h.d.puts)
		if p.key != dsht.ID(object.KeyOf(url)) || p.ref.Peer != self || p.ref.State != StateDownloading || p.ttl != 20*time.Second {
			t.Errorf("announcement %d: %+v", i, p)
		}
	}
	done()
	done() // twice is fine
	recv(t, "the renewals to stop", tk.stopped)
	h.c.Close()
	if n := h.d.putsFor(url); n != 3 {
		t.Errorf("%d announcements, want 3", n)
	}
}

// A miss announces "I am downloading" before the proxy goes to the origin
// (Fetch returns only after it): with put+get as part of the lookup, without
// it as a put. The origin download that follows does not announce it a
// second time at once, only renews it.
func TestMissAnnouncesDownloadOnce(t *testing.T) {
	for _, putGet := range []bool{true, false} {
		t.Run(fmt.Sprintf("put_get=%t", putGet), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.PutGet = putGet })
			const url = "http://example.com/announce"
			if _, _, err := h.c.Fetch(context.Background(), object.KeyOf(url), url, nil); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("nothing met: %v", err)
			}
			h.d.mu.Lock()
			calls := slices.Clone(h.d.recorded) // puts
			if putGet {
				calls = slices.Clone(h.d.putGets)
			}
			h.d.mu.Unlock()
			if len(calls) != 1 || calls[0].ref.Peer != self || calls[0].ref.State != StateDownloading || calls[0].key != dsht.ID(object.KeyOf(url)) {
				t.Fatalf("announcements when Fetch returned: %+v, want this node's downloading value", calls)
			}
			done := h.c.Downloading(object.KeyOf(url), url)
			tk := recv(t, "the renewal ticker", h.tickers.made)
			send(t, "tick", tk.c, time.Now())
			recv(t, "the renewal", h.d.puts)
			done()
			recv(t, "the renewals to stop", tk.stopped)
			h.c.Close()
			want := 1 // the renewal
			if !putGet {
				want = 2 // the announcing put and the renewal
			}
			if n := h.d.putsFor(url); n != want {
				t.Errorf("%d puts, want %d (the download was announced already)", n, want)
			}
		})
	}
}

// What the put+get meets is fetched from.
func TestPutGetFetchesWhatItMeets(t *testing.T) {
	const url = "http://example.com/pg"
	h := newHarness(t, func(c *Config) { c.PutGet = true })
	h.d.putGet = []dsht.Value{value(peerID("a"), StateDownloading, 2)}
	h.f.scripts[peerID("a")] = delivers(newBody("from a"))
	_, b, err := h.c.Fetch(context.Background(), object.KeyOf(url), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "from a" {
		t.Errorf("body %q, want a's", got)
	}
}

// A complete copy is announced at every level and renewed while cached; a
// removed copy is no longer renewed.
func TestCachedRenewedUntilRemoved(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CachedTTL = time.Hour })
	if h.renew.d != 30*time.Minute {
		t.Errorf("renewal every %v, want half of 1h", h.renew.d)
	}
	a := store.Meta{Key: "ka", URL: "http://example.com/a"}
	b := store.Meta{Key: "kb", URL: "http://example.com/b"}
	h.c.Cached(object.Key{}, store.Meta{Key: "nourl"}) // nothing to announce
	for _, m := range []store.Meta{a, b} {
		h.c.Cached(object.KeyOf(m.URL), m)
		p := recv(t, "an announcement", h.d.puts)
		if p.key != dsht.ID(object.KeyOf(m.URL)) || p.ref.State != StateCached || p.ref.Peer != self || p.ttl != time.Hour {
			t.Errorf("announcement of %s: %+v", m.URL, p)
		}
	}
	h.c.Removed(a.Key)
	send(t, "tick", h.renew.c, time.Now())
	if p := recv(t, "a renewal", h.d.puts); p.key != dsht.ID(object.KeyOf(b.URL)) {
		t.Errorf("renewed %x, want b", p.key[:4])
	}
	// The loop takes the next tick only when the first pass is through.
	send(t, "tick", h.renew.c, time.Now())
	h.c.Close()
	if n := h.d.putsFor(a.URL); n != 1 {
		t.Errorf("removed copy announced %d times, want once (before removal)", n)
	}
	if n := h.d.putsFor(b.URL); n < 2 {
		t.Errorf("cached copy announced %d times, want renewals", n)
	}
	recv(t, "the renewal ticker to stop", h.renew.stopped)
}

// Copies found in the store at start-up are announced at once, not at the
// first renewal half an hour later.
func TestSeedAnnouncesAtOnce(t *testing.T) {
	h := newHarness(t, nil)
	metas := []store.Meta{{Key: "k1", URL: "http://example.com/1"}, {Key: "k2", URL: "http://example.com/2"}, {Key: "vary-index"}}
	h.c.Seed(metas)
	got := map[dsht.ID]bool{}
	for range 2 {
		p := recv(t, "an announcement", h.d.puts)
		if p.ref.State != StateCached {
			t.Errorf("seeded copy announced as %+v", p.ref)
		}
		got[p.key] = true
	}
	if !got[dsht.ID(object.KeyOf(metas[0].URL))] || !got[dsht.ID(object.KeyOf(metas[1].URL))] {
		t.Errorf("announced %v", got)
	}
}

func TestLookupStep(t *testing.T) {
	dt := &dsht.Trace{Levels: []dsht.LevelTrace{{Level: 2}, {Level: 1}, {Level: 0, Found: true}}, Elapsed: 14 * time.Millisecond}
	vals := []dsht.Value{{Level: 0}, {Level: 0}}
	if got := lookupStep("lookup", dt, vals, nil); got != "lookup L2:0 L1:0 L0:2 (14ms)" {
		t.Errorf("got %q", got)
	}
	if got := lookupStep("put+get", &dsht.Trace{}, nil, errors.New("x")); got != "put+get: 0 values: failed" {
		t.Errorf("got %q", got)
	}
	// A lone node's first miss is normal, not a failure.
	lone := fmt.Errorf("put+get: %w", dsht.ErrNoStore)
	if got := lookupStep("put+get", dt, nil, lone); got != "put+get L2:0 L1:0 L0:0 (14ms): no other node yet" {
		t.Errorf("got %q", got)
	}
}

// A copy the caller cannot use (too old for this request, say) does not
// end the race: it is closed and the next referral is tried, so a stale
// copy at one peer does not send the request to the origin while another
// peer holds a fresh one.
func TestUnusableCopyTriesNextReferral(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Parallel = 1 })
	const url = "http://example.com/fresh-elsewhere"
	h.d.set(url, value(peerID("a"), StateCached, 2), value(peerID("b"), StateCached, 2))
	old, fresh := newBody("old copy"), newBody("fresh copy")
	h.f.scripts[peerID("a")] = func(context.Context) (store.Meta, io.ReadCloser, error) {
		return store.Meta{Status: 200, Size: -1, Header: http.Header{"Age": {"7200"}}}, old, nil
	}
	h.f.scripts[peerID("b")] = delivers(fresh)
	usable := func(m store.Meta) error {
		if m.Header.Get("Age") == "7200" {
			return errors.New("stale (age 7200, freshness lifetime 3600)")
		}
		return nil
	}
	tr := &proxy.Trace{}
	_, b, err := h.c.Fetch(proxy.WithTrace(context.Background(), tr), object.KeyOf(url), url, usable)
	if err != nil {
		t.Fatalf("a fresh copy was at b: %v", err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "fresh copy" {
		t.Errorf("body %q, want b's fresh copy", got)
	}
	recv(t, "the stale copy to be closed", old.closed)
	if want := "try " + short("a") + " L2 cached: copy not used: stale"; !strings.Contains(tr.String(), want) {
		t.Errorf("trace %q does not say %q", tr.String(), want)
	}
}

// flakyGets fails its first gets, as lookups time out under a crowd's load.
type flakyGets struct {
	*fakeDSHT
	failures atomic.Int32
}

func (f *flakyGets) Get(ctx context.Context, key dsht.ID, opts ...dsht.Option) ([]dsht.Value, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, fmt.Errorf("dsht: get: %w", context.DeadlineExceeded)
	}
	return f.fakeDSHT.Get(ctx, key, opts...)
}

// A lookup that fails says nothing about downloads under way: a receiver
// resuming after its upstream died looks again for a complete copy instead
// of giving up at once (and then going to the origin). Under a 100-node
// crowd's load lookups time out, and each such receiver was one more
// origin request.
func TestResumeLooksAgainWhenLookupFails(t *testing.T) {
	const url = "http://example.com/resume"
	d := &flakyGets{fakeDSHT: newFakeDSHT()}
	d.failures.Store(2)
	d.set(url, value(peerID("a"), StateCached, 2))
	f := &fakeFetcher{scripts: map[string]func(context.Context) (store.Meta, io.ReadCloser, error){}, calls: make(chan string, 16)}
	f.scripts[peerID("a")] = delivers(newBody("the copy"))
	ts := &tickers{made: make(chan *fakeTicker, 16)}
	c := newCoop(Config{Self: self, Logger: slog.New(slog.DiscardHandler), BusyWait: 10 * time.Second}, d, f, ts.new)
	t.Cleanup(func() { _ = c.Close() })
	recv(t, "the renewal ticker", ts.made)

	_, body, err := c.FetchForResume(context.Background(), object.KeyOf(url), url, nil)
	if err != nil {
		t.Fatalf("gave up after failed lookups: %v", err)
	}
	defer body.Close()
	if got, _ := io.ReadAll(body); string(got) != "the copy" {
		t.Errorf("body %q, want the complete copy's", got)
	}
	if left := d.failures.Load(); left >= 0 {
		t.Errorf("%d failing lookups left: the copy came before they were used up", left+1)
	}
}
