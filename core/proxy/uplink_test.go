package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// Every byte on a visitor's connection goes through the gate's budget for
// the site the handler named: heads (all of a HEAD or a 304), the fast
// path's answers, bodies sent with sendfile; under a cap, each piece is
// allowed before it is written.
func TestVisitorConnCountsAndShapesEveryByte(t *testing.T) {
	e := newEnv(t, nil)
	o, _ := hotObjects(t, e)
	host := o.host()
	for _, tc := range []struct {
		name, method, path string
		kv                 []string
		capped             bool
		status             int
	}{
		{"HEAD on the fast path", "HEAD", "/a", nil, false, 200},
		{"GET on the fast path", "GET", "/a", nil, false, 200},
		{"304 through net/http", "GET", "/a", []string{"If-None-Match", `"e"`}, false, 304},
		{"body from its file (sendfile)", "GET", "/big", nil, false, 200},
		{"ranged, from its file", "GET", "/big", []string{"Range", "bytes=10-40009"}, false, 206},
		{"HEAD on the fast path, capped", "HEAD", "/a", nil, true, 200},
		{"304 through net/http, capped", "GET", "/a", []string{"If-None-Match", `"e"`}, true, 304},
		{"body from its file, capped", "GET", "/big", nil, true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := &testGate{}
			gate.capped.Store(tc.capped)
			named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				SetSite(r.Context(), r.Host)
				e.p.ServeHTTP(w, r)
			})
			srv := fastServer(t, named, e.p, gate, FastTimeouts{Idle: time.Minute, Header: 10 * time.Second})
			t.Cleanup(srv.Close)
			r := exchange(t, srv.Listener.Addr().String(), head(tc.method, host, tc.path, tc.kv...), tc.method)[0]
			if r.resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.resp.StatusCode, tc.status)
			}
			wire := int64(len(r.raw))
			testkit.Eventually(t, 5*time.Second, "every byte counted for the site", func() bool {
				sent, _ := gate.counted(host)
				return sent == wire
			})
			_, allowed := gate.counted(host)
			switch {
			case tc.capped && (allowed != wire || gate.maxPiece > shapedPiece):
				t.Errorf("capped: %d of %d bytes allowed, largest piece %d", allowed, wire, gate.maxPiece)
			case !tc.capped && allowed != 0:
				t.Errorf("no cap, yet %d bytes waited for one", allowed)
			}
		})
	}
}

// stalledCap is an upload budget whose cap never grants: every wait ends
// only with its context (or when the test gives up: release), and says so.
type stalledCap struct {
	testGate
	waiting, release chan struct{}
	ended            chan error
}

func (g *stalledCap) Capped() bool { return true }
func (g *stalledCap) Allow(ctx context.Context, _ string, _ int) error {
	g.waiting <- struct{}{}
	select {
	case <-ctx.Done():
		g.ended <- ctx.Err()
		return ctx.Err()
	case <-g.release:
		return errors.New("released by the test")
	}
}

// A visitor who leaves while its response waits for the upload cap stops
// waiting: it does not keep its place in the cap's queue (and use up cap
// when its turn comes), nor its handler and connection until then.
func TestDepartedVisitorStopsWaitingForTheCap(t *testing.T) {
	gate := &stalledCap{waiting: make(chan struct{}, 1), release: make(chan struct{}), ended: make(chan error, 1)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetSite(r.Context(), "site")
		w.Write(make([]byte, 100))
	})
	p := &Proxy{}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener, srv.Config.ConnState = p.FastListener(srv.Listener, gate, FastTimeouts{})
	srv.Config.ConnContext = ConnContext
	srv.Start()
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	<-gate.waiting
	c.Close()
	select {
	case <-gate.ended:
	case <-time.After(10 * time.Second):
		close(gate.release) // let the server close
		t.Fatal("the visitor left 10 s ago and its response still waits for the cap")
	}
}
