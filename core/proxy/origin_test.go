package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
)

// Every address that is not global is refused, and the visitor is told
// what kind it is (ipclass's word; core/ipclass tests every block).
func TestRefusalNamesTheClass(t *testing.T) {
	none := []net.Addr{}
	g := testGuard(t, &none)
	tests := map[string]string{
		"127.0.0.1":          "a loopback address",
		"::ffff:127.0.0.1":   "a loopback address",
		"10.1.2.3":           "a private address",
		"fd00::1":            "a private address",
		"169.254.169.254":    "a link-local address",
		"ff02::1":            "a multicast address",
		"0.0.0.0":            "an unspecified address",
		"100.64.0.1":         "a carrier-grade NAT address",
		"240.0.0.1":          "a reserved address",
		"255.255.255.255":    "a broadcast address",
		"198.18.0.1":         "a special-purpose address",
		"fec0::1":            "a special-purpose address",
		"64:ff9b::a00:1":     "a private address", // NAT64 of 10.0.0.1
		"93.184.215.14":      "",
		"2606:2800::1":       "",
		"64:ff9b::5db8:d70e": "",
	}
	for addr, want := range tests {
		err := g.checkAddr(netip.MustParseAddr(addr))
		var blocked *blockedAddrError
		got := ""
		if errors.As(err, &blocked) {
			got = blocked.what
		}
		if got != want || (err != nil) != (want != "") {
			t.Errorf("checkAddr(%s) = %v, want %q", addr, err, want)
		}
	}
}

func defaultPorts(t *testing.T) coralurl.PortSet {
	t.Helper()
	ports, err := coralurl.ParsePorts(coralurl.DefaultOriginPorts)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// The dialer refuses private addresses itself, whatever the name resolved
// to, and says how a LAN node can allow them; the refusal is not a dead
// origin.
func TestTransportRefusesPrivateDial(t *testing.T) {
	tr := newOriginTransport(5*time.Second, newOriginGuard(defaultPorts(t), false, nil), nil)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://localhost:8080/", nil)
	_, err := tr.RoundTrip(req)
	var blocked *blockedAddrError
	if !errors.As(err, &blocked) {
		t.Fatalf("dial to localhost: %v, want a blockedAddrError", err)
	}
	f := classify(err)
	if f.status != http.StatusForbidden || f.negative || !strings.Contains(f.text, "allow_private_origins") {
		t.Errorf("classify: %+v", f)
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name     string
		err      error
		status   int
		negative bool
	}{
		{"dns", fmt.Errorf("x: %w", &net.DNSError{Err: "no such host", Name: "nx.invalid", IsNotFound: true}), 502, true},
		{"refused", refused, 502, true},
		{"unreachable", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, 502, true},
		{"timeout", &net.OpError{Op: "dial", Err: timeoutErr{}}, 502, true},
		{"deadline", context.DeadlineExceeded, 502, true},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, 502, true},
		{"not http", errors.New("malformed HTTP response"), 502, true},
		{"blocked address", &blockedAddrError{addr: netip.MustParseAddr("192.0.2.1"), what: ownNetwork, why: "own"}, 403, false},
		{"blocked port", &blockedPortError{port: 22}, 403, false},
	}
	unreachable := classify(refused)
	for _, tt := range tests {
		f := classify(tt.err)
		if tt.status == 502 && tt.name != "dns" && f != unreachable {
			t.Errorf("%s: classify = %+v, want the same answer as a closed port %+v", tt.name, f, unreachable)
		}
		if f.status != tt.status || f.negative != tt.negative || f.title == "" || f.text == "" {
			t.Errorf("%s: classify = %+v, want status %d negative %v", tt.name, f, tt.status, tt.negative)
		}
	}
}

func TestNegativeCacheExpiry(t *testing.T) {
	c := newNegativeCache()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c.put("http://a", originFailure{status: 502}, now.Add(time.Minute))
	if _, ok := c.get("http://a", now.Add(59*time.Second)); !ok {
		t.Error("entry missing before expiry")
	}
	if _, ok := c.get("http://a", now.Add(time.Minute)); ok {
		t.Error("entry alive at expiry")
	}
	for i := 0; i < negativeCacheMax+10; i++ {
		c.put(fmt.Sprint(i), originFailure{}, now.Add(time.Minute))
	}
	if c.m.Len() > negativeCacheMax {
		t.Errorf("negative cache grew to %d entries", c.m.Len())
	}
}
