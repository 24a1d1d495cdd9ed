package proxy

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestRevalidate304KeepsBodyFields: a 304 that names another encoding, type,
// range or MD5 does not relabel the stored body (RFC 9111 §3.2).
func TestRevalidate304KeepsBodyFields(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Etag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			for k, v := range map[string]string{"Cache-Control": "max-age=100", "Content-Encoding": "br",
				"Content-Type": "image/png", "Content-Range": "bytes 0-1/2", "Content-Md5": "AAAAAAAAAAAAAAAAAAAAAA=="} {
				w.Header().Set(k, v)
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Content-Encoding", "identity")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Md5", "xJ8lx0ynRFZT2VdbNZ4Uxw==")
		io.WriteString(w, "plain text body")
	})
	expect(t, "miss", e.get(o, "/enc"), 200, CacheMiss, "plain text body")
	e.clock.Advance(20 * time.Second)
	r := e.get(o, "/enc")
	expect(t, "revalidated", r, 200, CacheRevalidated, "plain text body")
	want := map[string]string{"Cache-Control": "max-age=100", "Content-Encoding": "identity", "Content-Type": "text/plain",
		"Content-Range": "", "Content-Md5": "xJ8lx0ynRFZT2VdbNZ4Uxw==", "Content-Length": "15"}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("after the 304, %s = %q, want %q", k, got, v)
		}
	}
}

// TestMustUnderstand: a status Coral does not understand is not stored
// under must-understand; a known one is, despite the no-store meant for
// older caches (RFC 9111 §5.2.2.3).
func TestMustUnderstand(t *testing.T) {
	tests := []struct {
		name   string
		status int
		cc     string
		second string // X-Coral-Cache of the second request
	}{
		{"unknown status", 599, "must-understand, max-age=600", CacheMiss},
		{"unknown status with no-store", 599, "must-understand, no-store, max-age=600", CacheMiss},
		{"unknown status without must-understand", 599, "max-age=600", CacheHit},
		{"known status with no-store", 200, "must-understand, no-store, max-age=600", CacheHit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			o := newOrigin(t, e.clock, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", tt.cc)
				w.WriteHeader(tt.status)
				io.WriteString(w, "answer")
			})
			expect(t, "first", e.get(o, "/mu"), tt.status, CacheMiss, "answer")
			expect(t, "second", e.get(o, "/mu"), tt.status, tt.second, "answer")
		})
	}
}

// TestSurrogateControl: Surrogate-Control addressed to Coral decides its
// storage and freshness and never reaches the visitor.
func TestSurrogateControl(t *testing.T) {
	tests := []struct {
		name, cc, sc string
		at20s, at70s string // X-Coral-Cache 20 s and 70 s after the miss
	}{
		{"max-age over cc no-store", "no-store", "max-age=60", CacheHit, CacheMiss},
		{"targeted max-age over cc max-age", "max-age=10", "max-age=5, max-age=60;coral", CacheHit, CacheMiss},
		{"no-store over cc max-age", "max-age=600", "no-store", CacheMiss, CacheMiss},
		{"other device ignored", "max-age=10", "max-age=600;varnish", CacheMiss, CacheMiss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			o := newOrigin(t, e.clock, static("body", "Cache-Control", tt.cc, "Surrogate-Control", tt.sc))
			for _, step := range []struct {
				after time.Duration
				want  string
			}{{0, CacheMiss}, {20 * time.Second, tt.at20s}, {50 * time.Second, tt.at70s}} {
				e.clock.Advance(step.after)
				r := e.get(o, "/sc")
				expect(t, step.want, r, 200, step.want, "body")
				if v := r.header.Values("Surrogate-Control"); len(v) > 0 {
					t.Errorf("visitor got Surrogate-Control %q", v)
				}
				if r.header.Get("Cache-Control") != tt.cc {
					t.Errorf("visitor got Cache-Control %q, want the origin's %q", r.header.Get("Cache-Control"), tt.cc)
				}
			}
		})
	}
}
