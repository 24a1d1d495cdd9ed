package node

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// serverErrorLog is the visitor and control servers' ErrorLog. net/http
// reports there both the routine (a client's broken TLS attempt, an
// accept error retried) and a handler's panic, after which it closes the
// visitor's connection without an answer: the routine at debug, panics
// at error, so a visitor's "EOF" is never silent in the node's log.
func serverErrorLog(l *slog.Logger) *log.Logger {
	return log.New(serverLogWriter{l}, "", 0)
}

type serverLogWriter struct{ l *slog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelDebug
	if bytes.Contains(p, []byte("panic serving")) {
		level = slog.LevelError
	}
	w.l.Log(context.Background(), level, msg, "source", "net/http")
	return len(p), nil
}
