package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/coralcdn/coral/app/control"
)

// maxEvents bounds the warnings kept for the Log tab and the status page.
const maxEvents = 100

// eventLog keeps the node's recent warnings for people: the log goes to a
// terminal nobody watches when the node runs from the desktop.
type eventLog struct {
	mu     sync.Mutex
	events []control.Event
}

// tee wraps next so that every warning or error also lands in the log.
func (l *eventLog) tee(next slog.Handler) slog.Handler { return &teeHandler{next: next, log: l} }

func (l *eventLog) add(e control.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) == maxEvents {
		l.events = append(l.events[:0], l.events[1:]...)
	}
	l.events = append(l.events, e)
}

func (l *eventLog) list() []control.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]control.Event(nil), l.events...)
}

type teeHandler struct {
	next      slog.Handler
	log       *eventLog
	attrs     []slog.Attr
	component string
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.log.add(h.event(r))
	}
	if !h.next.Enabled(ctx, r.Level) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// event words a record: its message and attributes, URLs without their
// queries (the status page is readable by anything on this machine).
func (h *teeHandler) event(r slog.Record) control.Event {
	e := control.Event{Time: r.Time, Level: strings.ToLower(r.Level.String()), Component: h.component, Message: r.Message}
	var details []string
	add := func(a slog.Attr) bool {
		if a.Key == "component" {
			e.Component = a.Value.String()
			return true
		}
		v := a.Value.String()
		if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
			v = withoutQuery(v)
		}
		details = append(details, fmt.Sprintf("%s: %s", a.Key, v))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if len(details) > 0 {
		e.Message += " (" + strings.Join(details, ", ") + ")"
	}
	if len(e.Message) > 400 {
		e.Message = e.Message[:400] + "…"
	}
	return e
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = nil
	for _, a := range append(append([]slog.Attr(nil), h.attrs...), as...) {
		if a.Key == "component" {
			c.component = a.Value.String()
			continue
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}
