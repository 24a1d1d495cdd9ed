// Package dsht is Coral's hierarchical distributed sloppy hash table: the
// index through which proxies find each other's copies (DESIGN.md §3,
// CoralCDN NSDI 2004).
//
// A node belongs to one cluster per level: level 0 is global, higher levels
// group nodes whose RTTs are within a threshold (20 ms and 60 ms by
// default). Each level is a Kademlia network of its own with per-level
// k-bucket tables; a node has the same position in all of them, so a lookup
// that finds nothing in the local cluster continues one level up from the
// closest node it reached.
//
// Storage is sloppy and soft: a put walks toward the key and stores at the
// closest node that is not both full (l values with long TTLs) and loaded
// (β requests a minute), so a hot key spreads over the nodes leading to its
// root instead of melting the root; values expire unless their owners renew
// them. Each put also stores copies at the next closest nodes down its path
// (Config.Copies), so a value outlives a holder that dies before the owner
// renews it. Put+get inserts and returns the values met, as a test-and-set;
// PutGetNear is its one-round form for when lookups time out.
//
// Lookups are iterative with a window of outstanding RPCs and adaptive
// timeouts. A cache of recently live and unreachable nodes follows MIT
// Chord's rule that a third party's claim that a node is alive does not
// override a more recent failure seen directly; and when a node is
// unreachable only from here (non-transitive connectivity), requests are
// relayed by the nodes that returned it.
//
// The package knows nothing of libp2p: it talks through the Network
// interface, implemented by package p2p over libp2p streams and by package
// dshtsim, which runs thousands of nodes in virtual time.
package dsht
