// Package httpcache makes the decisions of an RFC 9111 shared cache: whether
// a response may be stored, how long it stays fresh, how old it is, whether a
// stored response can answer a request as is, must be revalidated, or may be
// served stale, how a 304 updates it, and how a visitor's conditional request
// is answered from it. It does no I/O; the proxy acts on its answers.
//
// Choices where the RFCs leave room, following CoralCDN:
//
//   - Heuristic freshness (RFC 9111 §4.2.2) applies to responses without
//     explicit freshness whose status is heuristically cacheable (or that are
//     marked public): 10% of the time since Last-Modified, capped by
//     Policy.HeuristicTTL. Without Last-Modified, 200, 203, 204, 300, 301 and
//     308 responses get HeuristicTTL itself (CoralCDN's 12 h default expiry);
//     error statuses (404, 405, 410, 414, 501) get no heuristic freshness, so
//     a missing page is not remembered for hours. HeuristicTTL = 0 turns
//     heuristic freshness off entirely.
//   - Serving stale: must-revalidate, proxy-revalidate, no-cache and s-maxage
//     forbid serving a stale response in every case, including the
//     stale-while-revalidate and stale-if-error extensions (RFC 5861). When
//     the origin fails, other stale responses may be served for
//     Policy.MaxStale past expiry, or for the response's stale-if-error
//     window if that is longer.
//   - Qualified private="F" and no-cache="F" are honoured by not storing the
//     named fields, which is always safe.
//   - max-age=0 in a request always forces revalidation, as browsers mean it
//     on reload, even when the stored response's age rounds to 0 seconds.
package httpcache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Policy is the cache's own configuration.
type Policy struct {
	// HeuristicTTL caps heuristic freshness; 0 disables it.
	HeuristicTTL time.Duration
	// MaxStale is how long past expiry a stored response may still be
	// served when the origin fails (unless the response forbids it).
	MaxStale time.Duration
}

// Entry is a stored response as the freshness rules see it.
type Entry struct {
	Status       int
	Header       http.Header
	RequestTime  time.Time // when the request that produced it was sent
	ResponseTime time.Time // when the response was received
	// MaxLifetime bounds the freshness lifetime the header gives (0: no
	// bound): a copy from another cache whose header only that cache
	// vouches for.
	MaxLifetime time.Duration
}

// heuristicStatus lists the status codes RFC 9110 §15.1 defines as
// heuristically cacheable. 206 is left out: the proxy never asks origins for
// ranges and does not store partial content.
var heuristicStatus = map[int]bool{
	200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
	404: true, 405: true, 410: true, 414: true, 501: true,
}

// understoodStatus lists the final status codes whose caching requirements
// this cache implements, for must-understand: those of RFC 9110 except 206
// (no partial content is stored) and 304 (it only updates a stored response).
var understoodStatus = map[int]bool{
	200: true, 201: true, 202: true, 203: true, 204: true, 205: true,
	300: true, 301: true, 302: true, 303: true, 305: true, 307: true, 308: true,
	400: true, 401: true, 402: true, 403: true, 404: true, 405: true, 406: true, 407: true, 408: true,
	409: true, 410: true, 411: true, 412: true, 413: true, 414: true, 415: true, 416: true, 417: true,
	421: true, 422: true, 426: true,
	500: true, 501: true, 502: true, 503: true, 504: true, 505: true,
}

// errorStatus: heuristically cacheable, but not fresh without Last-Modified.
func errorStatus(code int) bool { return code >= 400 }

