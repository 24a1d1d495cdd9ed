package p2p

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// CheckListenPorts fails clearly when a TCP port in addrs is taken.
// libp2p binds with SO_REUSEPORT (for hole punching), so a second node on
// the same port would start "fine" and share the port with the first; a
// plain bind, which any other holder refuses, finds that out first. Port 0
// is always free.
func CheckListenPorts(addrs []string) error {
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("p2p: listen address %q: %w", a, err)
		}
		if port, err := m.ValueForProtocol(ma.P_TCP); err != nil || port == "0" {
			continue
		}
		network, hostport, err := manet.DialArgs(m)
		if err != nil {
			continue
		}
		ln, err := net.Listen(network, hostport)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("p2p: listen address %s: the port is taken (another coral node running?); set [p2p] listen to another port", a)
			}
			return fmt.Errorf("p2p: listen address %s: %w", a, err)
		}
		ln.Close()
	}
	return nil
}
