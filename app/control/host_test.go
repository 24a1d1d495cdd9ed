package control

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

type fixedAPI struct{ st Status }

func (a fixedAPI) Status(context.Context) (Status, error) { return a.st, nil }

// serveControl runs a control Server on a real listener at addr and returns
// the address it got.
func serveControl(t *testing.T, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(fixedAPI{Status{NodeID: "node-x", Zone: "localhost"}}, "0123456789abcdef0123", nil, nil)
	s.AllowHost(addr)
	s.AllowHost(ln.Addr().String())
	s.Handle("POST /api/change", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A web page that rebinds its own name to 127.0.0.1 sends its own name as
// Host: the control listener must not answer it.
func TestControlRefusesForeignHost(t *testing.T) {
	addr := serveControl(t, "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	cases := []struct {
		host string
		want int
	}{
		{addr, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST.:" + port, http.StatusOK},
		{"localhost", http.StatusOK},
		{"coral.localhost:" + port, http.StatusOK},
		{"127.0.0.2:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"evil.example:" + port, http.StatusMisdirectedRequest},
		{"evil.example", http.StatusMisdirectedRequest},
		{"127.0.0.1.evil.example:" + port, http.StatusMisdirectedRequest},
		{"localhost.evil.example", http.StatusMisdirectedRequest},
		{"192.0.2.1:" + port, http.StatusMisdirectedRequest},
		{"", http.StatusMisdirectedRequest},
	}
	for _, path := range []string{"/", "/api/status"} {
		for _, c := range cases {
			resp := send(t, http.MethodGet, addr, path, c.host)
			if resp.status != c.want {
				t.Errorf("GET %s with Host %q: %d, want %d", path, c.host, resp.status, c.want)
			}
			if c.want != http.StatusOK && strings.Contains(resp.body, "node-x") {
				t.Errorf("GET %s with Host %q leaked the status: %q", path, c.host, resp.body)
			}
		}
	}
	// Changes are refused for a foreign Host before the token is even looked at.
	if r := send(t, http.MethodPost, addr, "/api/change", "evil.example"); r.status != http.StatusMisdirectedRequest {
		t.Errorf("POST with a foreign Host: %d", r.status)
	}
	if r := send(t, http.MethodPost, addr, "/api/change", addr); r.status != http.StatusUnauthorized {
		t.Errorf("POST without token: %d", r.status)
	}
}

// A listener on every address answers to this machine's own addresses,
// but still not to names.
func TestControlOnAllAddressesAnswersOwnAddresses(t *testing.T) {
	addr := serveControl(t, "0.0.0.0:0")
	_, port, _ := net.SplitHostPort(addr)
	if r := send(t, http.MethodGet, "127.0.0.1:"+port, "/api/status", "127.0.0.1:"+port); r.status != http.StatusOK {
		t.Errorf("own loopback address: %d", r.status)
	}
	if own := firstNonLoopback(); own != "" {
		if r := send(t, http.MethodGet, "127.0.0.1:"+port, "/api/status", net.JoinHostPort(own, port)); r.status != http.StatusOK {
			t.Errorf("own interface address %s: %d", own, r.status)
		}
	}
	if r := send(t, http.MethodGet, "127.0.0.1:"+port, "/api/status", "rebind.example:"+port); r.status != http.StatusMisdirectedRequest {
		t.Errorf("foreign name: %d", r.status)
	}
}

func firstNonLoopback() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

type answer struct {
	status int
	body   string
}

// send writes a raw HTTP/1.1 request, so any Host (even none) goes out as is.
func send(t *testing.T, method, addr, path, host string) answer {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s Host %q: %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b)}
}

// FuzzHostGuard: any Host header gets an answer without a panic, and one
// that is let through names this machine.
func FuzzHostGuard(f *testing.F) {
	for _, h := range []string{"localhost:8081", "127.0.0.1", "[::1]:8081", "evil.example", "", "[", "a:b:c", "LOCALHOST.", "x.localhost", "[::ffff:127.0.0.1]:1", "127.1", "0x7f.0.0.1"} {
		f.Add(h)
	}
	g := &hostGuard{}
	g.names = map[string]bool{"192.0.2.7": true}
	f.Fuzz(func(t *testing.T, host string) {
		if !g.allowed(host) {
			return
		}
		h := canonicalHost(host)
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = canonicalHost(hh)
		}
		ip, err := netip.ParseAddr(h)
		if h != "localhost" && !strings.HasSuffix(h, ".localhost") && h != "192.0.2.7" && (err != nil || !ip.IsLoopback()) {
			t.Fatalf("Host %q let through as %q", host, h)
		}
	})
}
