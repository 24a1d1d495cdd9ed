package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// The real store is what the proxy runs on (the guard lives here so the
// proxy itself does not link Badger).
var (
	_ Store    = (*store.Store)(nil)
	_ HotStore = (*store.Store)(nil)
)

const (
	testZone  = "coral.test"
	testToken = "coral-0000test"
)

// testEpoch is where the injected clock starts: tests move time instead of
// sleeping.
var testEpoch = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// origin is a real HTTP origin whose behaviour a test can change; it stamps
// Date from the fake clock and counts the requests it receives.
type origin struct {
	*httptest.Server
	clock *testkit.Clock
	hits  atomic.Int64

	mu      sync.Mutex
	handler http.HandlerFunc
	reqs    []*http.Request // clones of received requests (headers only)
}

func newOrigin(t *testing.T, clock *testkit.Clock, h http.HandlerFunc) *origin {
	o := &origin{clock: clock, handler: h}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.mu.Lock()
		o.reqs = append(o.reqs, r.Clone(r.Context()))
		h := o.handler
		o.mu.Unlock()
		w.Header().Set("Date", clock.Now().Format(http.TimeFormat))
		h(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) set(h http.HandlerFunc) {
	o.mu.Lock()
	o.handler = h
	o.mu.Unlock()
}

func (o *origin) lastRequest() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reqs) == 0 {
		return nil
	}
	return o.reqs[len(o.reqs)-1]
}

// host is the origin's Coralized name.
func (o *origin) host() string {
	u, _ := url.Parse(o.URL)
	return strings.ReplaceAll(u.Hostname(), ":", "") + "." + u.Port() + "." + testZone
}

// static answers every request with body and the given header pairs.
func static(body string, kv ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(kv); i += 2 {
			w.Header().Add(kv[i], kv[i+1])
		}
		_, _ = io.WriteString(w, body)
	}
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

type env struct {
	t      *testing.T
	clock  *testkit.Clock
	st     *store.Store
	p      *Proxy
	srv    *httptest.Server // behind the fast path, as a node serves
	plain  *httptest.Server // the same proxy through net/http alone
	gate   *testGate
	client *http.Client
}

// testGate is a node's gate for the fast path: it admits every host (as
// its own site) unless refuse is set, and counts the bytes sent. With
// capped set, it is a budget whose cap binds: every byte is Allowed first.
type testGate struct {
	refuse atomic.Bool
	capped atomic.Bool
	admits atomic.Int64
	sent   atomic.Int64

	mu       sync.Mutex
	bySite   map[string]int64 // bytes counted per site
	allowed  map[string]int64 // bytes let through per site
	maxPiece int              // the largest Allow
}

func (g *testGate) Admit(host string) (string, bool) {
	g.admits.Add(1)
	return host, !g.refuse.Load()
}
func (g *testGate) Answers(h http.Header) bool { return h.Get("X-Gate-Sees") == "" }
func (g *testGate) Capped() bool               { return g.capped.Load() }

func (g *testGate) Sent(site string, n int64) {
	g.sent.Add(n)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bySite == nil {
		g.bySite = map[string]int64{}
	}
	g.bySite[site] += n
}

func (g *testGate) Allow(_ context.Context, site string, n int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.allowed == nil {
		g.allowed = map[string]int64{}
	}
	g.allowed[site] += int64(n)
	g.maxPiece = max(g.maxPiece, n)
	return nil
}

// counted is what the gate counted and allowed for site.
func (g *testGate) counted(site string) (sent, allowed int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bySite[site], g.allowed[site]
}

// fastServer serves h (p, or handlers in front of it) through p's fast
// path, as app/node does.
func fastServer(t *testing.T, h http.Handler, p *Proxy, gate FastGate, to FastTimeouts) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener, srv.Config.ConnState = p.FastListener(srv.Listener, gate, to)
	srv.Config.ConnContext = ConnContext
	srv.Start()
	return srv
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newEnv(t *testing.T, tweak func(*Options)) *env {
	t.Helper()
	clock := testkit.NewClock(testEpoch)
	st, err := store.Open(t.TempDir(), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Zone: testZone, NodeToken: testToken,
		HeuristicTTL: 12 * time.Hour, AllowPrivateOrigins: true, StripCookies: true,
		OriginTimeout: 10 * time.Second, Now: clock.Now, Logger: quiet(), SpoolDir: t.TempDir(),
	}
	if tweak != nil {
		tweak(&opts)
	}
	p, err := New(opts, st)
	if err != nil {
		t.Fatal(err)
	}
	gate := &testGate{}
	srv := fastServer(t, p, p, gate, FastTimeouts{Idle: time.Minute, Header: 10 * time.Second})
	plain := httptest.NewServer(p)
	// Cleanups run last-first: stop fetches, then the servers, then the store.
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(srv.Close)
	t.Cleanup(plain.Close)
	t.Cleanup(func() { _ = p.Close() })
	tr := &http.Transport{Proxy: nil, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &env{t: t, clock: clock, st: st, p: p, srv: srv, plain: plain, gate: gate, client: &http.Client{
		Transport: tr,
		// Redirects are the proxy's answer under test, not to be followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends method path to the proxy with the given Host; kv are header pairs.
func (e *env) do(method, host, path string, body io.Reader, kv ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Host = host
	for i := 0; i < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	return resp
}

// result is a response read to the end.
type result struct {
	status  int
	header  http.Header
	body    string
	readErr error
}

func (r result) cache() string { return r.header.Get("X-Coral-Cache") }

func (e *env) fetch(method, host, path string, kv ...string) result {
	e.t.Helper()
	resp := e.do(method, host, path, nil, kv...)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), readErr: err}
}

func (e *env) get(o *origin, path string, kv ...string) result {
	e.t.Helper()
	return e.fetch(http.MethodGet, o.host(), path, kv...)
}

// expect checks status, X-Coral-Cache and body of a complete response.
func expect(t *testing.T, what string, r result, status int, cache, body string) {
	t.Helper()
	if r.readErr != nil {
		t.Fatalf("%s: reading body: %v", what, r.readErr)
	}
	if r.status != status || r.cache() != cache || (body != "*" && r.body != body) {
		t.Fatalf("%s: got %d %s %q, want %d %s %q", what, r.status, r.cache(), trunc(r.body), status, cache, trunc(body))
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// recv takes one value from ch, failing the test instead of hanging if it
// never comes.
func recv[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	panic("unreachable")
}

// stored reads the stored body for a canonical URL straight from the store.
func (e *env) stored(canon string) (store.Meta, string, bool) {
	e.t.Helper()
	m, b, err := e.st.Get(object.KeyOf(canon).String())
	if err != nil {
		return store.Meta{}, "", false
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return m, string(data), true
}

func (o *origin) canon(path string) string { return o.URL + path }
