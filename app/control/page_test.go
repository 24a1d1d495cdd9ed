package control

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The status page warns when the disk is (nearly) full and says how much
// is free; with room it shows no warning.
func TestStatusPageShowsDiskState(t *testing.T) {
	cases := []struct {
		name  string
		cache CacheStatus
		want  []string
		not   []string
	}{
		{"room", CacheStatus{FreeBytes: 5 << 30, MinFreeBytes: 1 << 30, Storing: true},
			[]string{"Free on the disk: 5.0 GiB", "are stored", "1.0 GiB"}, []string{"disk-warning", "passed through"}},
		{"nearly full", CacheStatus{FreeBytes: 900 << 20, MinFreeBytes: 1 << 30, DiskNote: "disk nearly full: passing through"},
			[]string{"disk-warning", "disk nearly full: passing through", "Free on the disk: 900 MiB", "passed through, not stored"}, nil},
		{"unknown free space", CacheStatus{FreeBytes: -1, MinFreeBytes: 1 << 30, Storing: true}, nil, []string{"Free on the disk", "disk-warning"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := NewServer(fixedAPI{Status{NodeID: "node-x", Cache: c.cache}}, "0123456789abcdef0123", nil, nil)
			srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
			go srv.Serve(ln)
			defer srv.Close()
			resp, err := http.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			page := string(b)
			for _, w := range c.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(page, w) {
					t.Errorf("page shows %q", w)
				}
			}
		})
	}
}
