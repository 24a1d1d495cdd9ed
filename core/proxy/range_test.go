package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// randomBody is size reproducible bytes.
func randomBody(size int) string {
	b := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16)}).Read(b)
	return string(b)
}

// TestRangeOnCachedObject: single ranges of a cached object get 206 with the
// right bytes and Content-Range, unsatisfiable ones 416, If-Range decides
// between the range and the whole 200, several ranges get the whole 200.
// Run for an inline body (10 KiB) and a file body (100 KiB, sent with
// sendfile).
func TestRangeOnCachedObject(t *testing.T) {
	for _, size := range []int{10 << 10, 100 << 10} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			e := newEnv(t, nil)
			full := randomBody(size)
			lm := e.clock.Now().Add(-time.Hour).Format(http.TimeFormat)
			o := newOrigin(t, e.clock, static(full, "Cache-Control", "max-age=600", "Etag", `"v1"`,
				"Last-Modified", lm, "Accept-Ranges", "bytes", "Content-Type", "application/octet-stream"))
			expect(t, "miss", e.get(o, "/obj"), 200, CacheMiss, full)
			n := int64(size)
			tests := []struct {
				name   string
				kv     []string
				status int
				first  int64 // the expected body is full[first:last+1]
				last   int64
				crange string
			}{
				{"first 100", []string{"Range", "bytes=0-99"}, 206, 0, 99, fmt.Sprintf("bytes 0-99/%d", n)},
				{"last 100", []string{"Range", "bytes=-100"}, 206, n - 100, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-100, n-1, n)},
				{"from 5000", []string{"Range", "bytes=5000-"}, 206, 5000, n - 1, fmt.Sprintf("bytes 5000-%d/%d", n-1, n)},
				{"past the end cut", []string{"Range", fmt.Sprintf("bytes=%d-%d", n-10, n+500)}, 206, n - 10, n - 1, fmt.Sprintf("bytes %d-%d/%d", n-10, n-1, n)},
				{"unsatisfiable", []string{"Range", fmt.Sprintf("bytes=%d-", n+100)}, 416, 0, -1, fmt.Sprintf("bytes */%d", n)},
				{"if-range etag", []string{"Range", "bytes=0-9", "If-Range", `"v1"`}, 206, 0, 9, fmt.Sprintf("bytes 0-9/%d", n)},
				{"if-range other etag", []string{"Range", "bytes=0-9", "If-Range", `"v0"`}, 200, 0, n - 1, ""},
				{"if-range weak etag", []string{"Range", "bytes=0-9", "If-Range", `W/"v1"`}, 200, 0, n - 1, ""},
				{"if-range date", []string{"Range", "bytes=0-9", "If-Range", lm}, 206, 0, 9, fmt.Sprintf("bytes 0-9/%d", n)},
				{"if-range other date", []string{"Range", "bytes=0-9", "If-Range", e.clock.Now().Format(http.TimeFormat)}, 200, 0, n - 1, ""},
				{"several ranges", []string{"Range", "bytes=0-9,20-29"}, 200, 0, n - 1, ""},
				{"other unit", []string{"Range", "items=0-9"}, 200, 0, n - 1, ""},
				{"no range", nil, 200, 0, n - 1, ""},
			}
			for _, tt := range tests {
				r := e.get(o, "/obj", tt.kv...)
				expect(t, tt.name, r, tt.status, CacheHit, full[tt.first:tt.last+1])
				if got := r.header.Get("Content-Range"); got != tt.crange {
					t.Errorf("%s: Content-Range %q, want %q", tt.name, got, tt.crange)
				}
				if got, want := r.header.Get("Content-Length"), strconv.FormatInt(tt.last-tt.first+1, 10); got != want {
					t.Errorf("%s: Content-Length %q, want %q", tt.name, got, want)
				}
				if tt.status != 416 && r.header.Get("Accept-Ranges") != "bytes" {
					t.Errorf("%s: Accept-Ranges %q", tt.name, r.header.Get("Accept-Ranges"))
				}
			}
			head := e.fetch(http.MethodHead, o.host(), "/obj", "Range", "bytes=0-9")
			expect(t, "HEAD with Range", head, 200, CacheHit, "")
			if n := o.hits.Load(); n != 1 {
				t.Errorf("origin hits = %d, want 1", n)
			}
		})
	}
}
