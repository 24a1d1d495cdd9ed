package control

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
)

// hostGuard refuses requests whose Host header is not this machine by a
// name no one else controls: a loopback name or address, or the address
// the listener was configured on. That defeats DNS rebinding, where a web
// page re-points its own name at 127.0.0.1 and then reads the status page
// (same origin as far as the browser knows) with the Host still its own.
type hostGuard struct {
	mu    sync.RWMutex
	names map[string]bool // allowed host names and addresses, canonical
	any   bool            // listening on every address: the machine's own addresses pass
}

// AllowHost adds the host of a listen address (host:port) to the names
// the control listener answers to besides loopback ones. An unspecified
// host (":8081", "0.0.0.0:8081") admits every address of this machine.
func (s *Server) AllowHost(listen string) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	g := &s.hosts
	g.mu.Lock()
	defer g.mu.Unlock()
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		g.any = true
		return
	}
	if g.names == nil {
		g.names = map[string]bool{}
	}
	g.names[canonicalHost(host)] = true
}

// allowed reports whether a request's Host names this machine.
func (g *hostGuard) allowed(hostHeader string) bool {
	host := hostHeader
	if h, _, err := net.SplitHostPort(hostHeader); err == nil {
		host = h
	}
	host = canonicalHost(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true // RFC 6761: always loopback, never resolved through DNS
	}
	ip, err := netip.ParseAddr(host)
	if err == nil && ip.IsLoopback() {
		return true
	}
	g.mu.RLock()
	named, any := g.names[host], g.any
	g.mu.RUnlock()
	return named || (any && err == nil && isLocalAddr(ip))
}

// canonicalHost lower-cases a host, drops a trailing dot and IPv6 brackets,
// and writes addresses in their one canonical form.
func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Unmap().String()
	}
	return h
}

// isLocalAddr reports whether ip is an address of one of this machine's
// interfaces.
func isLocalAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Unmap() == ip.Unmap() {
			return true
		}
	}
	return false
}

// refuseHost answers a request for another host with 421 Misdirected
// Request.
func refuseHost(w http.ResponseWriter, r *http.Request) {
	http.Error(w, "control: this is the control listener of a Coral node; it answers only to localhost, "+
		"loopback addresses and its own listen address, not to Host "+quoteHost(r.Host), http.StatusMisdirectedRequest)
}

// quoteHost keeps an attacker's Host short and printable in the answer.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "..."
	}
	return strings.ToValidUTF8(`"`+h+`"`, "?")
}