// Storable decides whether a shared cache may store the response to a
// request (RFC 9111 §3). reqHeader is the request as sent to the origin.
// reason explains a refusal, for logs.
//
// A request that sent a Cookie, and a response that sets one, are treated
// like a request with Authorization (RFC 9111 §3.5): the response is
// personal unless it explicitly allows shared caching, as nginx and Varnish
// decide by default. A Set-Cookie field itself is never stored.
func Storable(method string, reqHeader http.Header, status int, respHeader http.Header) (ok bool, reason string) {
	if method != http.MethodGet {
		return false, "method " + method + " is not cached"
	}
	if status < 200 || status == http.StatusPartialContent || status == http.StatusNotModified {
		return false, "status " + strconv.Itoa(status) + " is not stored"
	}
	rq := RequestDirectives(reqHeader)
	if rq.NoStore {
		return false, "request has no-store"
	}
	cc := CoralDirectives(respHeader)
	if cc.MustUnderstand {
		if !understoodStatus[status] {
			return false, "must-understand and status " + strconv.Itoa(status) + " is not understood"
		}
		// A cache that understands the status ignores the no-store that
		// comes with must-understand for older caches (RFC 9111 §5.2.2.3).
		cc.NoStore = false
	}
	if cc.NoStore {
		return false, "response has no-store"
	}
	if cc.Private {
		return false, "response is private"
	}
	if !SharedExplicitly(cc) {
		switch {
		case reqHeader.Get("Authorization") != "":
			return false, "request has Authorization and the response does not allow sharing"
		case reqHeader.Get("Cookie") != "":
			return false, "request sent a cookie and the response does not allow sharing"
		case len(respHeader.Values("Set-Cookie")) > 0:
			return false, "response sets a cookie and does not allow sharing"
		}
	}
	if _, star := VaryFields(respHeader); star {
		return false, "response has Vary: *"
	}
	explicit := cc.MaxAge.IsSet() || cc.SMaxAge.IsSet() || respHeader.Get("Expires") != ""
	if !explicit && !cc.Public && !heuristicStatus[status] {
		return false, "status " + strconv.Itoa(status) + " has no explicit freshness"
	}
	return true, ""
}

// SharedExplicitly reports whether response directives allow a shared
// cache to store a response to a request with credentials: public,
// s-maxage or must-revalidate (RFC 9111 §3.5).
func SharedExplicitly(cc Directives) bool {
	return cc.Public || cc.SMaxAge.IsSet() || cc.MustRevalidate
}

// Source says where a freshness lifetime came from.
type Source int

// Freshness sources, in order of precedence.
const (
	FromSMaxAge Source = iota + 1
	FromMaxAge
	FromExpires
	FromHeuristic
	FromNone
)

// Lifetime is the response's freshness lifetime (RFC 9111 §4.2.1), at most
// e.MaxLifetime when that is set.
func (p Policy) Lifetime(e Entry) (time.Duration, Source) {
	d, src := p.headerLifetime(e)
	if e.MaxLifetime > 0 && d > e.MaxLifetime {
		d = e.MaxLifetime
	}
	return d, src
}

// headerLifetime is the freshness lifetime e's header gives.
func (p Policy) headerLifetime(e Entry) (time.Duration, Source) {
	cc := CoralDirectives(e.Header)
	if cc.SMaxAge.IsSet() {
		return cc.SMaxAge.Duration(), FromSMaxAge
	}
	if cc.MaxAge.IsSet() {
		return cc.MaxAge.Duration(), FromMaxAge
	}
	if exp := e.Header.Values("Expires"); len(exp) > 0 {
		t, err := http.ParseTime(exp[0])
		if err != nil {
			return 0, FromExpires // invalid Expires means already expired
		}
		d := t.Sub(dateOf(e))
		if d < 0 {
			d = 0
		}
		return d, FromExpires
	}
	if p.HeuristicTTL <= 0 || (!heuristicStatus[e.Status] && !cc.Public) {
		return 0, FromNone
	}
	if lm, err := http.ParseTime(e.Header.Get("Last-Modified")); err == nil {
		d := dateOf(e).Sub(lm) / 10
		if d < 0 {
			d = 0
		}
		return min(d, p.HeuristicTTL), FromHeuristic
	}
	if errorStatus(e.Status) {
		return 0, FromNone
	}
	return p.HeuristicTTL, FromHeuristic
}

// dateOf is the response's Date, or the time it was received when Date is
// missing or invalid.
func dateOf(e Entry) time.Time {
	if t, err := http.ParseTime(e.Header.Get("Date")); err == nil {
		return t
	}
	return e.ResponseTime
}

