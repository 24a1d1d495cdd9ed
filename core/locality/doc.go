// Package locality tells Coral's nameserver which proxies are alive, where
// visitors can reach them, and which are near a visitor. It is the
// cross-node half of core/dnsserver's Directory and Hints; it knows nothing
// of libp2p, and reaches the DSHT through two one-method interfaces.
//
// # Directory: live proxies and their addresses
//
// Every node tells each connected peer about its proxy in an Announcement
// (sent over a small libp2p protocol, /coral/info, on connect and then
// every few seconds as a heartbeat: the Locator runs it through the Peers
// interface p2p.Host implements; app/node only wires them). Directory keeps what it heard
// and when, and lists a peer as heard from only while its latest exchange
// succeeded: one failed heartbeat after a success overrides the success
// (Chord's liveness rule), so the nameserver pings it synchronously before
// handing it out, or leaves it out; a second failure in a row leaves it out
// without pinging (a hung proxy's ping times out, and would delay every
// answer that ranks it). A peer whose connection closes is forgotten at
// once. The effective liveness window is therefore the
// heartbeat period plus its timeout for a hung proxy, and the time the
// kernel takes to close the connection for a crashed one.
//
// Addresses are the peer's own claims, filtered by where this node sees the
// peer from (ProxyAddrs): loopback addresses only from a peer on this
// machine, private (LAN) addresses only from a peer seen at a private or
// loopback address, global addresses always (members hold the network
// secret). A proxy that listens on every address also gets the address this
// node sees it at.
//
// # Hints: RTT from proxies to visitor networks
//
// A proxy measures the kernel's smoothed TCP RTT of each visitor connection
// it served (MeasureListener), keeps the smallest per visitor network
// (IPv4 /24, IPv6 /48; private and loopback visitors are not recorded) in a
// Meter, and periodically puts a Hint "proxy P is RTT away from network N"
// into the DSHT under HintKey(N), renewed while visitors keep coming and
// left to expire when they stop. Hints looks the values up for a resolver's
// network (or the EDNS client subnet's) with a cache, answering within the
// caller's deadline from what it has and finishing slow lookups in the
// background; the number of DSHT lookups it starts is rate-limited, so
// queries for random client subnets cannot turn into a flood of lookups.
//
// Hints are keyed by the visitor's network, and the nameserver looks them up
// by the resolver's network or the client subnet: they match when the
// resolver sends EDNS client subnet or sits in its users' network, as
// CoralCDN assumed. Values are short text ("coral-hint/1 <peer> <ms>") so an
// operator can read and plant them through the control API's DSHT
// endpoints.
package locality
