package proxy

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/coralcdn/coral/core/ipclass"
)

// On-link routes. The prefixes of the interface addresses miss networks
// the machine reaches directly without an address of the same length in
// them: a DHCPv6 /128 address under a /64 that router advertisements put on
// the link, a directly connected route added by hand or by DHCP. The
// kernel's routing table lists them as routes without a gateway. Very
// short ones (a default route over a point-to-point link, a VPN's /1
// halves) are left out: they stand for "the Internet", not a network.

const (
	rtfGateway  = 0x2
	rtfReject   = 0x200
	minOnLink4  = 8
	minOnLink6  = 32
	procRoute4  = "/proc/net/route"
	procRoute6  = "/proc/net/ipv6_route"
	routeFields = 11
)

// readOnLinkRoutes reads the main routing tables of Linux; elsewhere, or
// when they cannot be read, it returns nothing.
func readOnLinkRoutes() []netip.Prefix {
	var out []netip.Prefix
	if f, err := os.Open(procRoute4); err == nil {
		out = append(out, parseRoutes4(f)...)
		f.Close()
	}
	if f, err := os.Open(procRoute6); err == nil {
		out = append(out, parseRoutes6(f)...)
		f.Close()
	}
	return out
}

// parseRoutes4 reads /proc/net/route: a header, then per route the
// interface, destination, gateway, flags, ..., mask, with addresses as
// host-order hexadecimal words.
func parseRoutes4(r io.Reader) []netip.Prefix {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < routeFields || f[0] == "lo" {
			continue
		}
		dst, ok1 := word4(f[1])
		gw, ok2 := word4(f[2])
		mask, ok3 := word4(f[7])
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if !ok1 || !ok2 || !ok3 || err != nil || flags&(rtfGateway|rtfReject) != 0 || !gw.IsUnspecified() {
			continue
		}
		m := mask.As4()
		bits := 0
		for _, b := range m {
			bits += popcount(b)
		}
		if p, err := dst.Prefix(bits); err == nil && bits >= minOnLink4 && ipclass.Of(p.Addr()) == ipclass.Global {
			out = append(out, p)
		}
	}
	return out
}

// parseRoutes6 reads /proc/net/ipv6_route: destination, its prefix length
// (hex), source, its length, next hop, metric, refcount, use, flags,
// interface.
func parseRoutes6(r io.Reader) []netip.Prefix {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[9] == "lo" {
			continue
		}
		dst, ok1 := addr16(f[0])
		nh, ok2 := addr16(f[4])
		plen, err1 := strconv.ParseUint(f[1], 16, 8)
		flags, err2 := strconv.ParseUint(f[8], 16, 32)
		if !ok1 || !ok2 || err1 != nil || err2 != nil || flags&(rtfGateway|rtfReject) != 0 || !nh.IsUnspecified() {
			continue
		}
		if p, err := dst.Prefix(int(plen)); err == nil && plen >= minOnLink6 && ipclass.Of(p.Addr()) == ipclass.Global {
			out = append(out, p)
		}
	}
	return out
}

// word4 decodes an IPv4 address printed as a host-order hex word.
func word4(s string) (netip.Addr, bool) {
	v, err := strconv.ParseUint(s, 16, 32)
	if err != nil || len(s) != 8 {
		return netip.Addr{}, false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return netip.AddrFrom4(b), true
}

// addr16 decodes an IPv6 address printed as 32 hex digits.
func addr16(s string) (netip.Addr, bool) {
	var b [16]byte
	if len(s) != 32 {
		return netip.Addr{}, false
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(b), true
}

func popcount(b byte) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}
