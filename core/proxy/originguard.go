package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/ipclass"
)

// originGuard decides which addresses and ports origin fetches may connect
// to. It is asked at connect time, with the address actually being dialled,
// so a name that re-resolves (DNS rebinding) gets no further than one that
// resolved to the refused address at once.
//
// Without allowPrivate it refuses, besides every address ipclass does not
// class as Global, every address of the machine's own interfaces, every
// address in the on-link prefix of one of them (a home LAN with public IPv6
// addresses, a server's neighbours in its provider's subnet), and the
// addresses the node is reached at from outside (selfAddrs: an advertised
// router address, which NAT hairpinning would lead back inside). On-link
// prefixes come from the interface addresses and from the directly
// connected routes (onlink.go).
type originGuard struct {
	ports        coralurl.PortSet
	allowPrivate bool
	selfAddrs    func() []netip.Addr // may be nil; read with the interfaces
	ifaceAddrs   func() ([]net.Addr, error)
	routes       func() []netip.Prefix // directly connected routes
	now          func() time.Time
	resolver     *net.Resolver // origin names, in screen and at dial time
	// fakeIP is told, once, when an origin resolves into 198.18.0.0/15:
	// a desktop proxy tool's fake-IP DNS (Clash, Surge, sing-box) answers
	// every name there, so every fetch of such a node is refused.
	fakeIP     func(netip.Addr)
	fakeIPOnce sync.Once

	mu      sync.Mutex
	readAt  time.Time
	own     map[netip.Addr]bool // on the interfaces
	reached map[netip.Addr]bool // from selfAddrs
	onLink  []netip.Prefix
	readErr error
}

// ifaceRefresh is how long a reading of the interface addresses is used.
// Reading them is one netlink dump; addresses change rarely (a DHCP lease,
// an IPv6 privacy address), and a change is seen within this time.
const ifaceRefresh = 2 * time.Second

// homeIPv6Bits is the IPv6 prefix a home is usually delegated (a /56; some
// ISPs give a /48, most at least a /56): a global address's own /64 is
// on-link, but the home's other subnets -- guest, IoT, a second router --
// sit in the same /56, reachable from this node past the router's inbound
// firewall.
const homeIPv6Bits = 56

// homePrefix is the delegated prefix around a global IPv6 address of this
// machine whose on-link prefix is narrower.
func homePrefix(ip netip.Addr, onLinkBits int) (netip.Prefix, bool) {
	if !ip.Is6() || ip.Is4In6() || ipclass.Of(ip) != ipclass.Global || onLinkBits <= homeIPv6Bits {
		return netip.Prefix{}, false
	}
	p, err := ip.Prefix(homeIPv6Bits)
	return p, err == nil
}

func newOriginGuard(ports coralurl.PortSet, allowPrivate bool, selfAddrs func() []netip.Addr) *originGuard {
	return &originGuard{ports: ports, allowPrivate: allowPrivate, selfAddrs: selfAddrs,
		ifaceAddrs: net.InterfaceAddrs, routes: readOnLinkRoutes, now: time.Now, resolver: net.DefaultResolver}
}

// blockedAddrError is returned for an address the proxy must not connect to.
type blockedAddrError struct {
	addr netip.Addr
	what string // what the visitor is told: "a loopback address", ...
	// why is which rule refused it ("own", "on-link", "reached", or
	// the address's ipclass word). The three node-network rules share one text
	// for visitors, who should not learn the node's prefixes from it.
	why string
}

// ownNetwork is what visitors are told about the node-network rules.
const ownNetwork = "on this node's own machine or network"

func (e *blockedAddrError) Error() string {
	return "proxy: refusing to connect to " + e.addr.String() + ": " + e.what
}

// blockedPortError is returned for a port outside the allowed origin ports.
type blockedPortError struct{ port int }

func (e *blockedPortError) Error() string {
	return "proxy: refusing to connect to port " + strconv.Itoa(e.port) + ": not an allowed origin port"
}

// checkPort refuses ports outside the allowed set.
func (g *originGuard) checkPort(port int) error {
	if !g.ports.Allows(port) {
		return &blockedPortError{port}
	}
	return nil
}

// fakeIPRange is where desktop proxy tools' fake-IP DNS answers
// (RFC 2544's benchmarking block).
var fakeIPRange = netip.MustParsePrefix("198.18.0.0/15")

