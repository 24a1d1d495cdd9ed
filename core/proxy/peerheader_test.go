package proxy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/store"
)

// A peer's header arrives outside HTTP's parsing, in any case: its
// "content-length", "transfer-encoding", "connection" and "set-cookie"
// are the same fields as the canonical ones and get the same treatment.
// Otherwise visitors get two framings in one response (a smuggling and
// desync risk for anything in front), from the peer copy, the store and
// the hot cache alike, and the copy passes on to other peers.
func TestPeerHeaderNamesInAnyCase(t *testing.T) {
	peers := &scriptedPeers{}
	e := newEnv(t, func(o *Options) { o.Peers = peers })
	o := newOrigin(t, e.clock, static("origin copy", "Cache-Control", "max-age=600"))
	const body = "the peer's copy"
	peers.fetch = func(_ context.Context, key, canon string) (store.Meta, io.ReadCloser, error) {
		m := store.Meta{Key: key, URL: canon, Status: 200, Size: int64(len(body)), SHA256: sha256.Sum256([]byte(body)),
			Header: http.Header{ // as decoded from the wire: names as the peer wrote them
				"cache-control":     {"max-age=600"},
				"content-length":    {"3"},
				"transfer-encoding": {"chunked"},
				"connection":        {"keep-alive, x-hop"},
				"x-hop":             {"hop-by-hop, named in connection"},
				"x-peer":            {"kept"},
				"bad name":          {"dropped"},
				"x-bad-value":       {"a\r\nInjected: yes"},
			}}
		if strings.HasSuffix(canon, "/cookie") {
			m.Header["set-cookie"] = []string{"session=peer"}
		}
		return m, io.NopCloser(strings.NewReader(body)), nil
	}
	for _, want := range []string{CachePeer, CacheHit, CacheHit} {
		head, got := rawGet(t, e.srv.Listener.Addr().String(), o.host(), "/page")
		if got != body {
			t.Fatalf("%s: body %q, want %q", want, got, body)
		}
		fields := map[string][]string{}
		for _, line := range strings.Split(head, "\r\n")[1:] {
			name, value, _ := strings.Cut(line, ":")
			fields[strings.ToLower(name)] = append(fields[strings.ToLower(name)], strings.TrimSpace(value))
		}
		if cl := fields["content-length"]; len(cl) != 1 || cl[0] != fmt.Sprint(len(body)) {
			t.Errorf("%s: Content-Length fields %q, want one, %d", want, cl, len(body))
		}
		for _, gone := range []string{"transfer-encoding", "x-hop", "bad name", "x-bad-value", "injected"} {
			if v, ok := fields[gone]; ok {
				t.Errorf("%s: %s: %q reached the visitor", want, gone, v)
			}
		}
		if fields["x-peer"] == nil {
			t.Errorf("%s: the peer's own field X-Peer was lost", want)
		}
		if c := fields["x-coral-cache"]; len(c) != 1 || c[0] != want {
			t.Errorf("X-Coral-Cache %q, want %s", c, want)
		}
	}
	// A copy that sets a cookie is personal: the cookie is not passed on
	// and the copy is not kept (strip_cookies, the default).
	for range 2 {
		head, _ := rawGet(t, e.srv.Listener.Addr().String(), o.host(), "/cookie")
		if lower := strings.ToLower(head); strings.Contains(lower, "set-cookie") || !strings.Contains(lower, "x-coral-cache: peer") {
			t.Errorf("a peer copy setting a cookie: %q, want no Set-Cookie, not kept (PEER every time)", head)
		}
	}
}

// rawGet sends a GET for path with Host host and returns the response's
// head (status line and fields, as sent) and body.
func rawGet(t *testing.T, addr, host, path string) (head, body string) {
	t.Helper()
	r := exchange(t, addr, fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host), http.MethodGet)[0]
	head, _, _ = strings.Cut(string(r.raw), "\r\n\r\n")
	return head, r.body
}
