package coralurl

import (
	"fmt"
	"strconv"
	"strings"
)

// DefaultOriginPorts are the origin ports a proxy connects to unless
// configured otherwise: the web's own, and every unprivileged port. Ports
// below 1024 other than 80 and 443 belong to services (SSH, SMTP, ...) a
// Coralized name has no business reaching.
var DefaultOriginPorts = []string{"80", "443", "1024-65535"}

// badPorts is the Fetch standard's list of "bad ports"
// (https://fetch.spec.whatwg.org/#bad-port): ports browsers refuse to
// connect to because services on them parse HTTP-looking input in harmful
// ways. A range in a PortSet leaves them out; naming one on its own lets it in.
var badPorts = map[int]bool{
	0: true, 1: true, 7: true, 9: true, 11: true, 13: true, 15: true, 17: true, 19: true, 20: true,
	21: true, 22: true, 23: true, 25: true, 37: true, 42: true, 43: true, 53: true, 69: true, 77: true,
	79: true, 87: true, 95: true, 101: true, 102: true, 103: true, 104: true, 109: true, 110: true,
	111: true, 113: true, 115: true, 117: true, 119: true, 123: true, 135: true, 137: true, 139: true,
	143: true, 161: true, 179: true, 389: true, 427: true, 465: true, 512: true, 513: true, 514: true,
	515: true, 526: true, 530: true, 531: true, 532: true, 540: true, 548: true, 554: true, 556: true,
	563: true, 587: true, 601: true, 636: true, 989: true, 990: true, 993: true, 995: true, 1719: true,
	1720: true, 1723: true, 2049: true, 3659: true, 4045: true, 4190: true, 5060: true, 5061: true,
	6000: true, 6566: true, 6665: true, 6666: true, 6667: true, 6668: true, 6669: true, 6679: true,
	6697: true, 10080: true,
}

// PortSet is the set of origin ports a proxy may connect to. The zero value
// allows none.
type PortSet struct {
	ranges []portRange
	single map[int]bool // ports named on their own: allowed even if bad
}

type portRange struct{ lo, hi int }

// ParsePorts reads a port list such as ["80", "443", "1024-65535"]: single
// ports and inclusive ranges in 1..65535. Ranges leave out the Fetch
// standard's bad ports; a port named on its own is allowed whatever it is.
func ParsePorts(specs []string) (PortSet, error) {
	s := PortSet{single: map[int]bool{}}
	for _, spec := range specs {
		a, b, isRange := strings.Cut(strings.TrimSpace(spec), "-")
		lo, err := parseListPort(a)
		if err != nil {
			return PortSet{}, fmt.Errorf("port list entry %q: %w", spec, err)
		}
		if !isRange {
			s.single[lo] = true
			continue
		}
		hi, err := parseListPort(b)
		if err != nil {
			return PortSet{}, fmt.Errorf("port list entry %q: %w", spec, err)
		}
		if hi < lo {
			return PortSet{}, fmt.Errorf("port list entry %q: range ends before it starts", spec)
		}
		s.ranges = append(s.ranges, portRange{lo, hi})
	}
	return s, nil
}

func parseListPort(v string) (int, error) {
	v = strings.TrimSpace(v)
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 || v[0] == '+' {
		return 0, fmt.Errorf("want a port number in 1..65535 or a range such as 1024-65535, got %q", v)
	}
	return n, nil
}

// Allows reports whether the proxy may connect to port.
func (s PortSet) Allows(port int) bool {
	if s.single[port] {
		return true
	}
	if badPorts[port] {
		return false
	}
	for _, r := range s.ranges {
		if port >= r.lo && port <= r.hi {
			return true
		}
	}
	return false
}
