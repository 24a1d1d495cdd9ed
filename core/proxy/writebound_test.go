package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/coralcdn/coral/test/testkit"
)

// boundEnv is a proxy served as a node serves it (FastListener) with a
// short write bound, on a store whose directory the test can look into,
// and a listener that reports each connection the server closes.
type boundEnv struct {
	t        *testing.T
	p        *Proxy
	st       *store.Store
	storeDir string
	srv      *httptest.Server
	gate     *testGate
	closed   chan string // the remote address of each connection closed
	origin   *origin
	body     []byte
}

const boundTestBody = 8 << 20 // several times the sockets' buffers

func newBoundEnv(t *testing.T, bound time.Duration, tweak func(*Options)) *boundEnv {
	t.Helper()
	clock := testkit.NewClock(testEpoch)
	e := &boundEnv{t: t, storeDir: t.TempDir(), gate: &testGate{}, closed: make(chan string, 64)}
	st, err := store.Open(e.storeDir, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	opts := Options{
		Zone: testZone, NodeToken: testToken, HeuristicTTL: 12 * time.Hour, AllowPrivateOrigins: true,
		StripCookies: true, OriginTimeout: 10 * time.Second, Now: clock.Now, Logger: quiet(), SpoolDir: t.TempDir(),
	}
	if tweak != nil {
		tweak(&opts)
	}
	if e.p, err = New(opts, st); err != nil {
		t.Fatal(err)
	}
	e.body = patterned(boundTestBody)
	e.origin = newOrigin(t, clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "application/octet-stream")
		if strings.HasPrefix(r.URL.Path, "/small") {
			_, _ = w.Write(e.body[:hotObjectMax])
			return
		}
		if strings.HasPrefix(r.URL.Path, "/chunked") {
			w.Header().Set("Cache-Control", "no-store") // streamed, never stored
			for b := e.body; len(b) > 0; b = b[min(len(b), 1<<20):] {
				_, _ = w.Write(b[:min(len(b), 1<<20)])
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(e.body)))
		_, _ = w.Write(e.body)
	})
	srv := httptest.NewUnstartedServer(e.p)
	tl := &closeListener{Listener: srv.Listener, closed: e.closed}
	srv.Listener, srv.Config.ConnState = e.p.FastListener(tl, e.gate,
		FastTimeouts{Idle: time.Minute, Header: 10 * time.Second, Write: bound})
	srv.Start()
	e.srv = srv
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = e.p.Close() })
	return e
}

// patterned is n bytes in which every offset reads differently nearby, so
// a lost or repeated stretch shows.
func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	return b
}

// closeListener reports the remote address of every accepted connection
// the server closes. Its connections are TCP connections still, so that
// net/http sends files with sendfile through them.
type closeListener struct {
	net.Listener
	closed chan<- string
}

func (l *closeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return &closeConn{TCPConn: c.(*net.TCPConn), closed: l.closed}, nil
}

type closeConn struct {
	*net.TCPConn
	closed chan<- string
	once   sync.Once
}

func (c *closeConn) Close() error {
	c.once.Do(func() { c.closed <- c.RemoteAddr().String() })
	return c.TCPConn.Close()
}

// request is the raw text of a GET (or method) of path on the origin.
func (e *boundEnv) request(method, path string, kv ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, e.origin.host())
	for i := 0; i < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", kv[i], kv[i+1])
	}
	b.WriteString("\r\n")
	return b.String()
}

// dial connects a visitor with a small receive buffer and sends reqs.
func (e *boundEnv) dial(reqs string) *net.TCPConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	_ = tc.SetReadBuffer(64 << 10)
	e.t.Cleanup(func() { tc.Close() })
	// In the background: a visitor that does not read may not be read
	// from either, once its answers fill the buffers.
	go func() { _, _ = io.WriteString(tc, reqs) }()
	return tc
}

