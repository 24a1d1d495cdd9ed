package node

import (
	"errors"
	"fmt"
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
