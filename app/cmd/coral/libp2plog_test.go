package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// libp2p's identify warnings about connections that went away are kept out
// of a volunteer's log; its other warnings, and other subsystems' warnings
// about closed connections, still show. The errors are the texts a
// 100-node crowd logged.
func TestClosedLinkNoiseIsDebugOnly(t *testing.T) {
	cases := []struct {
		name   string
		logger string
		msg    string
		err    error
		level  slog.Level // the volunteer's libp2p level
		want   string     // "" when nothing is printed
	}{
		{"identify on a reset connection", "net/identify", "error reading identify message",
			errors.New("stream reset: stream reset: connection closed: EOF"), slog.LevelWarn, ""},
		{"identify on a connection closed here", "net/identify", "error reading identify message",
			errors.New("connection closed (local): code: 0x0: transport error: sent go away, code: 0"), slog.LevelWarn, ""},
		{"identify's open failed: peer reset", "net/identify", "failed to identify peer",
			errors.New("failed to open new stream: read tcp4 127.0.5.6:40023->127.0.3.19:39835: read: connection reset by peer"), slog.LevelWarn, ""},
		{"identify's real trouble", "net/identify", "error reading identify message",
			errors.New("message too large"), slog.LevelWarn, "level=WARN"},
		{"another subsystem", "swarm2", "dial failed",
			errors.New("connection closed"), slog.LevelWarn, "level=WARN"},
		{"asked for debug", "net/identify", "error reading identify message",
			errors.New("stream reset"), slog.LevelDebug, "level=DEBUG"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := closedLinkNoise{Handler: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level})}
			l := slog.New(h.WithAttrs([]slog.Attr{slog.String("logger", tc.logger)}))
			l.Warn(tc.msg, "err", tc.err)
			got := buf.String()
			switch {
			case tc.want == "" && got != "":
				t.Errorf("printed %q", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("printed %q, want a line with %q", got, tc.want)
			case tc.want != "" && !strings.Contains(got, tc.msg):
				t.Errorf("printed %q, lost the message", got)
			}
		})
	}
}