// get fetches path through the proxy and checks it got want (a warm-up).
func (e *boundEnv) get(path string, want []byte) {
	e.t.Helper()
	c := e.dial(e.request(http.MethodGet, path, "Connection", "close"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, want) {
		e.t.Fatalf("GET %s: %d bytes, %v; want %d bytes", path, len(got), err, len(want))
	}
}

// warm fetches path twice: stored, then in the hot cache.
func (e *boundEnv) warm(path string) {
	e.t.Helper()
	want := e.body
	if path == "/small" {
		want = e.body[:hotObjectMax]
	}
	e.get(path, want)
	e.get(path, want)
}

// waitClosed waits for the server to close the connection of the visitor
// at local address addr.
func (e *boundEnv) waitClosed(addr string) {
	e.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case a := <-e.closed:
			if a == addr {
				return
			}
		case <-deadline:
			e.t.Fatalf("the server never closed the connection of a visitor that stopped reading")
		}
	}
}

// bodyFiles lists the store's body files.
func (e *boundEnv) bodyFiles() []string {
	var files []string
	_ = filepath.WalkDir(filepath.Join(e.storeDir, "bodies"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// pacedReader reads at most step bytes per tick: a slow visitor that
// keeps reading.
type pacedReader struct {
	r    io.Reader
	step int
	tick *time.Ticker
}

func (p *pacedReader) Read(b []byte) (int, error) {
	<-p.tick.C
	return p.r.Read(b[:min(len(b), p.step)])
}

// A visitor that reads the head of a large response and then stops
// reading is disconnected once no byte went out for the bound; one that
// keeps reading slowly, over several bounds, gets the whole body. Each
// route to the visitor: a stored body sent by sendfile (whole and a
// range), a body streamed as it arrives, and the fast path's pipelined
// hits.
func TestWriteBoundStalledVisitorIsDisconnected(t *testing.T) {
	const bound = time.Second
	cases := []struct {
		name string
		path string
		reqs func(e *boundEnv) string
		want func(e *boundEnv) [][]byte // the bodies of the responses, in order
		warm bool                       // fetched once first (stored)
		fast bool                       // answered by the fast path
		head bool                       // HEAD requests
	}{
		{name: "stored body, sendfile", path: "/big", warm: true,
			reqs: func(e *boundEnv) string { return e.request("GET", "/big") },
			want: func(e *boundEnv) [][]byte { return [][]byte{e.body} }},
		{name: "stored body, range", path: "/big", warm: true,
			reqs: func(e *boundEnv) string { return e.request("GET", "/big", "Range", "bytes=1000-") },
			want: func(e *boundEnv) [][]byte { return [][]byte{e.body[1000:]} }},
		{name: "streamed from the origin", path: "/chunked",
			reqs: func(e *boundEnv) string { return e.request("GET", "/chunked") },
			want: func(e *boundEnv) [][]byte { return [][]byte{e.body} }},
		{name: "stored body, pipelined HEADs", path: "/big", warm: true, head: true,
			reqs: func(e *boundEnv) string { return strings.Repeat(e.request("HEAD", "/big"), 30000) },
			want: func(e *boundEnv) [][]byte { return slicesRepeat(nil, 30000) }},
		{name: "fast path, pipelined hits", path: "/small", warm: true, fast: true,
			reqs: func(e *boundEnv) string { return strings.Repeat(e.request("GET", "/small"), 160) },
			want: func(e *boundEnv) [][]byte {
				return slicesRepeat(e.body[:hotObjectMax], 160)
			}},
	}
	for _, c := range cases {
		t.Run(c.name+", stalled", func(t *testing.T) {
			e := newBoundEnv(t, bound, nil)
			if c.warm {
				e.warm(c.path)
			}
			admits := e.gate.admits.Load()
			conn := e.dial(c.reqs(e))
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, requestFor(c.head))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode/100 != 2 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			// The visitor reads nothing more.
			e.waitClosed(conn.LocalAddr().String())
			if c.fast && e.gate.admits.Load() == admits {
				t.Fatal("the fast path answered nothing")
			}
			if n := countResponses(resp, br, requestFor(c.head)); n >= len(c.want(e)) {
				t.Fatalf("a disconnected visitor got all %d responses", n)
			}
		})
		t.Run(c.name+", slow but reading", func(t *testing.T) {
			e := newBoundEnv(t, bound, nil)
			if c.warm {
				e.warm(c.path)
			}
			conn := e.dial(c.reqs(e))
			tick := time.NewTicker(bound / 20)
			defer tick.Stop()
			// About 5 MiB/s: the body takes several bounds. (The server
			// sees progress only when the kernel frees a third or so of
			// the connection's send buffer, up to 4 MiB on loopback.)
			br := bufio.NewReaderSize(&pacedReader{r: conn, step: 256 << 10, tick: tick}, 256<<10)
			began := time.Now()
			for i, want := range c.want(e) {
				resp, err := http.ReadResponse(br, requestFor(c.head))
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				got, err := io.ReadAll(resp.Body)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("response %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
				}
			}
			t.Logf("%s: took %v with a bound of %v", c.name, time.Since(began), bound)
		})
	}
}

// countResponses counts the complete responses a visitor can read, the
// first of which (resp) it has the head of.
func countResponses(resp *http.Response, br *bufio.Reader, req *http.Request) int {
	n := 0
	for {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return n
		}
		n++
		var err error
		if resp, err = http.ReadResponse(br, req); err != nil {
			return n
		}
	}
}

func slicesRepeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// A stored body a stalled visitor was being sent stays on disk after the
// object is deleted only until the visitor is disconnected.
func TestWriteBoundReleasesStoredBody(t *testing.T) {
	e := newBoundEnv(t, 500*time.Millisecond, func(o *Options) { o.MemoryBytes = Off })
	e.get("/big", e.body)
	before := e.bodyFiles()
	if len(before) != 1 {
		t.Fatalf("store holds %d body files, want 1", len(before))
	}
	conn := e.dial(e.request("GET", "/big"))
	if _, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.st.Delete(object.KeyOf(e.origin.canon("/big")).String()); err != nil {
		t.Fatal(err)
	}
	if files := e.bodyFiles(); len(files) != 1 {
		t.Fatalf("the body being sent went from the disk already (%d files)", len(files))
	}
	e.waitClosed(conn.LocalAddr().String())
	deadline := time.Now().Add(10 * time.Second)
	for len(e.bodyFiles()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the deleted body stays on disk after its visitor was disconnected: %v", e.bodyFiles())
		}
		time.Sleep(10 * time.Millisecond) // polling the disk
	}
}

