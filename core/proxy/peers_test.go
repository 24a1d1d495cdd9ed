package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// scriptedPeers is a Peers whose Fetch a test writes.
type scriptedPeers struct {
	fetch func(ctx context.Context, key, canon string) (store.Meta, io.ReadCloser, error)

	mu          sync.Mutex
	downloading int
	cached      []store.Meta
}

func (s *scriptedPeers) Fetch(ctx context.Context, key object.Key, canon string, _ func(store.Meta) error) (store.Meta, io.ReadCloser, error) {
	if s.fetch == nil {
		return store.Meta{}, nil, store.ErrNotFound
	}
	return s.fetch(ctx, key.String(), canon)
}

func (s *scriptedPeers) Downloading(object.Key, string) func() {
	s.mu.Lock()
	s.downloading++
	s.mu.Unlock()
	return func() {}
}

func (s *scriptedPeers) Cached(_ object.Key, m store.Meta) {
	s.mu.Lock()
	s.cached = append(s.cached, m)
	s.mu.Unlock()
}

func (s *scriptedPeers) Removed(string) {}

// peerCopy is the meta a peer would send for body with header kv pairs.
func peerCopy(key, canon, body string, kv ...string) store.Meta {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return store.Meta{Key: key, URL: canon, Status: 200, Header: h, Size: int64(len(body)), SHA256: sha256.Sum256([]byte(body))}
}

// A peer is an upstream cache: the copy's age is the Age it states plus the
// time since, whatever the peer's own clock readings say, and a copy past
// its freshness lifetime is never served as fresh: the origin is asked.
func TestPeerCopyAge(t *testing.T) {
	peers := &scriptedPeers{}
	e := newEnv(t, func(o *Options) { o.Peers = peers })
	o := newOrigin(t, e.clock, static("origin copy", "Cache-Control", "max-age=60"))
	now := e.clock.Now
	date := func(ago time.Duration) string { return now().Add(-ago).Format(http.TimeFormat) }
	// peerTimes are the peer's readings from when it fetched the object:
	// they say nothing about age here (its clock may be far off).
	peerTimes := func(m store.Meta, off time.Duration) store.Meta {
		m.RequestTime, m.ResponseTime = now().Add(off), now().Add(off)
		return m
	}
	copies := map[string]store.Meta{}
	peers.fetch = func(_ context.Context, key, canon string) (store.Meta, io.ReadCloser, error) {
		m, ok := copies[canon]
		if !ok {
			return store.Meta{}, nil, store.ErrNotFound
		}
		return m, io.NopCloser(strings.NewReader("peer copy")), nil
	}

	// 50 s old (Age: 50 from an upstream cache, Date 50 s ago): fresh for
	// 10 s more. The peer's clock runs two hours behind.
	copies[o.canon("/aged")] = peerTimes(peerCopy("", o.canon("/aged"), "peer copy",
		"Cache-Control", "max-age=60", "Date", date(50*time.Second), "Age", "50"), -2*time.Hour)
	r := e.get(o, "/aged", DebugHeader, "1")
	expect(t, "aged copy", r, 200, CachePeer, "peer copy")
	if r.header.Get("Age") != "50" {
		t.Errorf("Age of the peer's copy = %q, want 50", r.header.Get("Age"))
	}
	e.clock.Advance(5 * time.Second)
	r = e.get(o, "/aged")
	expect(t, "aged copy stored", r, 200, CacheHit, "peer copy")
	if r.header.Get("Age") != "55" {
		t.Errorf("Age of the stored peer copy = %q, want 55", r.header.Get("Age"))
	}
	e.clock.Advance(10 * time.Second) // 65 s old now
	expect(t, "aged copy expired", e.get(o, "/aged"), 200, CacheMiss, "origin copy")
	if n := o.hits.Load(); n != 1 {
		t.Fatalf("origin hits = %d, want 1 (only once the peer's copy expired)", n)
	}

	// The Age the peer states counts even though the Date looks recent: an
	// upstream cache may have held it since long before this Date.
	copies[o.canon("/old")] = peerCopy("", o.canon("/old"), "peer copy",
		"Cache-Control", "max-age=60", "Date", date(0), "Age", "70")
	r = e.get(o, "/old", DebugHeader, "trace")
	expect(t, "stale by Age", r, 200, CacheMiss, "origin copy")
	if tr := r.header.Get(TraceHeader); !strings.Contains(tr, "peer copy not used: stale") || !strings.HasSuffix(tr, "from origin") {
		t.Errorf("trace %q, want the stale peer copy skipped and the body from the origin", tr)
	}

	// Stale by Date alone (no Age header).
	copies[o.canon("/dated")] = peerCopy("", o.canon("/dated"), "peer copy",
		"Cache-Control", "max-age=60", "Date", date(2*time.Minute))
	expect(t, "stale by Date", e.get(o, "/dated"), 200, CacheMiss, "origin copy")

	// A visitor that wants the origin's answer does not get the peer's.
	copies[o.canon("/nocache")] = peerCopy("", o.canon("/nocache"), "peer copy",
		"Cache-Control", "max-age=60", "Date", date(0))
	expect(t, "no-cache request", e.get(o, "/nocache", "Cache-Control", "no-cache"), 200, CacheMiss, "origin copy")
	if n := o.hits.Load(); n != 4 {
		t.Errorf("origin hits = %d, want 4", n)
	}
}

