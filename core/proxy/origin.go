package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// blockedAddrError is returned by the dialer for an address the proxy must
// not connect to.
type blockedAddrError struct {
	addr   netip.Addr
	reason string
}

func (e *blockedAddrError) Error() string {
	return fmt.Sprintf("proxy: refusing to connect to %s: %s address", e.addr, e.reason)
}

var (
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	thisNet   = netip.MustParsePrefix("0.0.0.0/8")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
)

// blockedReason says why an address is not a public unicast origin, or "".
func blockedReason(a netip.Addr) string {
	a = a.Unmap()
	if nat64.Contains(a) {
		// NAT64 embeds an IPv4 address in the last 32 bits.
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.IsUnspecified(), a.Is4() && thisNet.Contains(a):
		return "unspecified"
	case cgnat.Contains(a):
		return "carrier-grade NAT"
	case a.Is4() && reserved4.Contains(a):
		return "reserved"
	}
	return ""
}

// newOriginTransport builds the HTTP transport for origin fetches: no proxy
// from the environment, timeouts on every phase, and (unless allowPrivate) a
// dialer that checks the address actually being connected to, after DNS
// resolution, so a name that re-resolves to 127.0.0.1 is still refused.
func newOriginTransport(timeout time.Duration, allowPrivate bool) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("proxy: unexpected dial address %q: %w", address, err)
			}
			if why := blockedReason(ap.Addr()); why != "" {
				return &blockedAddrError{addr: ap.Addr(), reason: why}
			}
			return nil
		}
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		// Bodies are stored and forwarded exactly as the origin encoded them.
		DisableCompression: true,
	}
}

// originFailure describes why an origin could not be used.
type originFailure struct {
	status      int    // 502, 503, 504 or 403 (refused address)
	title, text string // for the error page
	negative    bool   // remember the origin as unreachable
}

// classify turns a transport error into what the visitor is told and
// whether the origin counts as unreachable for the negative cache.
func classify(err error) originFailure {
	var blocked *blockedAddrError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &blocked):
		return originFailure{http.StatusForbidden, "Origin address refused",
			"The origin resolves to a " + blocked.reason + " address (" + blocked.addr.String() +
				"). Coral only fetches from public Internet addresses.", true}
	case errors.As(err, &dnsErr):
		return originFailure{http.StatusBadGateway, "Origin not found",
			"The origin's host name could not be resolved: " + dnsErr.Err + ".", true}
	case errors.Is(err, syscall.ECONNREFUSED):
		return originFailure{http.StatusBadGateway, "Origin unreachable",
			"The origin server refused the connection.", true}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return originFailure{http.StatusBadGateway, "Origin unreachable",
			"There is no route to the origin server.", true}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return originFailure{http.StatusGatewayTimeout, "Origin timed out",
			"The origin server did not answer in time.", true}
	}
	return originFailure{http.StatusBadGateway, "Origin error",
		"The connection to the origin server failed.", false}
}

// negativeCache remembers unreachable origins (CoralCDN: a flash crowd for a
// dead site must not become a flood of failed connection attempts).
type negativeCache struct {
	mu sync.Mutex
	m  map[string]negativeEntry
}

type negativeEntry struct {
	until time.Time
	fail  originFailure
}

const negativeCacheMax = 10000

func newNegativeCache() *negativeCache { return &negativeCache{m: map[string]negativeEntry{}} }

func (c *negativeCache) get(origin string, now time.Time) (originFailure, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[origin]
	if !ok {
		return originFailure{}, false
	}
	if !now.Before(e.until) {
		delete(c.m, origin)
		return originFailure{}, false
	}
	return e.fail, true
}

func (c *negativeCache) put(origin string, f originFailure, until time.Time, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= negativeCacheMax {
		for k, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < negativeCacheMax {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[origin] = negativeEntry{until: until, fail: f}
}
