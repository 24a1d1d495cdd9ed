package node

import (
	"context"
	"net/http"

	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/runstate"
)

// fastGate is the visitor gate as the proxy's fast path asks it (see
// proxy.FastListener): a hit is answered on the connection only when
// gateProxy and the visitorGate would pass the request straight to the
// proxy and nothing needs shaping. It is also the budget every byte on a
// visitor's connection goes through (proxy.Uplink): the upload cap and
// the count of what each site sent.
type fastGate struct {
	n    *Node
	gate *visitorGate
}

var _ proxy.FastGate = fastGate{}

func (f fastGate) Admit(host string) (string, bool) {
	if !f.n.serving(runstate.Proxy) {
		return "", false
	}
	g := f.gate
	var site string
	if s, _, ok := g.customSite(host); ok {
		site = s
	} else {
		site = g.siteOf(host).site
	}
	if site == "" || !g.budget.Serving() || g.budget.State().Caps.Upload.Capped() {
		return "", false
	}
	return site, true
}

func (f fastGate) Sent(site string, n int64) { f.gate.budget.CountSent(site, n) }

func (f fastGate) Allow(ctx context.Context, site string, n int) error {
	return f.gate.budget.Allow(ctx, site, n)
}

func (f fastGate) Capped() bool { return f.gate.budget.UploadCapped() }

// Answers keeps responses that steer the gate (redirect-home) on the
// handlers' way, where homeWriter reads them.
func (f fastGate) Answers(h http.Header) bool { return h.Get(ControlHeader) == "" }
