package proxy

import (
	"net"
	"syscall"
)

// cork holds back (on) or releases (off) a TCP connection's partial
// segments, so a response head and the start of its body sent with
// sendfile leave in full segments, as nginx's tcp_nopush does.
func cork(c net.Conn, on bool) {
	sc, ok := c.(interface {
		SyscallConn() (syscall.RawConn, error)
	})
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	v := 0
	if on {
		v = 1
	}
	_ = rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CORK, v) })
}
