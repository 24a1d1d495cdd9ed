package p2p

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotTheNetwork is why a node that reached members could not join them:
// they answered, but refused the private-network handshake. The network
// key is derived from the secret and the operator key (NetworkPSK), so
// this is a wrong secret or a wrong (or missing, or extra) operator key.
var ErrNotTheNetwork = errors.New("no member accepted the connection: the invite's secret or operator key is not the network's -- ask a member for a fresh invite (coral invite)")

// handshakeRefused reports whether a dial reached a listener that refused
// the security handshake. Behind the private-network protector a peer
// holding another key reads our handshake as noise, so libp2p's upgrader
// fails with this wording (it has no error type for it). Something that
// is not a Coral node listening at a bootstrap address fails the same way;
// "ask for a fresh invite" is the right advice then too.
func handshakeRefused(err error) bool {
	return err != nil && strings.Contains(err.Error(), "failed to negotiate security protocol")
}

// notTheNetwork words a dial error that handshakeRefused recognises.
func notTheNetwork(err error) error {
	if !handshakeRefused(err) {
		return err
	}
	return fmt.Errorf("%w (%v)", ErrNotTheNetwork, err)
}

// noteJoin records the outcome of a join: ErrNotTheNetwork when nobody
// accepted and at least one member refused the handshake; cleared once a
// join connects. A join without either proves nothing and changes nothing:
// a dial with the wrong key can also stall until its timeout, when the
// peer reads our noise as the start of a long message.
func (h *Host) noteJoin(dialled, connected, refused int) {
	if connected > 0 {
		h.joinProblem.Store(nil)
		return
	}
	if refused == 0 {
		return
	}
	msg := ErrNotTheNetwork.Error()
	if h.joinProblem.Swap(&msg) == nil { // once, not at every retry while alone
		h.log.Warn(msg, "dialled", dialled, "refused_handshake", refused)
	}
}

// JoinProblem is why the node is not on its network when it can say
// (ErrNotTheNetwork's text), "" while it has peers or does not know.
func (h *Host) JoinProblem() string {
	p := h.joinProblem.Load()
	if p == nil || len(h.host.Network().Peers()) > 0 {
		return ""
	}
	return *p
}
