package httpcache

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Seconds is a Cache-Control delta-seconds argument. Unset means the
// directive is absent.
type Seconds int64

// Unset marks an absent delta-seconds directive.
const Unset Seconds = -1

// MaxDelta is the largest delta-seconds value a cache has to represent
// (RFC 9111 §1.2.2); larger values are clamped to it, and max-stale without
// an argument ("any staleness") is recorded as MaxDelta.
const MaxDelta Seconds = 2147483648

// IsSet reports whether the directive was present.
func (s Seconds) IsSet() bool { return s >= 0 }

// Duration converts a set value to a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// Directives is a parsed Cache-Control header (request or response).
// Directives this cache does not act on are dropped.
type Directives struct {
	NoStore         bool
	NoCache         bool     // unqualified no-cache
	NoCacheFields   []string // no-cache="Field, ..." (canonical header names)
	Private         bool     // unqualified private
	PrivateFields   []string // private="Field, ..."
	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	NoTransform     bool
	OnlyIfCached    bool
	Immutable       bool
	MustUnderstand  bool // store only if the status code is understood (RFC 9111 §5.2.2.3)

	MaxAge               Seconds
	SMaxAge              Seconds
	MaxStale             Seconds // MaxDelta when given without an argument
	MinFresh             Seconds
	StaleWhileRevalidate Seconds
	StaleIfError         Seconds
}

// ParseCacheControl parses every line of a Cache-Control header. It never
// fails: unknown directives are ignored; when a directive repeats, the first
// occurrence counts (RFC 9111 §4.2.1); an invalid max-age or s-maxage
// argument is taken as 0 (stale) since the origin clearly meant to limit
// freshness, and other invalid arguments are ignored.
func ParseCacheControl(lines []string) Directives {
	d := Directives{MaxAge: Unset, SMaxAge: Unset, MaxStale: Unset, MinFresh: Unset,
		StaleWhileRevalidate: Unset, StaleIfError: Unset}
	seen := map[string]bool{}
	for _, line := range lines {
		for _, item := range splitList(line) {
			name, arg, hasArg := cutDirective(item)
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			switch name {
			case "no-store":
				d.NoStore = true
			case "no-cache":
				if hasArg {
					d.NoCacheFields = fieldList(arg)
				} else {
					d.NoCache = true
				}
			case "private":
				if hasArg {
					d.PrivateFields = fieldList(arg)
				} else {
					d.Private = true
				}
			case "public":
				d.Public = true
			case "must-revalidate":
				d.MustRevalidate = true
			case "proxy-revalidate":
				d.ProxyRevalidate = true
			case "no-transform":
				d.NoTransform = true
			case "only-if-cached":
				d.OnlyIfCached = true
			case "immutable":
				d.Immutable = true
			case "must-understand":
				d.MustUnderstand = true
			case "max-age":
				d.MaxAge = deltaOr(arg, hasArg, 0)
			case "s-maxage":
				d.SMaxAge = deltaOr(arg, hasArg, 0)
			case "max-stale":
				if !hasArg {
					d.MaxStale = MaxDelta
				} else {
					d.MaxStale = deltaOr(arg, true, Unset)
				}
			case "min-fresh":
				d.MinFresh = deltaOr(arg, hasArg, Unset)
			case "stale-while-revalidate":
				d.StaleWhileRevalidate = deltaOr(arg, hasArg, Unset)
			case "stale-if-error":
				d.StaleIfError = deltaOr(arg, hasArg, Unset)
			}
		}
	}
	if d.NoCache {
		d.NoCacheFields = nil
	}
	if d.Private {
		d.PrivateFields = nil
	}
	return d
}