// OpenForPeer states the copy's current age.
func TestOpenForPeerStatesAge(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("body", "Cache-Control", "max-age=600", "Age", "30"))
	e.get(o, "/x")
	e.clock.Advance(40 * time.Second)
	m, body, err := e.p.OpenForPeer(t.Context(), object.KeyOf(o.canon("/x")).String())
	if err != nil {
		t.Fatal(err)
	}
	body.Close()
	if got := m.Header.Get("Age"); got != "70" {
		t.Errorf("Age for a peer = %q, want 70 (30 upstream + 40 here)", got)
	}
	if _, _, body := e.stored(o.canon("/x")); !body {
		t.Fatal("copy not stored")
	}
	if m2, _, _ := e.stored(o.canon("/x")); m2.Header.Get("Age") != "30" {
		t.Errorf("stored Age changed to %q", m2.Header.Get("Age"))
	}
}

// brokenPeerBody yields head, then waits for kill and fails as a peer
// killed mid-transfer would. With stall set it blocks until ctx ends instead.
type brokenPeerBody struct {
	head  []byte
	kill  chan struct{}
	ctx   context.Context
	stall bool
	eof   bool // end with a clean io.EOF instead (a peer that sent too little)
}

func (b *brokenPeerBody) Read(p []byte) (int, error) {
	if len(b.head) > 0 {
		n := copy(p, b.head)
		b.head = b.head[n:]
		return n, nil
	}
	if b.stall {
		<-b.ctx.Done()
		return 0, b.ctx.Err()
	}
	<-b.kill
	if b.eof {
		return 0, io.EOF
	}
	return 0, errors.New("stream reset: peer went away")
}

func (b *brokenPeerBody) Close() error { return nil }

// selfHashingBody hashes a peer body as it is read, as p2p's does
// (object.HashingBody): the proxy then keeps its digest.
type selfHashingBody struct {
	io.ReadCloser
	sum hash.Hash
}

func (b *selfHashingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.sum.Write(p[:n])
	return n, err
}

func (b *selfHashingBody) Hash() hash.Hash { return object.CloneHash(b.sum) }

