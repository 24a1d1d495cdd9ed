package httpcache

import (
	"net/http"
	"strings"
)

// SurrogateToken is the device token that addresses Coral in a targeted
// Surrogate-Control directive ("max-age=60;coral").
const SurrogateToken = "coral"

// Surrogate is what a Surrogate-Control header (W3C Edge Architecture
// Specification 1.0, as Varnish and Fastly honour it) tells Coral.
//
// Semantics: a directive without a target speaks to every surrogate; one
// targeted ";coral" speaks to Coral and wins over an untargeted one of the
// same name; directives targeted at other devices are ignored. When the
// header has max-age or no-store (or no-store-remote: Coral is always a
// remote surrogate) for Coral, it replaces Cache-Control's no-store,
// no-cache, max-age, s-maxage and Expires for Coral's own storage and
// freshness; private, must-revalidate, proxy-revalidate and the stale-*
// extensions still apply, and "max-age=N+M" adds an M-second window in
// which a stale copy may stand in for a failing origin. The proxy removes
// the header before a response reaches a visitor.
type Surrogate struct {
	NoStore     bool
	MaxAge      Seconds // Unset when absent
	StaleWindow Seconds // the M of max-age=N+M; Unset when absent
}

// Present reports whether the header says anything about storage.
func (s Surrogate) Present() bool { return s.NoStore || s.MaxAge.IsSet() }

// ParseSurrogateControl parses every line of a Surrogate-Control header. It
// never fails: unknown directives and targets are ignored, an invalid
// max-age counts as 0 (as in Cache-Control), and the first occurrence of a
// directive wins within its targeting (Coral's own, then untargeted).
func ParseSurrogateControl(lines []string) Surrogate {
	var own, all []surrogateItem
	for _, line := range lines {
		for _, raw := range splitList(line) {
			it, target := cutTarget(raw)
			switch {
			case target == "":
				all = append(all, it)
			case strings.EqualFold(target, SurrogateToken):
				own = append(own, it)
			}
		}
	}
	s := Surrogate{MaxAge: Unset, StaleWindow: Unset}
	seen := map[string]bool{}
	for _, it := range append(own, all...) {
		if it.name == "no-store-remote" {
			it.name = "no-store"
		}
		if seen[it.name] {
			continue
		}
		seen[it.name] = true
		switch it.name {
		case "no-store":
			s.NoStore = true
		case "max-age":
			s.MaxAge, s.StaleWindow = surrogateMaxAge(it.arg, it.hasArg)
		}
	}
	return s
}

type surrogateItem struct {
	name, arg string
	hasArg    bool
}

// cutTarget splits `name[=arg][;target]`; the target is the text after the
// last semicolon outside quotes.
func cutTarget(item string) (surrogateItem, string) {
	target := ""
	if i := strings.LastIndexByte(item, ';'); i >= 0 && !strings.Contains(item[i:], `"`) {
		item, target = item[:i], strings.TrimSpace(item[i+1:])
		if !isToken(target) {
			return surrogateItem{}, "\x00" // malformed target: addressed to nobody
		}
	}
	name, arg, hasArg := cutDirective(item)
	return surrogateItem{name: name, arg: arg, hasArg: hasArg}, target
}

// surrogateMaxAge parses "N" or "N+M".
func surrogateMaxAge(arg string, hasArg bool) (maxAge, stale Seconds) {
	n, m, plus := strings.Cut(arg, "+")
	maxAge, stale = deltaOr(n, hasArg, 0), Unset
	if plus {
		stale = deltaOr(m, true, Unset)
	}
	return maxAge, stale
}

// CoralDirectives are the response directives that govern Coral's own
// storage and freshness: Cache-Control (or Pragma), overridden by a
// Surrogate-Control addressed to Coral as described at Surrogate.
func CoralDirectives(h http.Header) Directives {
	d := ResponseDirectives(h)
	sc := ParseSurrogateControl(h.Values("Surrogate-Control"))
	if !sc.Present() {
		return d
	}
	d.NoStore, d.NoCache = sc.NoStore, false
	if sc.MaxAge.IsSet() {
		if d.SMaxAge.IsSet() {
			d.ProxyRevalidate = true // s-maxage implies proxy-revalidate (RFC 9111 §5.2.2.10)
		}
		d.MaxAge, d.SMaxAge = sc.MaxAge, Unset
	}
	if sc.StaleWindow.IsSet() && sc.StaleWindow > d.StaleIfError {
		d.StaleIfError = sc.StaleWindow
	}
	return d
}
