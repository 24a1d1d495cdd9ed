package proxy

import (
	"context"
	"io"
	"net"
	"os"
)

// Every byte written on a visitor's connection goes through the node's
// upload budget there, at the connection (fastConn), as the traffic of the
// site whose response it is: the fast path's answers, and everything
// net/http writes — status lines and headers (all of a HEAD or a 304),
// bodies (sendfile included), refusals, redirects and error pages. So the
// upload cap and the monthly quota see what the visitor's line sees, and
// no handler can write around them. The handler names the site of the
// response it writes (SetSite); net/http answers one request of a
// connection at a time, heads and bodies both written before the next is
// read, so the name holds for every write of that response.

// Uplink is the node's upload budget as a visitor's connection uses it.
type Uplink interface {
	// Allow waits until n bytes of site may be sent under the upload cap
	// (sites share a cap by weight), without counting them.
	Allow(ctx context.Context, site string, n int) error
	// Sent counts n bytes sent to visitors of site.
	Sent(site string, n int64)
	// Capped says whether Allow may hold bytes back now. While it is
	// false the connection writes at once (and sendfile) and counts after.
	Capped() bool
}

// shapedPiece is the most written to a visitor between two Allows while a
// cap is in force; sendfileChunk the most sent with one sendfile before
// the cap is looked at again, so a cap that comes into force during a
// download slows it within a chunk.
const (
	shapedPiece   = 16 << 10
	sendfileChunk = 1 << 20
)

type connKey struct{}

// ConnContext is the visitor server's ConnContext (http.Server): it makes
// the connection reachable from its requests' contexts, for SetSite.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*fastConn); ok {
		return context.WithValue(ctx, connKey{}, fc)
	}
	return ctx
}

// SetSite names the site whose response the handler of ctx's request is
// about to write: the bytes written on its connection until the next
// request count for it. Nothing when the connection is not a FastListener's
// (installed with ConnContext).
func SetSite(ctx context.Context, site string) {
	if fc, ok := ctx.Value(connKey{}).(*fastConn); ok {
		fc.respSite.Store(&site)
	}
}

// responseSite is the site net/http's writes count for now.
func (c *fastConn) responseSite() string {
	if s := c.respSite.Load(); s != nil {
		return *s
	}
	return ""
}

// capped says whether writes are held back by the upload cap now.
func (c *fastConn) capped() bool { return c.l.up != nil && c.l.up.Capped() }

// sent counts n bytes written for site.
func (c *fastConn) sent(site string, n int) {
	if c.l.up != nil && n > 0 {
		c.l.up.Sent(site, int64(n))
	}
}

// send writes p for site under the upload cap and the write bound, and
// counts what it wrote: in one write when no cap is in force, else piece
// by piece as the cap allows.
func (c *fastConn) send(site string, p []byte) (int, error) {
	if !c.capped() {
		n, err := c.writeBounded(p)
		c.sent(site, n)
		return n, err
	}
	written := 0
	for written < len(p) {
		piece := p[written:min(len(p), written+shapedPiece)]
		if err := c.l.up.Allow(c.ctx, site, len(piece)); err != nil {
			return written, err
		}
		n, err := c.writeBounded(piece)
		written += n
		c.sent(site, n)
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// ReadFrom keeps sendfile for net/http's responses from files (a stored
// body's section, an io.LimitedReader of its file) while no cap is in
// force, a chunk at a time so that a cap set meanwhile takes over within a
// chunk; under a cap, and for anything else, it copies through Write.
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
	site := c.responseSite()
	var sent int64
	var buf []byte
	for lr.N > 0 {
		want := min(lr.N, sendfileChunk)
		var n int64
		var err error
		if c.capped() {
			if buf == nil {
				buf = make([]byte, shapedPiece)
			}
			n, err = io.CopyBuffer(struct{ io.Writer }{c}, io.LimitReader(lr, want), buf)
		} else {
			n, err = c.sendfile(rf, lr, want)
			c.sent(site, int(n))
		}
		sent += n
		if err != nil || n < want { // an error, or the file ended early
			return sent, err
		}
	}
	return sent, nil
}

// sendfile sends up to want bytes of lr with the kernel's sendfile, under
// the write bound. After a sendfile that timed out, it goes on only if
// the reader stands exactly past the bytes sent: never a byte lost or
// sent twice.
func (c *fastConn) sendfile(rf io.ReaderFrom, lr *io.LimitedReader, want int64) (int64, error) {
	chunk := &io.LimitedReader{R: lr.R, N: want}
	var sent int64
	err := c.bounded(func() (int64, error) {
		left := chunk.N
		n, err := rf.ReadFrom(chunk)
		sent += n
		if err != nil && chunk.N != left-n {
			return 0, err // read more than it sent: cannot go on
		}
		return n, err
	})
	lr.N -= want - chunk.N
	return sent, err
}