// A peer that dies in the middle of a transfer does not cost the visitor
// the response: the proxy continues the same body from the origin (a range
// request when the copy has a strong validator, else the whole body, whose
// first bytes must match what was sent), and stores the complete copy. When
// the origin now has another version, the visitor's connection breaks and
// nothing is stored.
func TestPeerTransferResumesFromOrigin(t *testing.T) {
	full := strings.Repeat("0123456789abcdef", 40<<10/16) // 40 KiB
	const cut = 20000
	other := strings.Repeat("X", len(full))
	type mode int
	const (
		serveContent mode = iota // honours Range and If-Range
		ignoreRange              // always the whole body
	)
	for _, tc := range []struct {
		name       string
		peerETag   string
		originETag string
		originBody string
		origin     mode
		stall, eof bool
		wantRange  bool
		wantOK     bool
	}{
		{name: "range request", peerETag: `"v1"`, originETag: `"v1"`, originBody: full, origin: serveContent, wantRange: true, wantOK: true},
		{name: "origin ignores range", peerETag: `"v1"`, originETag: `"v1"`, originBody: full, origin: ignoreRange, wantRange: true, wantOK: true},
		{name: "no validator: full refetch", originBody: full, origin: serveContent, wantOK: true},
		{name: "peer stalls", peerETag: `"v1"`, originETag: `"v1"`, originBody: full, origin: serveContent, stall: true, wantRange: true, wantOK: true},
		{name: "peer sends too little", peerETag: `"v1"`, originETag: `"v1"`, originBody: full, origin: serveContent, eof: true, wantRange: true, wantOK: true},
		{name: "origin has a new version", peerETag: `"v1"`, originETag: `"v2"`, originBody: other, origin: serveContent, wantRange: true},
		{name: "no validator, other bytes", originBody: other, origin: ignoreRange},
	} {
		for _, selfHash := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/body hashes itself=%v", tc.name, selfHash), func(t *testing.T) {
				peers := &scriptedPeers{}
				e := newEnv(t, func(o *Options) {
					o.Peers = peers
					if tc.stall {
						o.OriginTimeout = 300 * time.Millisecond
					}
				})
				var rangeHdr, ifRange string
				var mu sync.Mutex
				o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					rangeHdr, ifRange = r.Header.Get("Range"), r.Header.Get("If-Range")
					mu.Unlock()
					w.Header().Set("Cache-Control", "max-age=60")
					if tc.originETag != "" {
						w.Header().Set("ETag", tc.originETag)
					}
					if tc.origin == ignoreRange {
						w.Header().Set("Content-Length", strconv.Itoa(len(tc.originBody)))
						io.WriteString(w, tc.originBody)
						return
					}
					http.ServeContent(w, r, "", time.Time{}, strings.NewReader(tc.originBody))
				})
				kill := make(chan struct{})
				peers.fetch = func(ctx context.Context, key, canon string) (store.Meta, io.ReadCloser, error) {
					kv := []string{"Cache-Control", "max-age=60", "Date", e.clock.Now().Format(http.TimeFormat)}
					if tc.peerETag != "" {
						kv = append(kv, "ETag", tc.peerETag)
					}
					var body io.ReadCloser = &brokenPeerBody{head: []byte(full[:cut]), kill: kill, ctx: ctx, stall: tc.stall, eof: tc.eof}
					if selfHash {
						body = &selfHashingBody{ReadCloser: body, sum: object.NewBodyHash()}
					}
					return peerCopy(key, canon, full, kv...), body, nil
				}

				resp := e.do("GET", o.host(), "/big", nil, DebugHeader, "1")
				defer resp.Body.Close()
				head := make([]byte, cut)
				if _, err := io.ReadFull(resp.Body, head); err != nil || string(head) != full[:cut] {
					t.Fatalf("first %d bytes from the peer: %v", cut, err)
				}
				close(kill) // the visitor holds part of the body; now the peer dies
				rest, err := io.ReadAll(resp.Body)
				got := string(head) + string(rest)
				if resp.Header.Get("X-Coral-Cache") != CachePeer || resp.Header.Get("Content-Length") != strconv.Itoa(len(full)) {
					t.Errorf("header: %v", resp.Header)
				}
				mu.Lock()
				rh, ir := rangeHdr, ifRange
				mu.Unlock()
				if tc.wantRange && (rh != fmt.Sprintf("bytes=%d-", cut) || ir != tc.peerETag) {
					t.Errorf("origin saw Range %q If-Range %q, want bytes=%d- and %s", rh, ir, cut, tc.peerETag)
				}
				if !tc.wantRange && rh != "" {
					t.Errorf("origin saw Range %q without a validator to guard it", rh)
				}
				if n := o.hits.Load(); n != 1 {
					t.Errorf("origin hits = %d, want 1", n)
				}
				_, stored, ok := e.stored(o.canon("/big"))
				if !tc.wantOK {
					if err == nil {
						t.Fatalf("visitor got a complete-looking body mixing two versions (%d bytes)", len(got))
					}
					if ok {
						t.Error("a body mixing two versions was stored")
					}
					return
				}
				if err != nil || got != full {
					t.Fatalf("visitor: %d bytes, err %v; want the complete %d-byte body", len(got), err, len(full))
				}
				testkit.Eventually(t, 10*time.Second, "the copy to be stored", func() bool {
					_, stored, ok = e.stored(o.canon("/big"))
					return ok
				})
				if m, _, _ := e.stored(o.canon("/big")); stored != full || m.SHA256 != sha256.Sum256([]byte(full)) {
					t.Errorf("stored %d bytes, digest %x; want the complete body and its digest", len(stored), m.SHA256[:4])
				}
				expect(t, "then a hit", e.get(o, "/big"), 200, CacheHit, full)
				if n := e.p.Stats().PeerResumes; n != 1 {
					t.Errorf("PeerResumes = %d, want 1", n)
				}
				want := fmt.Sprintf("peer transfer broke off after %d bytes; resumed from origin at byte %d (%s); from peer, then origin from byte %d",
					cut, cut, map[bool]string{true: "range request", false: "full refetch"}[tc.origin == serveContent && tc.peerETag != ""], cut)
				testkit.Eventually(t, 10*time.Second, "the resume in the recent traces", func() bool {
					for _, tr := range e.p.RecentTraces() {
						if tr.Result == CachePeer && tr.Path == want {
							return true
						}
					}
					return false
				})
			})
		}
	}
}