// String formats d as a Cache-Control value in a fixed order; parsing the
// result gives d back.
func (d Directives) String() string {
	var parts []string
	flag := func(b bool, s string) {
		if b {
			parts = append(parts, s)
		}
	}
	fields := func(name string, f []string) {
		if len(f) > 0 {
			parts = append(parts, name+`="`+strings.Join(f, ", ")+`"`)
		}
	}
	delta := func(s Seconds, name string) {
		if s.IsSet() {
			parts = append(parts, name+"="+strconv.FormatInt(int64(s), 10))
		}
	}
	flag(d.NoStore, "no-store")
	flag(d.NoCache, "no-cache")
	fields("no-cache", d.NoCacheFields)
	flag(d.Private, "private")
	fields("private", d.PrivateFields)
	flag(d.Public, "public")
	flag(d.MustRevalidate, "must-revalidate")
	flag(d.ProxyRevalidate, "proxy-revalidate")
	flag(d.NoTransform, "no-transform")
	flag(d.OnlyIfCached, "only-if-cached")
	flag(d.Immutable, "immutable")
	flag(d.MustUnderstand, "must-understand")
	delta(d.MaxAge, "max-age")
	delta(d.SMaxAge, "s-maxage")
	delta(d.MaxStale, "max-stale")
	delta(d.MinFresh, "min-fresh")
	delta(d.StaleWhileRevalidate, "stale-while-revalidate")
	delta(d.StaleIfError, "stale-if-error")
	return strings.Join(parts, ", ")
}

// RequestDirectives parses a request's Cache-Control, treating
// "Pragma: no-cache" as no-cache when there is no Cache-Control
// (RFC 9111 §5.4, for HTTP/1.0 clients).
func RequestDirectives(h http.Header) Directives {
	cc := h.Values("Cache-Control")
	d := ParseCacheControl(cc)
	if len(cc) == 0 && pragmaNoCache(h) {
		d.NoCache = true
	}
	return d
}

// ResponseDirectives parses a response's Cache-Control; a response with
// only "Pragma: no-cache" is treated as no-cache, as HTTP/1.0 origins mean it.
func ResponseDirectives(h http.Header) Directives {
	return RequestDirectives(h)
}

func pragmaNoCache(h http.Header) bool {
	for _, line := range h.Values("Pragma") {
		for _, item := range splitList(line) {
			if name, _, _ := cutDirective(item); name == "no-cache" {
				return true
			}
		}
	}
	return false
}

// splitList splits a comma-separated header value, keeping commas inside
// quoted strings.
func splitList(s string) []string {
	var out []string
	start, inQuote, escaped := 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			if item := strings.TrimSpace(s[start:i]); item != "" {
				out = append(out, item)
			}
			start = i + 1
		}
	}
	if item := strings.TrimSpace(s[start:]); item != "" {
		out = append(out, item)
	}
	return out
}

// cutDirective splits `name[=arg]`, lower-casing the name and unquoting the
// argument. A name that is not a token yields "".
func cutDirective(item string) (name, arg string, hasArg bool) {
	name, arg, hasArg = strings.Cut(item, "=")
	name = strings.ToLower(strings.TrimSpace(name))
	if !isToken(name) {
		return "", "", false
	}
	arg = strings.TrimSpace(arg)
	if len(arg) >= 2 && arg[0] == '"' && arg[len(arg)-1] == '"' {
		arg = unquote(arg[1 : len(arg)-1])
	}
	return name, arg, hasArg
}

func unquote(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// deltaOr parses delta-seconds; missing or invalid arguments give def.
func deltaOr(arg string, hasArg bool, def Seconds) Seconds {
	if !hasArg || arg == "" {
		return def
	}
	for i := 0; i < len(arg); i++ {
		if arg[i] < '0' || arg[i] > '9' {
			return def
		}
	}
	v, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || Seconds(v) > MaxDelta {
		return MaxDelta
	}
	return Seconds(v)
}

// fieldList parses the field-name list of a qualified no-cache or private,
// canonicalising and de-duplicating names and dropping invalid ones.
func fieldList(arg string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.Split(arg, ",") {
		f = strings.TrimSpace(f)
		if !isToken(f) {
			continue
		}
		f = http.CanonicalHeaderKey(f)
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
