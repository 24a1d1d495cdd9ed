// Package ipclass says what kind of address an IP address is: global, or
// one that is not reachable from the Internet (loopback, private, shared
// NAT, link-local, multicast, the special-purpose blocks of the IANA
// registries, ...). It is the one place core decides this: the proxy refuses
// origins at every address that is not Global (a stranger's request must not
// make a volunteer's node fetch from its own machine or home network), the
// nameserver hands out a proxy's address only to visitors who can reach it,
// and locality keeps the addresses a peer can be reached at.
package ipclass

import (
	"net/netip"
	"slices"
)

// Class is the kind of an address.
type Class uint8

// The classes, from the address's own point of view. Every address has
// exactly one.
const (
	Invalid     Class = iota // the zero netip.Addr
	Global                   // reachable from the Internet
	Unspecified              // 0.0.0.0 and ::, "any address"
	Loopback                 // 127.0.0.0/8, ::1
	Private                  // RFC 1918 and IPv6 unique local (fc00::/7)
	SharedNAT                // 100.64.0.0/10, RFC 6598 carrier-grade NAT
	LinkLocal                // 169.254.0.0/16, fe80::/10
	Multicast                // 224.0.0.0/4, ff00::/8
	Broadcast                // 255.255.255.255
	Reserved                 // 240.0.0.0/4; IPv6 outside 2000::/3 not otherwise named
	Special                  // the other blocks not reachable from the Internet (special below)
)

// String is a word for the class; the proxy tells visitors "the origin's
// address is a <word> address".
func (c Class) String() string {
	switch c {
	case Global:
		return "global"
	case Unspecified:
		return "unspecified"
	case Loopback:
		return "loopback"
	case Private:
		return "private"
	case SharedNAT:
		return "carrier-grade NAT"
	case LinkLocal:
		return "link-local"
	case Multicast:
		return "multicast"
	case Broadcast:
		return "broadcast"
	case Reserved:
		return "reserved"
	case Special:
		return "special-purpose"
	}
	return "invalid"
}

// LAN says whether addresses of class c are used inside a home or an
// operator's network (private and carrier-grade NAT space): reachable from
// that network, and a different machine in every other one.
func (c Class) LAN() bool { return c == Private || c == SharedNAT }

// Addressable says whether an address of class c can name one host to
// another: not invalid, unspecified, multicast, broadcast, or link-local
// (which needs the interface's zone, different on every host).
func (c Class) Addressable() bool {
	switch c {
	case Invalid, Unspecified, Multicast, Broadcast, LinkLocal:
		return false
	}
	return true
}

var (
	sharedNAT = netip.MustParsePrefix("100.64.0.0/10")
	reserved4 = netip.MustParsePrefix("240.0.0.0/4")
	unicast6  = netip.MustParsePrefix("2000::/3") // IANA's global unicast space
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// special are the blocks of the IANA special-purpose registries (RFC 6890)
// that are not globally reachable, beyond those with a class of their own.
// They reach a node from interface addresses (a VPN or proxy tool's TUN,
// such as Clash's 198.18.0.1), from configuration and from DNS answers.
//
// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) are deliberately not here and stay Global: tests across
// the repository (test/netns's hosts among them) use them as public
// addresses, and they never appear on a real interface. 3fff::/20, the
// newer IPv6 documentation block, is used by no test and is here.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network" (0.0.0.0 itself is Unspecified)
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments (DS-Lite, NAT64 discovery, ...)
	netip.MustParsePrefix("192.88.99.0/24"), // 6to4 relay anycast (deprecated)
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking; the TUN of desktop proxy tools
	netip.MustParsePrefix("::/96"),          // IPv4-compatible IPv6 (deprecated); :: and ::1 are classed first
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use IPv4/IPv6 translation
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("100:0:0:1::/64"), // dummy IPv6 prefix (RFC 9780)
	netip.MustParsePrefix("2001:2::/48"),    // benchmarking
	netip.MustParsePrefix("2001:10::/28"),   // ORCHID (deprecated)
	netip.MustParsePrefix("2001:20::/28"),   // ORCHIDv2: identifiers, not locators
	netip.MustParsePrefix("3fff::/20"),      // documentation (RFC 9637)
	netip.MustParsePrefix("5f00::/16"),      // SRv6 SIDs
	netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
}

// Of is the class of a. An IPv4-mapped IPv6 address is classed as its IPv4
// address, and so is a NAT64 address (64:ff9b::/96): a NAT64 gateway
// forwards it to the IPv4 address in its last 32 bits. An IPv6 zone is
// ignored.
func Of(a netip.Addr) Class {
	if !a.IsValid() {
		return Invalid
	}
	a = unwrap(a)
	switch {
	case a.IsUnspecified():
		return Unspecified
	case a.IsLoopback():
		return Loopback
	case a.IsMulticast():
		return Multicast
	case a.IsLinkLocalUnicast():
		return LinkLocal
	case a.IsPrivate():
		return Private
	case sharedNAT.Contains(a):
		return SharedNAT
	case a == broadcast:
		return Broadcast
	case reserved4.Contains(a):
		return Reserved
	case slices.ContainsFunc(special, func(p netip.Prefix) bool { return p.Contains(a) }):
		return Special
	case a.Is6() && !unicast6.Contains(a):
		return Reserved
	}
	return Global
}

// unwrap is the address Of classes a by: without its zone, and the IPv4
// address inside an IPv4-mapped or NAT64 address.
func unwrap(a netip.Addr) netip.Addr {
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return a
}
