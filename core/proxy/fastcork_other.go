//go:build !linux

package proxy

import "net"

// cork is Linux's TCP_CORK; elsewhere the head goes in its own segment.
func cork(net.Conn, bool) {}