// Age is the response's current age (RFC 9111 §4.2.3).
func Age(e Entry, now time.Time) time.Duration {
	apparent := e.ResponseTime.Sub(dateOf(e))
	if apparent < 0 {
		apparent = 0
	}
	// A list-valued Age counts by its first member; an invalid one is
	// ignored (RFC 9111 §5.1).
	var ageValue time.Duration
	first, _, _ := strings.Cut(e.Header.Get("Age"), ",")
	if v := strings.TrimSpace(first); v != "" {
		if s := deltaOr(v, true, Unset); s.IsSet() {
			ageValue = s.Duration()
		}
	}
	delay := e.ResponseTime.Sub(e.RequestTime)
	if delay < 0 {
		delay = 0
	}
	initial := max(apparent, ageValue+delay)
	resident := now.Sub(e.ResponseTime)
	if resident < 0 {
		resident = 0
	}
	return initial + resident
}

// AgeHeader formats an age for the Age header: whole seconds, rounded down.
func AgeHeader(age time.Duration) string {
	return strconv.FormatInt(int64(age/time.Second), 10)
}

// Action is what to do with a stored response for a request.
type Action int

// Actions, from cheapest to most expensive.
const (
	// Serve the stored response as it is.
	Serve Action = iota + 1
	// ServeStale and revalidate in the background (stale-while-revalidate).
	ServeStale
	// Revalidate with the origin before using the stored response.
	Revalidate
)

func (a Action) String() string {
	switch a {
	case Serve:
		return "serve"
	case ServeStale:
		return "serve-stale-while-revalidate"
	case Revalidate:
		return "revalidate"
	}
	return "unknown"
}

// Decision is the outcome of Decide.
type Decision struct {
	Action   Action
	Age      time.Duration
	Lifetime time.Duration
	Fresh    bool
}

// StaleBy is how far past its freshness lifetime the response is (0 when fresh).
func (d Decision) StaleBy() time.Duration {
	if d.Fresh {
		return 0
	}
	return d.Age - d.Lifetime
}

// Decide says whether a stored response can answer a request
// (RFC 9111 §4, §4.2.4; RFC 5861 §3).
func (p Policy) Decide(reqHeader http.Header, e Entry, now time.Time) Decision {
	rq := RequestDirectives(reqHeader)
	rs := CoralDirectives(e.Header)
	d := Decision{Age: Age(e, now)}
	d.Lifetime, _ = p.Lifetime(e)
	d.Fresh = d.Age < d.Lifetime
	d.Action = Revalidate
	switch {
	case rs.NoCache, rq.NoCache:
		return d
	case rq.MaxAge.IsSet() && (rq.MaxAge == 0 || d.Age > rq.MaxAge.Duration()):
		return d
	case rq.MinFresh.IsSet() && d.Lifetime-d.Age < rq.MinFresh.Duration():
		return d
	case d.Fresh:
		d.Action = Serve
		return d
	case ForbidsStale(rs):
		return d
	case rq.MaxStale.IsSet() && d.StaleBy() <= rq.MaxStale.Duration():
		d.Action = Serve
		return d
	case rs.StaleWhileRevalidate.IsSet() && d.StaleBy() <= rs.StaleWhileRevalidate.Duration():
		d.Action = ServeStale
		return d
	}
	return d
}

// ForbidsStale reports whether response directives forbid serving the
// response once stale (RFC 9111 §4.2.4).
func ForbidsStale(rs Directives) bool {
	return rs.MustRevalidate || rs.ProxyRevalidate || rs.NoCache || rs.SMaxAge.IsSet()
}

// StaleOnError reports whether the stored response may stand in for an
// origin that failed (unreachable, timed out, 5xx, 403/404/429): within
// Policy.MaxStale or the response's stale-if-error window past expiry,
// unless the response forbids stale use.
func (p Policy) StaleOnError(e Entry, now time.Time) bool {
	rs := CoralDirectives(e.Header)
	if ForbidsStale(rs) {
		return false
	}
	lifetime, _ := p.Lifetime(e)
	staleBy := Age(e, now) - lifetime
	if staleBy <= 0 {
		return true
	}
	window := p.MaxStale
	if rs.StaleIfError.IsSet() {
		window = max(window, rs.StaleIfError.Duration())
	}
	return staleBy <= window
}

// OriginFailed reports whether an origin status counts as a failure for which
// a stale copy is better than the answer (CoralCDN: 403, 404, 429 and 5xx;
// 410 is deliberate and evicts instead).
func OriginFailed(status int) bool {
	return status >= 500 || status == http.StatusForbidden || status == http.StatusNotFound ||
		status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}
