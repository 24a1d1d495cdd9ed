package node

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/shaping"
)

// The peer side of the budget: objects sent to other proxies go through
// the upload cap, objects fetched from them through the download cap, both
// counted as their origin site's traffic; a node that does not serve
// refuses peers as if it had no copy, so they go to the next one.

// shapedObjects serves cached objects to peers under the budget.
type shapedObjects struct {
	src    object.Source
	budget *shaping.Budget
}

var _ object.Source = shapedObjects{}

func (s shapedObjects) OpenForPeer(ctx context.Context, key string) (object.Meta, io.ReadCloser, error) {
	if !s.budget.Serving() {
		return object.Meta{}, nil, fmt.Errorf("node: not serving peers now (%s): %w", s.budget.State().Reason, object.ErrNotFound)
	}
	m, body, err := s.src.OpenForPeer(ctx, key)
	if err != nil {
		return m, body, err
	}
	return m, &shapedBody{ReadCloser: body, ctx: ctx, site: coralurl.SiteOf(m.URL), pass: s.budget.Send}, nil
}

// shapedBody waits for the cap after each read: the bytes just read are
// the ones about to go out (or that just came in).
type shapedBody struct {
	io.ReadCloser
	ctx  context.Context
	site string
	pass func(ctx context.Context, site string, n int) error
}

func (b *shapedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p[:min(len(p), sendPiece)])
	if n > 0 {
		if werr := b.pass(b.ctx, b.site, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// shapedConn is a connection to an origin: what it reads comes through the
// download cap as the origin's traffic; what it writes (requests) is
// counted, not held back.
type shapedConn struct {
	net.Conn
	site   string
	budget *shaping.Budget
}

func (c *shapedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p[:min(len(p), sendPiece)])
	if n > 0 {
		if werr := c.budget.Receive(context.Background(), c.site, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (c *shapedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.budget.CountSent(c.site, int64(n))
	return n, err
}

// originConn is proxy.Options.OriginConn.
func (n *Node) originConn(host string, c net.Conn) net.Conn {
	return &shapedConn{Conn: c, site: host, budget: n.budget}
}
