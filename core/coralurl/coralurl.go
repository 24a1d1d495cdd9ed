// Package coralurl maps Coralized host names to origin servers and back.
//
// A Coralized name is the origin's host name with the network's zone
// appended, so that DNS for the zone (Coral's own nameservers, or the
// "localhost" special name on one machine) leads a visitor to a Coral proxy,
// and the proxy can recover the origin from the Host header alone:
//
//	<host>.<zone>                    http://<host>/
//	<host>.<port>.<zone>             http://<host>:<port>/
//	<host>.https.<zone>              https://<host>/
//	<host>.<port>.https.<zone>       https://<host>:<port>/
//
// <host> is a DNS name or a dotted-quad IPv4 address
// (127.0.0.1.8000.localhost is origin http://127.0.0.1:8000/). The port is a
// decimal label without leading zeros in 1..65535; the default port of the
// scheme (80, 443) is never written. HTTPS origins carry the label "https"
// immediately before the zone, after the port if there is one; the proxy
// itself always speaks plain HTTP to visitors.
//
// Names are case-insensitive and compared in lower case; a trailing dot and a
// ":port" suffix (the proxy's own listening port, as in a Host header) are
// ignored by Parse.
//
// The grammar is unambiguous because no DNS host name ends in an all-numeric
// label (RFC 3696 §2: top-level domains are not all-numeric) or in the label
// "https"; Coralize refuses such hosts instead of producing a name that would
// parse differently. IPv6 origins cannot be written in a DNS label and are
// not supported. Origins inside the zone itself are refused, since fetching
// them would send the proxy to itself.
package coralurl

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Errors returned by Parse; callers switch on them with errors.Is to choose
// between the zone's front page, a 400 "not an open proxy" and other answers.
var (
	// ErrBareZone: the host is the zone itself (the front page), not an origin.
	ErrBareZone = errors.New("coralurl: host is the bare zone")
	// ErrNotInZone: the host does not end in the zone, so it is not a
	// Coralized name at all.
	ErrNotInZone = errors.New("coralurl: host is not in the zone")
	// ErrInvalid: the host ends in the zone but what precedes it is not a
	// valid origin.
	ErrInvalid = errors.New("coralurl: invalid Coralized name")
)

// HTTPSLabel marks an HTTPS origin; it sits right before the zone.
const HTTPSLabel = "https"

const maxHostLen = 253

// Origin is a canonical origin server: lower-case scheme and host, and the
// port always explicit.
type Origin struct {
	Scheme string // "http" or "https"
	Host   string // lower-case DNS name or dotted-quad IPv4 address
	Port   int    // 1..65535
}

// DefaultPort returns the scheme's well-known port.
func DefaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// Authority is the origin as written in a URL or Host header: host, plus
// ":port" only when the port is not the scheme's default.
func (o Origin) Authority() string {
	if o.Port == DefaultPort(o.Scheme) {
		return o.Host
	}
	return o.Host + ":" + strconv.Itoa(o.Port)
}

// Addr is the host:port to dial.
func (o Origin) Addr() string { return o.Host + ":" + strconv.Itoa(o.Port) }

// String is the origin as a URL without a path, e.g. "http://example.com:8000".
func (o Origin) String() string { return o.Scheme + "://" + o.Authority() }

// Validate reports whether o is canonical and can be Coralized.
func (o Origin) Validate() error {
	if o.Scheme != "http" && o.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not http or https", ErrInvalid, o.Scheme)
	}
	if o.Port < 1 || o.Port > 65535 {
		return fmt.Errorf("%w: port %d out of range", ErrInvalid, o.Port)
	}
	return validHost(o.Host)
}

// CoralHost returns the Coralized host name of o in zone, without the
// proxy's port. zone must be canonical (lower case, no trailing dot); use
// NormalizeZone on configuration input.
func (o Origin) CoralHost(zone string) string {
	var b strings.Builder
	b.WriteString(o.Host)
	if o.Port != DefaultPort(o.Scheme) {
		b.WriteByte('.')
		b.WriteString(strconv.Itoa(o.Port))
	}
	if o.Scheme == "https" {
		b.WriteString("." + HTTPSLabel)
	}
	b.WriteByte('.')
	b.WriteString(zone)
	return b.String()
}

// NormalizeZone lower-cases a zone and strips a trailing dot, and checks it
// is a syntactically valid DNS name.
func NormalizeZone(zone string) (string, error) {
	z := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(zone)), ".")
	if z == "" {
		return "", errors.New("coralurl: empty zone")
	}
	for _, l := range strings.Split(z, ".") {
		if err := validLabel(l); err != nil {
			return "", fmt.Errorf("coralurl: invalid zone %q: %w", zone, err)
		}
	}
	if len(z) > maxHostLen {
		return "", fmt.Errorf("coralurl: invalid zone %q: too long", zone)
	}
	return z, nil
}

// StripPort removes a ":port" suffix from a Host header value (the proxy's
// own port) and returns the host and the port ("" when absent).
func StripPort(hostport string) (host, port string) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.Contains(hostport[i+1:], "]") {
		return hostport, ""
	}
	return hostport[:i], hostport[i+1:]
}

// IsZone reports whether the Host header value names the bare zone.
func IsZone(host, zone string) bool {
	h, _ := StripPort(host)
	return strings.TrimSuffix(strings.ToLower(h), ".") == zone
}