// BenchmarkVisitorWrites measures cache hits through the listener a node
// serves with (FastListener, so every write renews the write bound): a
// 1 KiB hit answered by the fast path, a 1 MiB hit sent by net/http with
// sendfile.
func BenchmarkVisitorWrites(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		b.Run(fmt.Sprint(size>>10, "KiB"), func(b *testing.B) {
			p := benchProxy(b)
			originSrv := httptest.NewServer(static(strings.Repeat("x", size), "Cache-Control", "max-age=3600",
				"Content-Type", "text/plain"))
			defer originSrv.Close()
			srv := httptest.NewUnstartedServer(p)
			srv.Listener, srv.Config.ConnState = p.FastListener(srv.Listener, &testGate{},
				FastTimeouts{Idle: time.Minute, Header: 10 * time.Second})
			srv.Start()
			defer srv.Close()
			host := "127.0.0.1." + originSrv.URL[strings.LastIndex(originSrv.URL, ":")+1:] + "." + testZone
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			// Three warm gets: stored, then hot.
			testkit.BenchGets(b, wholeGetter(&http.Client{Transport: tr}, srv.URL+"/b", host, size), size, 3)
		})
	}
}

// requestFor is what http.ReadResponse needs to know of the request: a
// HEAD's answers have no body.
func requestFor(head bool) *http.Request {
	if head {
		return &http.Request{Method: http.MethodHead}
	}
	return nil
}
