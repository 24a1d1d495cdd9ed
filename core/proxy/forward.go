package proxy

import (
	"net"
	"net/http"
	"strings"

	"github.com/coralcdn/coral/core/httpcache"
)

// What of a visitor's request reaches the origin. A response fetched for
// one visitor is stored and served to everyone, so a request field that
// the origin may reflect into the response, but that is not part of the
// cache key, would let one visitor poison the copy everyone gets (web
// cache poisoning). Fetches for the cache therefore forward only the fields
// below: ones a shared cache can honour, because a response that depends on
// them says so with Vary (Accept*, Origin), or that keep the response out
// of the cache (Authorization, Cookie), or that carry no content (Cache-
// Control, Pragma, User-Agent, Referer). Every method drops the fields that
// name another host, scheme, path or client address than the real ones.

// cachedFetchFields are forwarded on GET and HEAD (conditional and range
// fields are then replaced by the proxy's own).
var cachedFetchFields = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Authorization": true,
	"Cache-Control": true, "Cookie": true, "Origin": true, "Pragma": true, "Referer": true,
	"User-Agent": true, "Via": true, "X-Forwarded-For": true,
	"If-None-Match": true, "If-Modified-Since": true, "If-Match": true, "If-Unmodified-Since": true,
	"If-Range": true, "Range": true,
}

// reflectedFields are never forwarded: origins and their frameworks take
// them as the request's host, scheme, URL, method or client, and build
// links, redirects or whole pages from them.
var reflectedFields = []string{
	"X-Forwarded-Host", "X-Forwarded-Server", "X-Forwarded-Proto", "X-Forwarded-Port",
	"X-Forwarded-Scheme", "X-Forwarded-Prefix", "X-Forwarded-Ssl", "Front-End-Https", "Forwarded",
	"X-Original-Url", "X-Original-Host", "X-Rewrite-Url", "X-Host", "X-Http-Host-Override",
	"X-Http-Method-Override", "X-Http-Method", "X-Method-Override",
	"X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Client-Ip", "X-Cluster-Client-Ip",
	DebugHeader,
}

// prepareRequest puts a visitor's request in the form the cache works
// with: Accept-Encoding normalised to "gzip" or nothing (so it selects one
// of two stored variants, and an encoded copy never reaches a visitor that
// did not ask for the coding), and the visitor's address appended to
// X-Forwarded-For as proxies do.
func prepareRequest(r *http.Request) {
	if ae := httpcache.NormalizeAcceptEncoding(r.Header.Values("Accept-Encoding")); ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	} else {
		r.Header.Del("Accept-Encoding")
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil && host != "" {
		prior := strings.Join(r.Header.Values("X-Forwarded-For"), ", ")
		if prior != "" {
			host = prior + ", " + host
		}
		r.Header.Set("X-Forwarded-For", host)
	}
}

// forwardHeader is a prepared visitor request header as sent on to an
// origin; cached says the response may be stored (GET and HEAD).
func (p *Proxy) forwardHeader(in http.Header, cached bool) http.Header {
	h := http.Header{}
	for k, v := range in {
		if !cached || cachedFetchFields[k] {
			h[k] = append([]string(nil), v...)
		}
	}
	httpcache.RemoveHopByHop(h)
	for _, k := range reflectedFields {
		h.Del(k)
	}
	if p.opts.StripCookies {
		h.Del("Cookie")
	}
	h.Add("Via", p.via())
	return h
}

// sentHeader is the part of a visitor's header that bears on storing the
// response: the credentials that reached the origin.
func (p *Proxy) sentHeader(in http.Header) http.Header {
	if p.opts.StripCookies && in.Get("Cookie") != "" {
		h := in.Clone()
		h.Del("Cookie")
		return h
	}
	return in
}