// Parse maps a Host header value (optionally with the proxy's ":port") to the
// origin it Coralizes. zone must be canonical (see NormalizeZone). It returns
// ErrBareZone, ErrNotInZone or an error wrapping ErrInvalid explaining what is
// wrong.
func Parse(host, zone string) (Origin, error) {
	h, _ := StripPort(host)
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == zone {
		return Origin{}, ErrBareZone
	}
	rest, ok := strings.CutSuffix(h, "."+zone)
	if !ok || rest == "" {
		return Origin{}, fmt.Errorf("%w: %q does not end in .%s", ErrNotInZone, host, zone)
	}
	o := Origin{Scheme: "http"}
	labels := strings.Split(rest, ".")
	if len(labels) > 1 && labels[len(labels)-1] == HTTPSLabel {
		o.Scheme = "https"
		labels = labels[:len(labels)-1]
	}
	o.Port = DefaultPort(o.Scheme)
	if n := len(labels); n > 1 && isDigits(labels[n-1]) {
		// A numeric last label is the port unless the whole name is a bare
		// IPv4 address (whose last octet is numeric too). Both readings
		// cannot be valid at once: an IPv4 address has exactly four labels.
		if err := validHost(strings.Join(labels[:n-1], ".")); err == nil {
			p, err := parsePort(labels[n-1])
			if err != nil {
				return Origin{}, fmt.Errorf("%w: %q: %v", ErrInvalid, host, err)
			}
			o.Port = p
			labels = labels[:n-1]
		}
	}
	o.Host = strings.Join(labels, ".")
	if err := validHost(o.Host); err != nil {
		return Origin{}, fmt.Errorf("%w: %q: %v", ErrInvalid, host, err)
	}
	if o.Host == zone || strings.HasSuffix(o.Host, "."+zone) {
		return Origin{}, fmt.Errorf("%w: %q: origin %s is inside the zone itself", ErrInvalid, host, o.Host)
	}
	return o, nil
}

// ParseOrigin extracts the canonical origin of an absolute http or https URL.
// A URL without a scheme ("example.com/x") is taken as http, since that is
// what visitors type into the front page's form.
func ParseOrigin(rawURL string) (Origin, *url.URL, error) {
	s := strings.TrimSpace(rawURL)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Origin{}, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	o := Origin{Scheme: strings.ToLower(u.Scheme)}
	if o.Scheme != "http" && o.Scheme != "https" {
		return Origin{}, nil, fmt.Errorf("%w: scheme %q is not http or https", ErrInvalid, u.Scheme)
	}
	if u.User != nil {
		return Origin{}, nil, fmt.Errorf("%w: URLs with user information are not supported", ErrInvalid)
	}
	o.Host = strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if strings.Contains(o.Host, ":") {
		return Origin{}, nil, fmt.Errorf("%w: IPv6 origins cannot be Coralized", ErrInvalid)
	}
	o.Port = DefaultPort(o.Scheme)
	if p := u.Port(); p != "" {
		if o.Port, err = parsePort(p); err != nil {
			return Origin{}, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return Origin{}, nil, fmt.Errorf("%w: empty port", ErrInvalid)
	}
	if err := validHost(o.Host); err != nil {
		return Origin{}, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return o, u, nil
}

// Coralize rewrites an origin URL (http or https) into its Coralized http URL
// in zone, keeping path and query and dropping any fragment:
// Coralize("https://example.com:8443/a?b", "nyud.net") is
// "http://example.com.8443.https.nyud.net/a?b".
func Coralize(originURL, zone string) (string, error) {
	u, err := CoralizeURL(originURL, zone, "")
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// CoralizeURL is Coralize for a proxy listening on proxyPort ("" or "80" for
// the default), which becomes the port of the returned URL.
func CoralizeURL(originURL, zone, proxyPort string) (*url.URL, error) {
	z, err := NormalizeZone(zone)
	if err != nil {
		return nil, err
	}
	o, u, err := ParseOrigin(originURL)
	if err != nil {
		return nil, err
	}
	if o.Host == z || strings.HasSuffix(o.Host, "."+z) {
		return nil, fmt.Errorf("%w: %s is already inside the zone %s", ErrInvalid, o.Host, z)
	}
	host := o.CoralHost(z)
	if proxyPort != "" && proxyPort != "80" {
		host += ":" + proxyPort
	}
	out := &url.URL{Scheme: "http", Host: host, Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery}
	if out.Path == "" {
		out.Path = "/"
	}
	return out, nil
}

// validHost accepts a dotted-quad IPv4 address or a DNS name whose last label
// is neither all-numeric nor "https" (see the package comment).
func validHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if len(h) > maxHostLen {
		return errors.New("host name longer than 253 characters")
	}
	labels := strings.Split(h, ".")
	last := labels[len(labels)-1]
	if isDigits(last) {
		if len(labels) != 4 {
			return fmt.Errorf("%q is neither a host name nor an IPv4 address", h)
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%q is not a valid IPv4 address", h)
		}
		return nil
	}
	if last == HTTPSLabel {
		return fmt.Errorf("host %q ends in the reserved label %q", h, HTTPSLabel)
	}
	for _, l := range labels {
		if err := validLabel(l); err != nil {
			return fmt.Errorf("host %q: %w", h, err)
		}
	}
	return nil
}

// validLabel accepts letters, digits, hyphens and (as found in real host
// names) underscores; not empty, at most 63 bytes, no leading or trailing
// hyphen.
func validLabel(l string) error {
	if l == "" {
		return errors.New("empty label")
	}
	if len(l) > 63 {
		return fmt.Errorf("label %.20q... longer than 63 characters", l)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("label %q contains %q", l, c)
		}
	}
	return nil
}

func parsePort(s string) (int, error) {
	if !isDigits(s) || len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("port %q is not a decimal number without leading zeros", s)
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", p)
	}
	return p, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
