package httpcache

import (
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// hopByHop are connection-specific fields (RFC 9110 §7.6.1) that a proxy
// neither forwards nor stores. Proxy-Connection and Keep-Alive are not
// standard but are sent by old clients.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// CleanHeader is a header another cache sent outside HTTP's own parsing (a
// peer's copy, decoded from its message): field names in canonical form,
// so every later check (hop-by-hop, Content-Length, Cache-Control, Vary,
// Set-Cookie) sees them, and fields whose name or values are not valid
// HTTP dropped. A peer's "content-length" would otherwise slip past the
// checks and be served beside the proxy's own Content-Length: a response
// with two framings.
func CleanHeader(in map[string][]string) http.Header {
	out := make(http.Header, len(in))
	for name, values := range in {
		if !httpguts.ValidHeaderFieldName(name) {
			continue
		}
		key := textproto.CanonicalMIMEHeaderKey(name)
		for _, v := range values {
			if httpguts.ValidHeaderFieldValue(v) {
				out[key] = append(out[key], v)
			}
		}
	}
	return out
}

// RemoveHopByHop deletes hop-by-hop fields from h, including every field
// named in Connection.
func RemoveHopByHop(h http.Header) {
	for _, line := range h.Values("Connection") {
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, f := range hopByHop {
		h.Del(f)
	}
}

// StripQualified removes the fields named by qualified private="…" and
// no-cache="…" directives, so that storing the rest is safe.
func StripQualified(h http.Header) {
	cc := ParseCacheControl(h.Values("Cache-Control"))
	for _, f := range cc.PrivateFields {
		h.Del(f)
	}
	for _, f := range cc.NoCacheFields {
		h.Del(f)
	}
}

// VaryFields returns the request fields a response varies on (canonical,
// sorted, de-duplicated) and whether it has "Vary: *", which no request ever
// matches (RFC 9111 §4.1).
func VaryFields(h http.Header) (fields []string, star bool) {
	seen := map[string]bool{}
	for _, line := range h.Values("Vary") {
		for _, f := range strings.Split(line, ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, true
			}
			f = http.CanonicalHeaderKey(f)
			if !seen[f] {
				seen[f] = true
				fields = append(fields, f)
			}
		}
	}
	sort.Strings(fields)
	return fields, false
}

// VaryValues is the normalised form of a request's values for the given
// fields: the secondary cache key. Two requests select the same stored
// response exactly when their VaryValues are equal. Whitespace around commas
// and repeated field lines are normalised (RFC 9111 §4.1); an absent field is
// distinct from an empty one.
func VaryValues(fields []string, reqHeader http.Header) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteString(strings.ToLower(f))
		vals, ok := reqHeader[http.CanonicalHeaderKey(f)]
		if !ok {
			b.WriteString("!\n")
			continue
		}
		b.WriteByte(':')
		first := true
		for _, v := range vals {
			for _, part := range strings.Split(v, ",") {
				part = strings.Join(strings.Fields(part), " ")
				if part == "" {
					continue
				}
				if !first {
					b.WriteByte(',')
				}
				first = false
				b.WriteString(part)
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// RevalidationHeaders returns the conditional fields that revalidate a stored
// response (RFC 9111 §4.3.1): If-None-Match with its ETag and
// If-Modified-Since with its Last-Modified. ok is false when the response has
// no validator, in which case only an unconditional request will do.
func RevalidationHeaders(stored http.Header) (h http.Header, ok bool) {
	h = http.Header{}
	if et := stored.Get("Etag"); et != "" {
		h.Set("If-None-Match", et)
	}
	if lm := stored.Get("Last-Modified"); lm != "" {
		if _, err := http.ParseTime(lm); err == nil {
			h.Set("If-Modified-Since", lm)
		}
	}
	return h, len(h) > 0
}

// Matches304 reports whether a 304 response applies to the stored response
// (RFC 9111 §4.3.4): same entity tag if the 304 carries one, else same
// Last-Modified if it carries one, else yes.
func Matches304(stored, resp http.Header) bool {
	if et := resp.Get("Etag"); et != "" {
		return weakEqual(et, stored.Get("Etag"))
	}
	if lm := resp.Get("Last-Modified"); lm != "" {
		a, err1 := http.ParseTime(lm)
		b, err2 := http.ParseTime(stored.Get("Last-Modified"))
		return err1 == nil && err2 == nil && a.Equal(b)
	}
	return true
}

// bodyBound are the fields that describe the stored bytes themselves: a 304
// never changes them (RFC 9111 §3.2 and §4.3.4), since the body it keeps is
// the one they describe, and a stored body relabelled with another encoding
// or type would be served corrupt.
var bodyBound = []string{
	"Content-Length", "Content-Encoding", "Content-Range", "Content-Md5", "Content-Type",
	"Digest", "Content-Digest", "Repr-Digest",
}

// Merge304 updates a stored header with the fields of a 304 response
// (RFC 9111 §3.2): every field present in the 304 replaces the stored one,
// except hop-by-hop fields and the fields bound to the stored body
// (Content-Length, Content-Encoding, Content-Range, Content-MD5,
// Content-Type and digests). resp is not modified.
func Merge304(stored, resp http.Header) {
	fresh := resp.Clone()
	RemoveHopByHop(fresh)
	for _, f := range bodyBound {
		fresh.Del(f)
	}
	for k, v := range fresh {
		stored[k] = v
	}
}

// NotModified evaluates a visitor's If-None-Match / If-Modified-Since against
// the response the cache is about to send (RFC 9110 §13.2.2): true means
// answer 304 instead. Only 200 responses are candidates. If-None-Match takes
// precedence and uses the weak comparison; If-Modified-Since compares with
// Last-Modified, or Date when there is none.
func NotModified(reqHeader http.Header, status int, h http.Header) bool {
	if status != http.StatusOK {
		return false
	}
	if inm := reqHeader.Values("If-None-Match"); len(inm) > 0 {
		et := h.Get("Etag")
		for _, line := range inm {
			for _, tag := range splitETags(line) {
				if tag == "*" || (et != "" && weakEqual(tag, et)) {
					return true
				}
			}
		}
		return false
	}
	ims, err := http.ParseTime(reqHeader.Get("If-Modified-Since"))
	if err != nil {
		return false
	}
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	if err != nil {
		if lm, err = http.ParseTime(h.Get("Date")); err != nil {
			return false
		}
	}
	return !lm.Truncate(time.Second).After(ims)
}

// notModifiedFields are the stored fields a 304 carries (RFC 9110 §15.4.5).
var notModifiedFields = []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Vary", "Last-Modified"}

// NotModifiedHeader is the header of a 304 built from a stored response.
func NotModifiedHeader(h http.Header) http.Header {
	out := http.Header{}
	for _, f := range notModifiedFields {
		if v, ok := h[f]; ok {
			out[f] = v
		}
	}
	return out
}

// splitETags splits an If-None-Match value; entity tags may contain commas
// inside their quotes.
func splitETags(s string) []string {
	var out []string
	for _, t := range splitList(s) {
		out = append(out, strings.TrimSpace(t))
	}
	return out
}

// weakEqual compares entity tags by their opaque part, ignoring W/
// (RFC 9110 §8.8.3.2).
func weakEqual(a, b string) bool {
	a = strings.TrimPrefix(strings.TrimSpace(a), "W/")
	b = strings.TrimPrefix(strings.TrimSpace(b), "W/")
	return a != "" && a == b
}
