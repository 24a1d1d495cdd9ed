// Package p2p is Coral's libp2p plumbing: it builds the node's libp2p host
// (admission by the network secret, NAT traversal, relays, connection and
// resource limits), carries DSHT RPCs over versioned streams (implementing
// dsht.Network) and moves cached objects between proxies over
// /coral/fetch streams with length and hash verification.
//
// Only TCP is used: admission relies on libp2p's private-network (pnet)
// protector, which wraps the raw byte stream of a connection with a cipher
// keyed by the pre-shared network secret. QUIC (and WebTransport/WebRTC)
// bring their own TLS handshake below libp2p's upgrader, so pnet cannot wrap
// them and go-libp2p refuses to combine them with a PSK.
package p2p
