package node

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/shaping"
	lru "github.com/hashicorp/golang-lru/v2"
)

// The visitor side of the budget: every byte a visitor gets, heads and
// refusals included, goes through the upload cap as its origin site's
// traffic — at the connection (proxy.Uplink, fastGate), the gate naming
// each response's site — and while the node does not serve (paused, an
// "off" window, the quota reached) visitors who still arrive — from a DNS
// answer cached before the change — are sent home or told to come back,
// one answer per connection.

// ControlHeader is the header an origin sends to steer Coral;
// "redirect-home" asks that visitors go to the origin when a proxy cannot
// serve them.
const ControlHeader = "X-Coral-Control"

// homeOriginsMax is how many origins asking for redirect-home are
// remembered.
const homeOriginsMax = 4096

// sendPiece is the most read from a peer between two cap checks
// (peers_budget.go).
const sendPiece = 16 << 10

// hostSitesMax is how many Host headers' sites the gate remembers, so that
// a cache hit does not parse its Host twice (here and in the proxy).
const hostSitesMax = 4096

type visitorGate struct {
	next   http.Handler
	budget *shaping.Budget
	zone   string
	home   *homeOrigins                 // origins that sent redirect-home
	sites  *lru.Cache[string, hostSite] // Coralized Host header -> its site
	// custom maps a site group's custom domain (or its Coralized name) to
	// the site and its origin (groups.go); nil: none. Not cached: a new
	// manifest may change it.
	custom func(host string) (site string, o coralurl.Origin, ok bool)
}

// hostSite is what the gate needs of a Host header: the origin site's name
// and base URL ("" both when it is not a Coralized name).
type hostSite struct{ site, origin string }

func newVisitorGate(next http.Handler, b *shaping.Budget, zone, homePath string) *visitorGate {
	sites, _ := lru.New[string, hostSite](hostSitesMax) // errors only for a size <= 0
	return &visitorGate{next: next, budget: b, zone: zone, home: loadHomeOrigins(homePath), sites: sites}
}

// siteOf parses host once per distinct Host header.
func (g *visitorGate) siteOf(host string) hostSite {
	if hs, ok := g.sites.Get(host); ok {
		return hs
	}
	var hs hostSite
	if o, err := coralurl.Parse(host, g.zone); err == nil {
		hs = hostSite{site: o.Host, origin: originBase(o)}
	}
	g.sites.Add(host, hs)
	return hs
}

func (g *visitorGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var site, origin string
	if s, o, ok := g.customSite(r.Host); ok {
		site, origin = s, originBase(o)
	} else {
		hs := g.siteOf(r.Host)
		site, origin = hs.site, hs.origin
	}
	proxy.SetSite(r.Context(), site)
	if site != "" && !g.budget.Serving() {
		g.refuse(w, r, origin)
		return
	}
	g.next.ServeHTTP(&homeWriter{ResponseWriter: w, gate: g, origin: origin}, r)
}

func (g *visitorGate) customSite(host string) (string, coralurl.Origin, bool) {
	if g.custom == nil {
		return "", coralurl.Origin{}, false
	}
	return g.custom(host)
}

func originBase(o coralurl.Origin) string {
	if o.Port == coralurl.DefaultPort(o.Scheme) {
		return o.Scheme + "://" + o.Host
	}
	return fmt.Sprintf("%s://%s:%d", o.Scheme, o.Host, o.Port)
}

// refuse answers a visitor while the node does not serve: the origin's own
// URL when the origin asked for that, else 503 with a link to it. Its
// bytes go through the upload cap and count like any response; the
// connection closes after it, so a visitor that keeps asking pays a new
// connection for each answer.
func (g *visitorGate) refuse(w http.ResponseWriter, r *http.Request, origin string) {
	target := origin + r.URL.RequestURI()
	w.Header().Set("Connection", "close")
	if g.home.has(origin) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(g.retryAfter()))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusServiceUnavailable)
	link := html.EscapeString(target)
	fmt.Fprintf(w, "<!doctype html><title>Coral: this proxy is resting</title>"+
		"<h1>This Coral proxy is not serving right now</h1>"+
		"<p>Its volunteer has paused it or its bandwidth for now is used up. "+
		"Go to the site itself: <a href=\"%s\">%s</a></p>\n", link, link)
}

// retryAfter is the seconds until the node serves again by itself (an off
// window's end, the next quota month), between a minute and a day; five
// minutes when only the volunteer can resume it.
func (g *visitorGate) retryAfter() int {
	at := g.budget.State().ResumeAt
	if at.IsZero() {
		return 300
	}
	return int(min(max(time.Until(at), time.Minute), 24*time.Hour) / time.Second)
}

// homeWriter notes the origins that ask, on a response, that their
// visitors be sent home when the node does not serve. The bytes are the
// connection's to shape and count.
type homeWriter struct {
	http.ResponseWriter
	origin      string
	gate        *visitorGate
	wroteHeader bool
}

func (s *homeWriter) WriteHeader(code int) {
	if !s.wroteHeader {
		s.wroteHeader = true
		if s.origin != "" && strings.Contains(strings.ToLower(s.Header().Get(ControlHeader)), "redirect-home") {
			s.gate.home.add(s.origin)
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *homeWriter) Write(p []byte) (int, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	return s.ResponseWriter.Write(p)
}

// ReadFrom keeps net/http's sendfile for stored bodies.
func (s *homeWriter) ReadFrom(src io.Reader) (int64, error) {
	if !s.wroteHeader {
		s.WriteHeader(http.StatusOK)
	}
	if rf, ok := s.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(writerOnly{s}, src)
}

type writerOnly struct{ io.Writer }

func (s *homeWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (s *homeWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
