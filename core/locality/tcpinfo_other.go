//go:build !linux

package locality

import (
	"net"
	"time"
)

const kernelRTTSupported = false

func kernelRTT(*net.TCPConn) (time.Duration, bool) { return 0, false }
