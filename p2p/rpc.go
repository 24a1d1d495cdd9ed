package p2p

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// call sends one request on a fresh stream and reads one reply. Streams
// may run over relayed (limited) connections. With dial false it only uses
// an existing connection (address lookups must not recurse into lookups).
func (h *Host) call(ctx context.Context, p peer.ID, pid protocol.ID, req, resp any, limit int, timeout time.Duration) error {
	defer h.protect(p, rpcProtectTag)()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := h.emulateDelay(ctx, p); err != nil {
		return fmt.Errorf("p2p: %s to %s: %w", pid, p, err)
	}
	s, err := h.host.NewStream(network.WithNoDial(network.WithAllowLimitedConn(ctx, "coral"), "coral"), p, pid)
	if err != nil {
		return fmt.Errorf("p2p: open %s stream to %s: %w", pid, p, err)
	}
	return h.exchange(ctx, s, p, req, resp, limit)
}

// callDial is call after making sure there is a route to p.
func (h *Host) callDial(ctx context.Context, p peer.ID, pid protocol.ID, req, resp any, limit int, timeout time.Duration) error {
	if err := h.ensureConnected(ctx, p); err != nil {
		return err
	}
	return h.call(ctx, p, pid, req, resp, limit, timeout)
}

func (h *Host) exchange(ctx context.Context, s network.Stream, p peer.ID, req, resp any, limit int) error {
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	// Encode first: a request the peer would reject as oversize must fail
	// here rather than count against us there.
	var buf bytes.Buffer
	if err := WriteMsg(&buf, req); err != nil {
		_ = s.Reset()
		return fmt.Errorf("p2p: %s request to %s: %w", s.Protocol(), p, err)
	}
	if buf.Len() > limit {
		_ = s.Reset()
		return fmt.Errorf("p2p: %s request to %s: %d bytes exceeds the %d-byte limit", s.Protocol(), p, buf.Len(), limit)
	}
	if _, err := s.Write(buf.Bytes()); err != nil {
		_ = s.Reset()
		return h.ioErr(ctx, s, p, "send request", err)
	}
	_ = s.CloseWrite()
	unwatch := h.watchConns([]network.Conn{s.Conn()})
	errMsg, err := readEnvelope(bufio.NewReader(s), resp, limit)
	unwatch()
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			h.scorer.penalise(p, penaltyMalformed, fmt.Sprintf("%s reply: %v", s.Protocol(), err))
		}
		_ = s.Reset()
		return h.ioErr(ctx, s, p, "read reply", err)
	}
	_ = s.Close()
	if errMsg != "" {
		return &RemoteError{Peer: p.String(), Msg: errMsg}
	}
	return nil
}

func (h *Host) ioErr(ctx context.Context, s network.Stream, p peer.ID, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, ErrMalformed) {
		err = cerr
	}
	return fmt.Errorf("p2p: %s %s to %s: %w", s.Protocol(), what, p, err)
}

// streamFailed resets a stream after a failed read; a malformed message
// also counts against the sender.
func (h *Host) streamFailed(s network.Stream, from peer.ID, err error) {
	if errors.Is(err, ErrMalformed) {
		h.scorer.penalise(from, penaltyMalformed, fmt.Sprintf("%s: %v", s.Protocol(), err))
	}
	_ = s.Reset()
}

// recoverStream keeps a bug in a handler from taking the node down: the
// stream is reset and the panic logged. Deferred first in every handler.
func (h *Host) recoverStream(s network.Stream) {
	if r := recover(); r != nil {
		h.log.Error("stream handler panicked", "protocol", s.Protocol(),
			"peer", s.Conn().RemotePeer(), "panic", r, "stack", string(debug.Stack()))
		_ = s.Reset()
	}
}

// maxErrText bounds the error text a handler's failure puts on the wire.
const maxErrText = 1024

// serveRPC installs a one-request-one-reply handler for pid. Requests above
// limit, undecodable ones and ones from a different envelope version reset
// the stream and count against the sender. The handler runs with timeout.
func serveRPC[Req, Resp any](h *Host, pid protocol.ID, limit int, timeout time.Duration,
	fn func(ctx context.Context, from peer.ID, req *Req) (*Resp, error)) {
	h.host.SetStreamHandler(pid, func(s network.Stream) {
		defer h.recoverStream(s)
		from := s.Conn().RemotePeer()
		defer h.protect(from, rpcProtectTag)()
		_ = s.SetDeadline(time.Now().Add(timeout))
		var req Req
		if err := ReadMsg(bufio.NewReader(s), &req, limit); err != nil {
			h.streamFailed(s, from, err)
			return
		}
		ctx, cancel := context.WithTimeout(h.ctx, timeout)
		defer cancel()
		resp, err := fn(ctx, from, &req)
		if err == nil && resp == nil {
			err = errors.New("handler returned no response")
		}
		if err != nil {
			err = writeLimited(s, nil, truncate(err.Error(), maxErrText), limit)
		} else {
			err = writeLimited(s, resp, "", limit)
		}
		if err != nil {
			h.log.Debug("rpc reply failed", "protocol", pid, "peer", from, "err", err)
			_ = s.Reset()
			return
		}
		_ = s.Close()
	})
}

// rpcProtectTag prefixes the connection-manager tags of RPCs in flight: a
// node whose connections pass the high watermark (at 100 nodes every node
// does) trims them, and an RPC cut off mid-exchange marks its peer failed
// for minutes (the DSHT then leaves it out of lookups and clusters).
const rpcProtectTag = "coral-rpc"

// callRPC is the client side of serveRPC.
func callRPC[Req, Resp any](ctx context.Context, h *Host, p peer.ID, pid protocol.ID, limit int, timeout time.Duration, req *Req) (*Resp, error) {
	var resp Resp
	if err := h.callDial(ctx, p, pid, req, &resp, limit, timeout); err != nil {
		return nil, err
	}
	return &resp, nil
}

// writeLimited writes an envelope, replacing a reply the peer would reject
// as oversize by an error reply: a big answer is our problem, not a
// reason for the peer to penalise us.
func writeLimited(w io.Writer, v any, errMsg string, limit int) error {
	var buf bytes.Buffer
	if err := writeEnvelope(&buf, v, errMsg); err != nil {
		return err
	}
	if buf.Len() > limit {
		buf.Reset()
		if err := writeEnvelope(&buf, nil, "reply too large"); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
