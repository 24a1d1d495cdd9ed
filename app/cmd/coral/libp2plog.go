package main

import (
	"context"
	"log/slog"
	"strings"
)

// closedLinkNoise turns libp2p's warnings about a peer's connection going
// away mid-exchange into debug lines. libp2p warns whenever identify runs
// on a connection that closes under it -- a peer that quit, a relayed link
// Coral closes once the direct one is open -- which on a busy node is
// several lines an hour that need no action and hide the ones that do (a
// 100-node crowd logged 523, every one of them a closed connection).
type closedLinkNoise struct {
	slog.Handler
	logger string // libp2p's "logger" attribute: its subsystem
}

// noisyWhenClosed are the libp2p subsystems whose warnings about closed
// connections are demoted.
var noisyWhenClosed = map[string]bool{"net/identify": true}

// closedConnection are what libp2p's errors say when the connection went.
var closedConnection = []string{"connection closed", "stream reset", "connection reset by peer", "broken pipe", "EOF"}

func (h closedLinkNoise) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := closedLinkNoise{Handler: h.Handler.WithAttrs(attrs), logger: h.logger}
	for _, a := range attrs {
		if a.Key == "logger" {
			c.logger = a.Value.String()
		}
	}
	return c
}

func (h closedLinkNoise) WithGroup(name string) slog.Handler {
	return closedLinkNoise{Handler: h.Handler.WithGroup(name), logger: h.logger}
}

func (h closedLinkNoise) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && noisyWhenClosed[h.logger] && aboutClosedConnection(r) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

// aboutClosedConnection reports whether r's error says the connection
// closed or was reset.
func aboutClosedConnection(r slog.Record) bool {
	closed := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "err" && a.Key != "error" {
			return true
		}
		msg := a.Value.String()
		for _, s := range closedConnection {
			if strings.Contains(msg, s) {
				closed = true
			}
		}
		return !closed
	})
	return closed
}