// X-Coral-Trace shows the path when asked for, and only then; the last
// requests are kept for the status page, newest first.
func TestTraceHeader(t *testing.T) {
	peers := &scriptedPeers{}
	e := newEnv(t, func(o *Options) { o.Peers = peers })
	o := newOrigin(t, e.clock, static("origin copy", "Cache-Control", "max-age=60"))
	peers.fetch = func(ctx context.Context, key, canon string) (store.Meta, io.ReadCloser, error) {
		tr := TraceFrom(ctx)
		tr.Step("lookup L2:0 L1:1")
		if strings.HasSuffix(canon, "/p") {
			tr.Step("try peer1 L1 cached: ok")
			tr.Source("peer peer1 L1")
			m := peerCopy(key, canon, "peer copy", "Cache-Control", "max-age=60", "Date", e.clock.Now().Format(http.TimeFormat))
			return m, io.NopCloser(strings.NewReader("peer copy")), nil
		}
		return store.Meta{}, nil, store.ErrNotFound
	}
	for _, tc := range []struct {
		path, debug, cache, want string
	}{
		{"/o", "1", CacheMiss, "lookup L2:0 L1:1; from origin"},
		{"/o", "trace", CacheHit, "from cache"},
		{"/p", "1", CachePeer, "lookup L2:0 L1:1; try peer1 L1 cached: ok; from peer peer1 L1"},
		{"/p", "", CacheHit, ""},
	} {
		var kv []string
		if tc.debug != "" {
			kv = []string{DebugHeader, tc.debug}
		}
		before := len(e.p.RecentTraces())
		r := e.get(o, tc.path, kv...)
		expect(t, tc.path, r, 200, tc.cache, "*")
		// The summary is kept once the handler returns, which may be
		// just after the visitor has the whole response.
		testkit.Eventually(t, 10*time.Second, "the request's trace", func() bool { return len(e.p.RecentTraces()) == before+1 })
		if got := r.header.Get(TraceHeader); got != tc.want {
			t.Errorf("%s %s: %s = %q, want %q", tc.path, tc.cache, TraceHeader, got, tc.want)
		}
	}
	if got := o.lastRequest().Header.Get(DebugHeader); got != "" {
		t.Errorf("origin received %s: %q", DebugHeader, got)
	}
	// Error pages carry the trace too.
	o.Close()
	r := e.get(o, "/dead", DebugHeader, "1")
	if r.status != http.StatusBadGateway || !strings.Contains(r.header.Get(TraceHeader), "origin failed") {
		t.Errorf("error page: %d, trace %q", r.status, r.header.Get(TraceHeader))
	}
	testkit.Eventually(t, 10*time.Second, "the error's trace", func() bool { return len(e.p.RecentTraces()) == 5 })

	recent := e.p.RecentTraces()
	want := []string{"ERROR 502", CacheHit, CachePeer, CacheHit, CacheMiss}
	if len(recent) != len(want) {
		t.Fatalf("%d recent traces, want %d: %+v", len(recent), len(want), recent)
	}
	for i, w := range want {
		if recent[i].Result != w || !strings.HasPrefix(recent[i].URL, "http://") || recent[i].Time.IsZero() {
			t.Errorf("recent[%d] = %+v, want result %s", i, recent[i], w)
		}
	}
	if recent[2].Path != "lookup L2:0 L1:1; try peer1 L1 cached: ok; from peer peer1 L1" {
		t.Errorf("recent peer path %q", recent[2].Path)
	}
	for i := 0; i < 60; i++ {
		e.get(o, "/dead")
	}
	testkit.Eventually(t, 10*time.Second, "the ring to fill", func() bool { return len(e.p.RecentTraces()) == recentTraces })
	if r := e.p.RecentTraces()[recentTraces-1]; r.Result != "ERROR 502" {
		t.Errorf("oldest kept trace %+v, want one of the last requests", r)
	}
}

