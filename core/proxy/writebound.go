package proxy

import (
	"errors"
	"os"
	"time"
)

// Writes to visitors are bounded by progress, not by time in all. The
// http.Server has no WriteTimeout (a big download streams for as long as it
// needs), so without a bound a visitor that asks for a large object and
// never reads would hold a goroutine and a connection forever, and, for a
// body in a file, the store's version of it (a replaced or evicted body
// stays on disk, beyond the store's MaxBytes, until its last reader is
// done). So every write on a visitor's connection (fastConn: the fast
// path's, and net/http's for every response, head and body, sendfile
// included) renews a write deadline of FastTimeouts.Write first, and a
// write that times out having sent something goes on under a new one. A
// visitor that takes bytes, however slowly, is never cut off; one that
// takes none for the bound is disconnected, and its handler lets go of
// what it was sending.

// VisitorWriteTimeout is the default bound: how long a write to a visitor
// may go without the visitor taking a byte.
const VisitorWriteTimeout = 60 * time.Second

// renewWrite moves the write deadline to the bound from now, unless a
// Close is waiting for the fast path's writes (its grace stands).
func (c *fastConn) renewWrite() {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if !c.closing {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.l.t.Write))
	}
}

// timedOut reports whether err is a write deadline's.
func timedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// bounded runs write, which sends what is left of its bytes and reports how
// many it sent, under the write bound until it is done: again after a
// timeout that sent something.
func (c *fastConn) bounded(write func() (int64, error)) error {
	for {
		c.renewWrite()
		n, err := write()
		if err == nil || n == 0 || !timedOut(err) {
			return err
		}
	}
}

// Write is net/http's write of a response: counted and shaped for the
// response's site (uplink.go), under the write bound.
func (c *fastConn) Write(p []byte) (int, error) {
	return c.send(c.responseSite(), p)
}

// writeBounded writes p under the write bound.
func (c *fastConn) writeBounded(p []byte) (int, error) {
	sent := 0
	err := c.bounded(func() (int64, error) {
		n, err := c.Conn.Write(p[sent:])
		sent += n
		return int64(n), err
	})
	return sent, err
}