// check is the connect-time test of one address and port.
func (g *originGuard) check(ap netip.AddrPort) error {
	if err := g.checkPort(int(ap.Port())); err != nil {
		return err
	}
	if g.allowPrivate {
		return nil
	}
	return g.checkAddr(ap.Addr())
}

// checkAddr refuses non-public addresses and the machine's own networks.
func (g *originGuard) checkAddr(a netip.Addr) error {
	a = a.Unmap()
	if c := ipclass.Of(a); c != ipclass.Global {
		if fakeIPRange.Contains(a) && g.fakeIP != nil {
			g.fakeIPOnce.Do(func() { g.fakeIP(a) })
		}
		why := c.String()
		return &blockedAddrError{addr: a, what: article(why) + " " + why + " address", why: why}
	}
	own, reached, onLink := g.interfaces()
	if own[a] {
		return &blockedAddrError{addr: a, what: ownNetwork, why: "own"}
	}
	if reached[a] {
		return &blockedAddrError{addr: a, what: ownNetwork, why: "reached"}
	}
	for _, p := range onLink {
		if p.Contains(a) {
			return &blockedAddrError{addr: a, what: ownNetwork, why: "on-link"}
		}
	}
	return nil
}

// interfaces returns the machine's addresses, the addresses it is reached
// at, and its on-link prefixes, read again when the last reading is older
// than ifaceRefresh. If reading the interfaces fails, the last good reading
// stays in use.
func (g *originGuard) interfaces() (own, reached map[netip.Addr]bool, onLink []netip.Prefix) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.own != nil && now.Sub(g.readAt) < ifaceRefresh && !now.Before(g.readAt) {
		return g.own, g.reached, g.onLink
	}
	g.readAt = now
	g.reached = map[netip.Addr]bool{}
	if g.selfAddrs != nil {
		for _, a := range g.selfAddrs() {
			g.reached[a.Unmap()] = true
		}
	}
	addrs, err := g.ifaceAddrs()
	if err != nil {
		g.readErr = err
		if g.own == nil {
			g.own = map[netip.Addr]bool{}
		}
		return g.own, g.reached, g.onLink
	}
	g.own, g.onLink, g.readErr = map[netip.Addr]bool{}, nil, nil
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		g.own[ip] = true
		ones, _ := ipn.Mask.Size()
		if ip.Is4() && ones > 32 {
			ones -= 96
		}
		if p, err := ip.Prefix(ones); err == nil && ipclass.Of(ip) == ipclass.Global {
			g.onLink = append(g.onLink, p)
		}
		if p, ok := homePrefix(ip, ones); ok {
			g.onLink = append(g.onLink, p)
		}
	}
	g.onLink = append(g.onLink, g.routes()...)
	return g.own, g.reached, g.onLink
}

// screen checks an origin before anything is said about it to the DSHT or
// peers: its port, and (without allowPrivate) the addresses its name
// resolves to now. It refuses only when every address is refused; the
// connect-time check still guards each dial. A lookup that fails is left
// to the dial, which reports it.
func (g *originGuard) screen(ctx context.Context, o coralurl.Origin, timeout time.Duration) error {
	if err := g.checkPort(o.Port); err != nil {
		return err
	}
	if g.allowPrivate {
		return nil
	}
	if a, err := netip.ParseAddr(o.Host); err == nil {
		return g.checkAddr(a)
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := g.resolver.LookupNetIP(lctx, "ip", o.Host)
	if err != nil || len(addrs) == 0 {
		return nil
	}
	var first error
	for _, a := range addrs {
		err := g.checkAddr(a)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func article(word string) string {
	if word != "" && (word[0] == 'a' || word[0] == 'e' || word[0] == 'i' || word[0] == 'o' || word[0] == 'u') {
		return "an"
	}
	return "a"
}

// warnFakeIP tells the volunteer why every fetch fails when the machine's
// resolver is a desktop proxy tool's fake-IP DNS.
func warnFakeIP(log *slog.Logger, a netip.Addr) {
	log.Warn("an origin name resolved to "+a.String()+", a desktop proxy tool's fake-IP address (Clash, Surge, sing-box "+
		"in fake-IP mode): Coral refuses such addresses, so this node cannot fetch from any origin; let coral use real DNS "+
		"(the tool's fake-IP filter or direct mode for the coral process)", "component", "proxy")
}
