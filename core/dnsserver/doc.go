// Package dnsserver is Coral's authoritative nameserver. A visitor's resolver
// that asks for a Coralized name such as www.example.com.nyud.net is sent to a
// few Coral proxies that are alive, that the visitor can reach, and that are
// near it; that is how CoralCDN spread load and kept visitors away from dead
// proxies, its most visible failure.
//
// # Names answered
//
// With zone Z (for example "nyud.net") and nameserver zone N (default
// "ns."+Z, always inside Z):
//
//	Z                          SOA; NS: the nameservers chosen for this resolver
//	<origin>.Z                 A / AAAA of 2-4 live, reachable, nearby proxies,
//	                           TTL 30-60 s (names as in package coralurl:
//	                           <host>.Z, <host>.<port>.Z, <host>[.<port>].https.Z,
//	                           127.0.0.1.8000.Z)
//	<node>.<L2>.<L1>.<L0>.N    A / AAAA of one volunteer nameserver
//	Config.StaticNS names      A / AAAA from configuration (the registered glue)
//	suffixes of valid names    NOERROR without data: com.Z, 8000.Z, https.Z, N,
//	                           <L0>.N. Never NXDOMAIN here (RFC 8020): a resolver
//	                           that minimises QNAMEs asks for these first and
//	                           would otherwise give up on the whole subtree.
//	other names in Z           NXDOMAIN
//	outside Z, other classes   REFUSED
//
// Responses are minimal, as with BIND's minimal-responses: an answer holds
// the records asked for; the authority section holds only the SOA of a
// negative answer; there is no glue, since every nameserver name is in the
// zone and the resolver, already talking to this server, can ask for it.
// CoralCDN put the resolver's NS set (with glue) into every answer; that made
// each query a 10-26× amplifier for spoofed floods. The nameservers near a
// resolver are its answer to NS at the apex instead (resolvers that minimise
// QNAMEs ask for it). Over UDP, no response exceeds MaxAmplification times
// its query: a synthesised set (proxies, the NS set) is cut from its least
// preferred end, anything else is sent empty with TC.
//
// # Nameserver names
//
// A volunteer nameserver (a Proxy with Nameserver set) is named
//
//	<node>.<L2>.<L1>.<L0>.<ns-zone>
//
// <node> is "n" followed by the first 40 bits of SHA-256(proxy ID) in
// lower-case base32hex (9 characters), because peer IDs are case-sensitive and
// DNS labels are not. <L2>, <L1>, <L0> are the node's cluster IDs at the
// regional, continental and global level (Proxy.Cluster[0..2]): lower-cased
// when the ID is a DNS label of at most 12 characters, otherwise "h" followed
// by the first 40 bits of SHA-256(cluster ID) in base32hex; "x" for no cluster.
// Example: n4k2p9s1c.h0v5q2r7e.h77d1mm0a.hq3c0ldr4.ns.nyud.net. Nameservers that
// share a regional cluster share the suffix <L2>.<L1>.<L0>.<ns-zone>, which
// is how an operator reading a trace sees which cluster a resolver settled
// on. Only <node> is used to look a name up, so names stay resolvable while a
// node moves between clusters.
//
// # Choosing proxies
//
// A proxy is a candidate when it was heard from within LiveWindow, or when a
// Prober is configured and a synchronous Ping (ProbeTimeout) succeeds before
// the answer leaves; results are cached for LiveWindow, failures included. An
// address is offered only if the visitor can reach it: public proxies'
// global addresses to everyone; a non-public proxy's global address only to
// visitors in the same /24 (IPv4) or /48 (IPv6); private (RFC 1918, ULA,
// CGNAT) addresses only to private or loopback resolvers; loopback addresses
// only to loopback resolvers; addresses of special-purpose blocks that are
// not globally reachable (198.18.0.0/15, 240.0.0.0/4, fec0::/10, ...) only to
// visitors in the same /24 (/48); unspecified, multicast, broadcast and
// link-local addresses never. core/ipclass classes the addresses (a NAT64
// address as its IPv4 one). The visitor is the EDNS client subnet when the
// query carries a global one, otherwise the resolver.
//
// Candidates are ordered: first those on the visitor's own network; then
// those with an RTT hint for the visitor's network (Hints, IPv4 /24, IPv6 /48
// or the shorter client subnet), nearest first in 10 ms buckets; then the
// rest by how many cluster levels they share with this node (L2, then L1,
// then L0). Ties rotate from query to query for load balance.
//
// # Abuse
//
// UDP responses pass a response rate limiter as BIND's RRL: identical
// responses (query name, type, and answer / no data; NXDOMAIN per zone;
// errors as one) to one client network (IPv4 /24, IPv6 /56) are limited to
// RateLimit.PerSecond; over the limit they are dropped, and every Slip-th one
// is sent empty with TC so that a real resolver retries over TCP, which
// cannot be spoofed and is not limited. Names other than the apex and the
// registered nameservers are synthesised, so their answers and no-data
// responses count as one name per type (as BIND counts a wildcard's): a
// resolver network asking for more new names than the rate is sent to TCP
// for part of the excess. Over UDP no response is larger than
// MaxAmplification times its query's header, question and OPT record.
// Messages that do not parse, responses, and queries with other than one
// question are dropped without a reply; other opcodes than QUERY get
// NOTIMP. A TCP connection may carry any number of queries.
//
// # Speed
//
// Plain A/AAAA queries for Coralized names over UDP are answered in miekg's
// read loop from the raw packet (fast.go); candidate rankings are cached per
// kind of request while the directory snapshot stays the same (select.go).
package dnsserver
