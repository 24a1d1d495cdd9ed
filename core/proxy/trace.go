package proxy

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Request tracing. A visitor that sends "X-Coral-Debug: 1" (or "trace") gets
// an X-Coral-Trace response header describing the path its request took:
// the DSHT levels searched, the referrals tried and how each ended, and where
// the body came from. The same description of the last requests is kept
// for the status page (RecentTraces) whether or not anyone asked.
//
// The steps of a miss are recorded by the fetch, which several visitors
// may share and which runs on its own goroutine; each visitor's trace links
// to it, so a visitor that joined a download in progress sees that
// download's path too.

const (
	// DebugHeader asks for TraceHeader on the response.
	DebugHeader = "X-Coral-Debug"
	// TraceHeader carries the trace.
	TraceHeader = "X-Coral-Trace"

	recentTraces   = 50
	maxTraceHeader = 2048
	maxTraceSteps  = 32
)

// Trace records the path of one request or one fetch. Every method is safe
// for concurrent use and does nothing on a nil *Trace, so code recording into
// the trace of a context never needs to check whether tracing is on.
type Trace struct {
	mu     sync.Mutex
	steps  []traceStep
	source string
	result string
}

type traceStep struct {
	text string
	sub  *Trace // a shared fetch's trace, rendered in place
}

type traceKey struct{}

// WithTrace returns ctx carrying t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

// TraceFrom returns the trace ctx carries, or nil (whose methods do nothing).
func TraceFrom(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

// Step records one step, formatted like fmt.Sprintf.
func (t *Trace) Step(format string, args ...any) {
	if t == nil {
		return
	}
	s := fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.steps) < maxTraceSteps {
		t.steps = append(t.steps, traceStep{text: s})
	} else if len(t.steps) == maxTraceSteps {
		t.steps = append(t.steps, traceStep{text: "..."})
	}
}

// Source records where the body came from: "cache", "origin",
// "peer <id> L<level>", ... The last call wins, so a fetch that gave up on a
// peer's copy and went to the origin ends up saying so.
func (t *Trace) Source(format string, args ...any) {
	if t == nil {
		return
	}
	s := fmt.Sprintf(format, args...)
	t.mu.Lock()
	t.source = s
	t.mu.Unlock()
}

func (t *Trace) sourceOf() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.source
}

// include renders sub (a fetch's trace) at this point of t.
func (t *Trace) include(sub *Trace) {
	if t == nil || sub == nil || sub == t {
		return
	}
	t.mu.Lock()
	t.steps = append(t.steps, traceStep{sub: sub})
	t.mu.Unlock()
}

func (t *Trace) setResult(r string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.result == "" {
		t.result = r
	}
	t.mu.Unlock()
}

func (t *Trace) resultOf() string {
	if t == nil {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.result
}

// String renders the trace as "step; step; from <source>".
func (t *Trace) String() string {
	if t == nil {
		return ""
	}
	var parts []string
	source := t.render(&parts)
	if source != "" {
		parts = append(parts, "from "+source)
	}
	return strings.Join(parts, "; ")
}

// render appends t's steps to parts and returns its source, or that of the
// last included trace when t has none of its own.
func (t *Trace) render(parts *[]string) string {
	t.mu.Lock()
	steps := append([]traceStep(nil), t.steps...)
	source := t.source
	t.mu.Unlock()
	var subSource string
	for _, s := range steps {
		if s.sub != nil {
			if src := s.sub.render(parts); src != "" {
				subSource = src
			}
			continue
		}
		*parts = append(*parts, s.text)
	}
	if source == "" {
		source = subSource
	}
	return source
}

// header is the trace as a header value: printable ASCII, bounded.
func (t *Trace) header() string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, t.String())
	if len(s) > maxTraceHeader {
		s = s[:maxTraceHeader-3] + "..."
	}
	return s
}

// wantsTrace reports whether the visitor asked for TraceHeader.
func wantsTrace(h http.Header) bool {
	switch strings.ToLower(strings.TrimSpace(h.Get(DebugHeader))) {
	case "1", "trace", "true", "on", "yes":
		return true
	}
	return false
}

// TraceSummary is one request in RecentTraces.
type TraceSummary struct {
	Time     time.Time     // when the request arrived (the proxy's clock)
	URL      string        // canonical origin URL
	Result   string        // X-Coral-Cache value sent, or "ERROR <status>"
	Path     string        // the trace, as in the X-Coral-Trace header
	Duration time.Duration // until the response was complete (or abandoned)
}

// traceRing keeps the last recentTraces summaries.
type traceRing struct {
	mu   sync.Mutex
	buf  []TraceSummary
	next int
}

func (r *traceRing) add(s TraceSummary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < recentTraces {
		r.buf = append(r.buf, s)
		return
	}
	r.buf[r.next] = s
	r.next = (r.next + 1) % recentTraces
}

// RecentTraces returns the paths of the last requests answered through the
// cache (up to 50), newest first.
func (p *Proxy) RecentTraces() []TraceSummary {
	r := &p.traces
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]TraceSummary, 0, len(r.buf))
	for i := len(r.buf) - 1; i >= 0; i-- {
		out = append(out, r.buf[(r.next+i)%len(r.buf)])
	}
	return out
}

// ShortPeer is how traces name a peer: the last 8 characters of its ID (a
// libp2p peer ID's first characters are the same for every node).
func ShortPeer(id string) string {
	if len(id) > 12 {
		return id[len(id)-8:]
	}
	return id
}
