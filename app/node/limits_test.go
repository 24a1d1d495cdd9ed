package node

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The proxy faces untrusted visitors: oversized request headers are
// refused with 431, and a client that never finishes its headers loses
// its connection instead of holding it open.
func TestVisitorLimits(t *testing.T) {
	n, err := New(testConfig(t), Options{Version: "test", Logger: quiet, HeaderTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("GET", "http://"+n.Addrs().HTTP+"/", nil)
	req.Host = "example.com.localhost"
	req.Header.Set("X-Padding", strings.Repeat("a", 2*maxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("oversized headers: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized headers: status %d, want 431", resp.StatusCode)
	}

	c, err := net.Dial("tcp", n.Addrs().HTTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: example.com.localhost\r\n"); err != nil {
		t.Fatal(err)
	}
	// Far beyond the header timeout: only a server that never closes
	// reaches this deadline.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slow client still connected after 30s (header timeout 200ms)")
	}
}
