package dnsserver

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/miekg/dns"
)

type nameKind int

const (
	kindOutside  nameKind = iota // not in the zone: REFUSED
	kindApex                     // the zone itself
	kindStaticNS                 // a configured nameserver name inside the zone
	kindNSHost                   // <node>.<L2>.<L1>.<L0>.<ns-zone>
	kindEmpty                    // exists only as a suffix of other names: NODATA
	kindOrigin                   // a Coralized name
	kindNX                       // nothing here or below: NXDOMAIN
)

type nameClass struct {
	kind nameKind
	ns   NameServer // kindStaticNS
	node string     // kindNSHost: the <node> label
}

// classify places a query name in the zone. It works on labels (not string
// suffixes) so that an escaped dot ("a\.nyud.net") is not mistaken for a
// name in the zone.
func (s *Server) classify(qname string) nameClass {
	lname := strings.ToLower(qname)
	labels := dns.SplitDomainName(lname)
	nz := len(s.zoneLabels)
	if len(labels) < nz || !equalLabels(labels[len(labels)-nz:], s.zoneLabels) {
		return nameClass{kind: kindOutside}
	}
	rel := labels[:len(labels)-nz]
	if len(rel) == 0 {
		return nameClass{kind: kindApex}
	}
	if ns, ok := s.static[dns.Fqdn(lname)]; ok {
		return nameClass{kind: kindStaticNS, ns: ns}
	}
	for _, l := range rel {
		if !hostLabel(l) {
			return nameClass{kind: kindNX}
		}
	}
	nr := len(s.nsRel)
	if len(rel) < nr && equalLabels(rel, s.nsRel[nr-len(rel):]) {
		return nameClass{kind: kindEmpty} // between the zone and the nameserver zone
	}
	if len(rel) >= nr && equalLabels(rel[len(rel)-nr:], s.nsRel) {
		switch below := rel[:len(rel)-nr]; len(below) {
		case 0, 1, 2, 3:
			return nameClass{kind: kindEmpty}
		case 4:
			return nameClass{kind: kindNSHost, node: below[0]}
		default:
			return nameClass{kind: kindNX}
		}
	}
	rest := strings.Join(rel, ".")
	if s.validOrigin(rest) {
		return nameClass{kind: kindOrigin}
	}
	// A suffix of a valid name must not be NXDOMAIN. Prepending one host
	// label completes host-name, port and https suffixes; up to three octets
	// complete an IPv4 address (0.1.8000 -> 0.0.0.1.8000).
	for _, pre := range [...]string{"a.", "0.", "0.0.", "0.0.0."} {
		if s.validOrigin(pre + rest) {
			return nameClass{kind: kindEmpty}
		}
	}
	return nameClass{kind: kindNX}
}

func (s *Server) validOrigin(rel string) bool {
	_, err := coralurl.Parse(rel+"."+s.zone, s.zone)
	return err == nil
}

func equalLabels(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hostLabel reports whether l (lower case, presentation format) can appear
// in any name this server answers: letters, digits, hyphen, underscore. It
// also rules out escapes, so later string handling sees plain labels.
func hostLabel(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

var b32 = base32.HexEncoding.WithPadding(base32.NoPadding)

func hashLabel(prefix, s string) string {
	sum := sha256.Sum256([]byte(s))
	return prefix + strings.ToLower(b32.EncodeToString(sum[:5]))
}

// nodeLabel is the <node> label of a nameserver (see the package comment).
func (s *Server) nodeLabel(id string) string {
	return getOrAdd(s.labels, id, func() string { return hashLabel("n", id) })
}

// clusterLabel is the <Lk> label for a cluster ID (see the package comment).
func clusterLabel(c string) string {
	if c == "" {
		return "x"
	}
	if lc := strings.ToLower(c); len(lc) <= 12 && hostLabel(lc) && !strings.Contains(lc, "_") && lc[0] != '-' && lc[len(lc)-1] != '-' {
		return lc
	}
	return hashLabel("h", c)
}

// nsName is the full nameserver name of p.
func (s *Server) nsName(p *Proxy) string {
	return s.nodeLabel(p.ID) + "." + clusterLabel(p.Cluster[0]) + "." + clusterLabel(p.Cluster[1]) + "." +
		clusterLabel(p.Cluster[2]) + "." + s.nsFQDN
}
