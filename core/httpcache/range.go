package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RangeKind is how a cache answers a Range request (RFC 9110 §14).
type RangeKind int

// Range answers.
const (
	// RangeIgnore: send the whole response (no Range, not a single valid
	// byte range, or several ranges, which this cache answers in full).
	RangeIgnore RangeKind = iota
	// RangeServe: send 206 with the one range.
	RangeServe
	// RangeUnsatisfiable: send 416 with Content-Range: bytes */size.
	RangeUnsatisfiable
)

// ByteRange is one satisfiable range: Length bytes from Start.
type ByteRange struct {
	Start, Length int64
}

// ContentRange is the Content-Range value of r in a body of size bytes.
func (r ByteRange) ContentRange(size int64) string {
	return "bytes " + strconv.FormatInt(r.Start, 10) + "-" + strconv.FormatInt(r.Start+r.Length-1, 10) +
		"/" + strconv.FormatInt(size, 10)
}

// UnsatisfiedRange is the Content-Range value of a 416 for a body of size
// bytes.
func UnsatisfiedRange(size int64) string { return "bytes */" + strconv.FormatInt(size, 10) }

// ParseRange interprets a Range header value for a representation of size
// bytes. Only a single byte range is served: "bytes=a-b", "bytes=a-" and
// "bytes=-n"; a last position past the end is cut to the end. A range
// that starts at or past the end, or a suffix of 0 bytes, is
// unsatisfiable. Anything else (other units, bad syntax, several ranges)
// is ignored, as RFC 9110 §14.2 allows, and the whole body is sent.
func ParseRange(v string, size int64) (ByteRange, RangeKind) {
	unit, spec, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return ByteRange{}, RangeIgnore
	}
	if strings.Contains(spec, ",") {
		return ByteRange{}, RangeIgnore
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok {
		return ByteRange{}, RangeIgnore
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" { // suffix range
		n, ok := digits(last)
		switch {
		case !ok:
			return ByteRange{}, RangeIgnore
		case n == 0 || size == 0:
			return ByteRange{}, RangeUnsatisfiable
		}
		n = min(n, size)
		return ByteRange{Start: size - n, Length: n}, RangeServe
	}
	a, ok := digits(first)
	if !ok {
		return ByteRange{}, RangeIgnore
	}
	b := size - 1
	if last != "" {
		if b, ok = digits(last); !ok || b < a {
			return ByteRange{}, RangeIgnore
		}
	}
	if a >= size {
		return ByteRange{}, RangeUnsatisfiable
	}
	b = min(b, size-1)
	return ByteRange{Start: a, Length: b - a + 1}, RangeServe
}

// digits parses a non-empty run of decimal digits; values too large for an
// int64 are taken as the largest one (a position past any body).
func digits(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 1<<63 - 1, true
	}
	return n, true
}

// IfRangeMatches evaluates a request's If-Range against the response about
// to be sent (RFC 9110 §13.1.5): true (send the range) when there is no
// If-Range, or it is a strong entity tag equal to the response's strong
// ETag, or an HTTP-date equal to a Last-Modified that is strong (at least
// a second before the response's Date). Otherwise the whole response goes.
func IfRangeMatches(reqHeader, h http.Header) bool {
	v := strings.TrimSpace(reqHeader.Get("If-Range"))
	if v == "" {
		return true
	}
	if strings.HasPrefix(v, `"`) || strings.HasPrefix(v, "W/") {
		et := strings.TrimSpace(h.Get("Etag"))
		return !strings.HasPrefix(v, "W/") && !strings.HasPrefix(et, "W/") && len(v) >= 2 && v == et
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	if err != nil || !lm.Equal(t) {
		return false
	}
	d, err := http.ParseTime(h.Get("Date"))
	return err == nil && d.Sub(lm) >= time.Second
}
