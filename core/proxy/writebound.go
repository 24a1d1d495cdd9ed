package proxy

import (
	"errors"
	"io"
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

// Write is net/http's write of a response, under the write bound.
func (c *fastConn) Write(p []byte) (int, error) {
	sent := 0
	err := c.bounded(func() (int64, error) {
		n, err := c.Conn.Write(p[sent:])
		sent += n
		return int64(n), err
	})
	return sent, err
}

// ReadFrom keeps sendfile for net/http's responses from files (a stored
// body's section, an io.LimitedReader of its file), under the write bound;
// anything else is copied through Write. After a sendfile that timed out,
// it goes on only if the reader stands exactly past the bytes sent: never
// a byte lost or sent twice.
func (c *fastConn) ReadFrom(r io.Reader) (int64, error) {
	rf, canSend := c.Conn.(io.ReaderFrom)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		_, inFile := lr.R.(*os.File)
		canSend = canSend && inFile
	}
	if !canSend || !limited {
		return io.Copy(struct{ io.Writer }{c}, r)
	}
	var sent int64
	err := c.bounded(func() (int64, error) {
		left := lr.N
		n, err := rf.ReadFrom(lr)
		sent += n
		if err != nil && lr.N != left-n {
			return 0, err // read more than it sent: cannot go on
		}
		return n, err
	})
	return sent, err
}
