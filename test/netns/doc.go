// Package netns tests Coral on separate network stacks: three Linux network
// namespaces joined by veth pairs to a bridge, one real `coral serve` process
// in each, and an iptables cut between two of them, so the non-transitive
// link CoralCDN had to route around is reproduced with real sockets, real
// packets and real drops. The tests need root, iproute2 and iptables; they
// skip with the reason otherwise. The package has no non-test code.
package netns
