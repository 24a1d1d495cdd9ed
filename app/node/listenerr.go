package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// listenError names the config key to change when a listener cannot bind,
// in the words the p2p port check uses: a volunteer reads "the port is
// taken", not "bind: address already in use".
func listenError(section, addr string, err error) error {
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("node: [%s] listen %s: the port is taken (another coral node or server running?); set [%s] listen to another port", section, addr, section)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("node: [%s] listen %s: a port below 1024 needs root or the CAP_NET_BIND_SERVICE capability (README, \"Port 53 (and 80) without root\"), or set [%s] listen to a port above 1023", section, addr, section)
	}
	return fmt.Errorf("node: %s listener %s: %w", section, addr, err)
}

// warnOpenControl says so when the control listener is reachable from
// other machines: the status page, /api/status and /metrics need no token
// (only changes do), so the node's traffic, peers and recent URLs would be
// open to the network. README asks for loopback; this is the reminder.
func (n *Node) warnOpenControl() {
	host, _, err := net.SplitHostPort(n.controlLn.Addr().String())
	if err != nil {
		return
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return
	}
	n.log.Warn("the control listener is reachable from other machines: anyone who reaches it reads the status page, /api/status and /metrics (changes still need the token); set [control] listen to 127.0.0.1:PORT unless that is meant",
		"listen", n.cfg.Control.Listen)
}
