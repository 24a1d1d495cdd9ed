package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"
)

// newOriginTransport builds the HTTP transport for origin fetches: no proxy
// from the environment, timeouts on every phase, and a dialer that asks
// guard about the address actually being connected to, after DNS
// resolution, so a name that re-resolves to 127.0.0.1 is still refused.
func newOriginTransport(timeout time.Duration, guard *originGuard, wrap func(host string, c net.Conn) net.Conn) *http.Transport {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: guard.resolver}
	d.Control = func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("proxy: unexpected dial address %q: %w", address, err)
		}
		return guard.check(ap)
	}
	gate := newConnectGate(time.Now)
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := gate.dial(ctx, network, addr, d.DialContext)
			if err != nil || wrap == nil {
				return c, err
			}
			host, _, _ := net.SplitHostPort(addr)
			return wrap(strings.ToLower(host), c), nil
		},
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

// connectGate lets one connection attempt at a time go to an origin
// address not known to work, and hands its failure to the attempts that
// waited: a crowd asking for many URLs of a dead site costs one connect
// (or one DNS timeout), not one per URL, before the negative cache knows
// the site. Once a connect to an address succeeds, connects to it run in
// parallel for connectGateTrust.
type connectGate struct {
	now    func() time.Time
	flight singleflight.Group
	// joined counts callers inside a flight (the one dialling and those
	// waiting on it); tests watch it to know the crowd has gathered.
	joined atomic.Int32

	mu      sync.Mutex
	trusted *simplelru.LRU[string, time.Time] // address -> until when connects skip the gate
}

const (
	connectGateTrust = time.Minute
	connectGateMax   = 10000
)

// errAbandoned is what a flight hands its waiters when the caller that
// dialled gave up (its own context): that says nothing about the origin,
// so each waiter tries again for itself.
var errAbandoned = errors.New("proxy: connect abandoned by its caller")

func newConnectGate(now func() time.Time) *connectGate {
	return &connectGate{now: now, trusted: mustLRU[string, time.Time](connectGateMax)}
}

type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (g *connectGate) dial(ctx context.Context, network, addr string, dial dialFunc) (net.Conn, error) {
	key := network + " " + addr
	for {
		if g.isTrusted(key) {
			c, err := dial(ctx, network, addr)
			return g.finish(key, c, err)
		}
		// Only the caller whose function runs dials; its closure's
		// variables carry the connection back to it alone.
		var conn net.Conn
		var dialErr error
		ran := false
		ch := g.flight.DoChan(key, func() (any, error) {
			ran = true
			conn, dialErr = dial(ctx, network, addr)
			if dialErr != nil && ctx.Err() != nil {
				return nil, errAbandoned
			}
			return nil, dialErr
		})
		g.joined.Add(1)
		var res singleflight.Result
		select {
		case res = <-ch:
			g.joined.Add(-1)
		case <-ctx.Done():
			g.joined.Add(-1)
			go closeIfRan(ch, &ran, &conn) // the dial may still succeed
			return nil, ctx.Err()
		}
		switch {
		case ran:
			return g.finish(key, conn, dialErr)
		case res.Err != nil && !errors.Is(res.Err, errAbandoned):
			return nil, res.Err
		}
		// The attempt worked (or was abandoned): go again, now trusted or
		// as the next attempt.
	}
}

// closeIfRan waits for a flight this caller left and closes the connection
// its own dial made, if it was the one dialling.
func closeIfRan(ch <-chan singleflight.Result, ran *bool, conn *net.Conn) {
	<-ch
	if *ran && *conn != nil {
		(*conn).Close()
	}
}

func (g *connectGate) isTrusted(key string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.trusted.Get(key)
	if ok && !g.now().Before(until) {
		g.trusted.Remove(key)
		return false
	}
	return ok
}

// finish records a successful connect so later ones skip the gate, and
// takes the trust back from an address that just failed.
func (g *connectGate) finish(key string, c net.Conn, err error) (net.Conn, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.trusted.Remove(key)
		return nil, err
	}
	g.trusted.Add(key, g.now().Add(connectGateTrust))
	return c, nil
}

// mustLRU makes a bounded LRU of a constant, positive size.
func mustLRU[K comparable, V any](size int) *simplelru.LRU[K, V] {
	c, err := simplelru.NewLRU[K, V](size, nil)
	if err != nil {
		panic("proxy: " + err.Error()) // only for size <= 0
	}
	return c
}

// originFailure describes why an origin could not be used.
type originFailure struct {
	status      int    // 502, 503, 504 or 403 (refused address)
	title, text string // for the error page
	negative    bool   // remember the origin as unreachable
}

// allowPrivateHint tells the visitor (often the volunteer, trying Coral on
// a local server) how such origins can be allowed.
const allowPrivateHint = " Coral only fetches from public Internet addresses, so that it cannot be " +
	"used to reach the volunteer's own machine or home network. A node run for a LAN or for tests can " +
	"allow such origins with allow_private_origins = true in the [cache] section of its configuration."

// classify turns a transport error into what the visitor is told and
// whether the origin counts as unreachable for the negative cache.
//
// Every failure to get an HTTP response from a reachable address (refused,
// unreachable, timed out, reset, not HTTP) gets the same answer, so the
// node's pages cannot be used to tell a closed port from an open one
// running something else. A refused address or port is a property of the
// URL, not of the origin, and is not remembered as a dead origin.
func classify(err error) originFailure {
	var blocked *blockedAddrError
	var badPort *blockedPortError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &blocked):
		return originFailure{http.StatusForbidden, "Origin address refused",
			"The origin's address " + blocked.addr.String() + " is " + blocked.what + "." + allowPrivateHint, false}
	case errors.As(err, &badPort):
		return originFailure{http.StatusForbidden, "Origin port refused",
			"Coral does not connect to port " + strconv.Itoa(badPort.port) + ". Origins are fetched on ports 80, 443 " +
				"and 1024-65535 except the ports browsers refuse too (the origin_ports setting of the node).", false}
	case errors.As(err, &dnsErr):
		return originFailure{http.StatusBadGateway, "Origin not found",
			"The origin's host name could not be resolved: " + dnsErr.Err + ".", true}
	}
	return originFailure{http.StatusBadGateway, "Origin unreachable",
		"Coral could not get an HTTP response from the origin server.", true}
}

// negativeCache remembers unreachable origins (CoralCDN: a flash crowd for a
// dead site must not become a flood of failed connection attempts). It is
// bounded: beyond negativeCacheMax entries the least recently used goes.
// Expiry is read from the proxy's clock (Options.Now), not the library's.
type negativeCache struct {
	mu sync.Mutex
	m  *simplelru.LRU[string, negativeEntry]
}

type negativeEntry struct {
	until time.Time
	fail  originFailure
}

const negativeCacheMax = 10000

func newNegativeCache() *negativeCache {
	return &negativeCache{m: mustLRU[string, negativeEntry](negativeCacheMax)}
}

func (c *negativeCache) get(origin string, now time.Time) (originFailure, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m.Get(origin)
	if !ok {
		return originFailure{}, false
	}
	if !now.Before(e.until) {
		c.m.Remove(origin)
		return originFailure{}, false
	}
	return e.fail, true
}

func (c *negativeCache) put(origin string, f originFailure, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m.Add(origin, negativeEntry{until: until, fail: f})
}
