package locality

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// MeasureListener wraps ln so that, when an accepted TCP connection closes,
// observe gets the visitor's address and the kernel's smoothed RTT of the
// connection (TCP_INFO; Linux only — elsewhere observe is never called).
// Reading it at close uses every sample the connection produced, not only
// the handshake. The wrapped connection keeps *net.TCPConn's methods, so
// net/http still uses sendfile and half-close.
func MeasureListener(ln net.Listener, observe func(visitor netip.Addr, rtt time.Duration)) net.Listener {
	if !kernelRTTSupported || observe == nil {
		return ln
	}
	return &measuredListener{Listener: ln, observe: observe}
}

type measuredListener struct {
	net.Listener
	observe func(netip.Addr, time.Duration)
}

func (l *measuredListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return &measuredConn{TCPConn: tc, observe: l.observe}, nil
}

type measuredConn struct {
	*net.TCPConn
	observe func(netip.Addr, time.Duration)
	once    sync.Once
}

func (c *measuredConn) Close() error {
	c.once.Do(func() {
		rtt, ok := kernelRTT(c.TCPConn)
		if !ok {
			return
		}
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
			c.observe(ap.Addr().Unmap(), rtt)
		}
	})
	return c.TCPConn.Close()
}
