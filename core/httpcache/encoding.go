package httpcache

import (
	"net/http"
	"strconv"
	"strings"
)

// NormalizeAcceptEncoding reduces a request's Accept-Encoding lines to what
// a shared cache stores variants for: "gzip" when the client accepts gzip
// (gzip, x-gzip or * with a non-zero q), "" otherwise. With two possible
// values, a response that varies on Accept-Encoding has at most two stored
// variants instead of one per browser's spelling of the header.
func NormalizeAcceptEncoding(lines []string) string {
	gzipQ, starQ := -1.0, -1.0 // -1: not listed
	for _, line := range lines {
		for _, item := range strings.Split(line, ",") {
			name, params, _ := strings.Cut(item, ";")
			q := qValue(params)
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ > 0 || (gzipQ < 0 && starQ > 0) {
		return "gzip"
	}
	return ""
}

// qValue reads the q parameter of a list item's parameters (";q=0.5");
// 1 when absent, 0 when malformed (a coding the client may not accept is
// not assumed acceptable).
func qValue(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 || q != q {
			return 0
		}
		return q
	}
	return 1
}

// EncodedWithoutVary reports whether a response has a content coding but
// does not say it varies on Accept-Encoding: stored as it is, it would go
// to clients that cannot decode it. Adding "Vary: Accept-Encoding" to such
// a response keeps each coding to the requests that asked for it.
func EncodedWithoutVary(h http.Header) bool {
	ce := strings.TrimSpace(h.Get("Content-Encoding"))
	if ce == "" || strings.EqualFold(ce, "identity") {
		return false
	}
	fields, star := VaryFields(h)
	if star {
		return false
	}
	for _, f := range fields {
		if f == "Accept-Encoding" {
			return false
		}
	}
	return true
}

// EncodingAcceptable reports whether a response's content coding may go to
// a request whose Accept-Encoding was normalised to acceptEncoding
// (NormalizeAcceptEncoding): no coding, or gzip to a request that accepts
// gzip.
func EncodingAcceptable(respHeader http.Header, acceptEncoding string) bool {
	switch strings.ToLower(strings.TrimSpace(respHeader.Get("Content-Encoding"))) {
	case "", "identity":
		return true
	case "gzip", "x-gzip":
		return acceptEncoding == "gzip"
	}
	return false
}