// A visitor that joins a fetch in progress sees that fetch's path.
func TestTraceCoalesced(t *testing.T) {
	e := newEnv(t, nil)
	started, release := make(chan struct{}), make(chan struct{})
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "a")
		http.NewResponseController(w).Flush()
		close(started)
		<-release
		io.WriteString(w, "b")
	})
	first := make(chan result, 1)
	go func() { first <- e.get(o, "/c") }()
	recv(t, "origin to start", started)
	second := make(chan result, 1)
	go func() { second <- e.get(o, "/c", DebugHeader, "1") }()
	testkit.Eventually(t, 10*time.Second, "the second visitor to join", func() bool { return e.p.Stats().Coalesced == 1 })
	close(release)
	recv(t, "first", first)
	r := recv(t, "second", second)
	expect(t, "joined", r, 200, CacheMiss, "ab")
	if got := r.header.Get(TraceHeader); got != "joined a fetch in progress; from origin" {
		t.Errorf("trace %q", got)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in           string
		first, total int64
		ok           bool
	}{
		{"bytes 10-19/20", 10, 20, true},
		{"bytes 0-0/1", 0, 1, true},
		{"bytes 10-19/*", 0, 0, false},
		{"bytes 10-9/20", 0, 0, false},
		{"bytes 10-19/19", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes -1-2/3", 0, 0, false},
		{"", 0, 0, false},
	} {
		first, total, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (first != tc.first || total != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d %d %v", tc.in, first, total, ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 10-19/20", "bytes */20", "bytes 1-/2", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, total, ok := parseContentRange(s)
		if ok && (first < 0 || total <= first) {
			t.Fatalf("%q: first %d total %d", s, first, total)
		}
	})
}
