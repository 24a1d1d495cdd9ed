package proxy

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseFastRequest reads the request heads in testdata/fastpath: the
// fast path answers only plain GET and HEAD requests it fully understands,
// hands well-formed bodyless ones to net/http one by one, and everything
// else to net/http for good.
func TestParseFastRequest(t *testing.T) {
	const host = "a.com.coral.test"
	tests := []struct {
		file   string
		want   fastVerdict
		head   bool
		target string
	}{
		{"get.http", fastPlain, false, "/x?y=1"},
		{"head.http", fastPlain, true, "/x"},
		{"keepalive.http", fastPlain, false, "/"},
		{"pipelined.http", fastPlain, false, "/1"},
		{"utf8-value.http", fastPlain, false, "/x"},
		{"escapes.http", fastPlain, false, "/a%20b?q=%C3%A9"},
		{"range.http", fastOther, false, "/x"},
		{"conditional.http", fastOther, false, "/x"},
		{"nocache.http", fastOther, false, "/x"},
		{"via.http", fastOther, false, "/x"},
		{"close.http", fastOther, false, "/x"},
		{"debug.http", fastOther, false, "/x"},
		{"incomplete.http", fastIncomplete, false, ""},
		{"incomplete-cr.http", fastIncomplete, false, ""},
		{"post.http", fastUnusual, false, ""},
		{"get-body.http", fastUnusual, false, ""},
		{"chunked.http", fastUnusual, false, ""},
		{"http10.http", fastUnusual, false, ""},
		{"absolute.http", fastUnusual, false, ""},
		{"asterisk.http", fastUnusual, false, ""},
		{"no-host.http", fastUnusual, false, ""},
		{"two-hosts.http", fastUnusual, false, ""},
		{"bad-host.http", fastUnusual, false, ""},
		{"bare-lf.http", fastUnusual, false, ""},
		{"bare-lf-late.http", fastUnusual, false, ""},
		{"folded.http", fastUnusual, false, ""},
		{"space-before-colon.http", fastUnusual, false, ""},
		{"nul.http", fastUnusual, false, ""},
		{"upgrade.http", fastUnusual, false, ""},
		{"expect.http", fastUnusual, false, ""},
		{"two-spaces.http", fastUnusual, false, ""},
		{"leading-crlf.http", fastUnusual, false, ""},
		{"lowercase-method.http", fastUnusual, false, ""},
		{"utf8-target.http", fastUnusual, false, ""},
		{"fragment.http", fastUnusual, false, ""},
		{"bad-escape.http", fastUnusual, false, ""},
		{"too-long.http", fastUnusual, false, ""},
		{"many-fields.http", fastUnusual, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "fastpath", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			req, n, v := parseFastRequest(b)
			if v != tt.want {
				t.Fatalf("verdict %d, want %d", v, tt.want)
			}
			if v != fastPlain && v != fastOther {
				return
			}
			if string(req.host) != host || string(req.target) != tt.target || req.head != tt.head {
				t.Errorf("got host %q target %q head %v, want %q %q %v", req.host, req.target, req.head, host, tt.target, tt.head)
			}
			if !bytes.HasSuffix(b[:n], []byte("\r\n\r\n")) || bytes.Contains(b[:n-2], []byte("\r\n\r\n")) {
				t.Errorf("head length %d does not end at the first empty line", n)
			}
		})
	}
}

// FuzzFastRequest feeds the fast path's parser what a visitor may send.
// It never panics; whatever it answers or hands over request by request is
// a request net/http reads the same way: the same method, target and Host,
// no body, and a head of the same length (so both agree where the next
// request starts); a plain one is one the hot path of ServeHTTP answers.
func FuzzFastRequest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fastpath", "*.http"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, v := parseFastRequest(b)
		if v != fastPlain && v != fastOther {
			if n != 0 {
				t.Fatalf("verdict %d with a head length %d", v, n)
			}
			return
		}
		if n <= 0 || n > len(b) || n > fastHeadMax {
			t.Fatalf("head length %d of %d bytes", n, len(b))
		}
		br := bufio.NewReader(bytes.NewReader(b[:n]))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("net/http refuses a head the fast path took (%d): %v\n%q", v, err, b[:n])
		}
		method := http.MethodGet
		if req.head {
			method = http.MethodHead
		}
		if r.Method != method || r.RequestURI != string(req.target) || r.Host != string(req.host) {
			t.Fatalf("net/http reads %s %q Host %q, the fast path %s %q Host %q", r.Method, r.RequestURI, r.Host, method, req.target, req.host)
		}
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || br.Buffered() != 0 {
			t.Fatalf("net/http sees a body or more bytes (%d, %v, %d left)", r.ContentLength, r.TransferEncoding, br.Buffered())
		}
		if v == fastPlain && (!plainRequest(r) || r.Header.Get("Via") != "" || strings.Contains(strings.ToLower(r.Header.Get("Connection")), "close")) {
			t.Fatalf("a plain head the hot path would not answer: %q", b[:n])
		}
	})
}
