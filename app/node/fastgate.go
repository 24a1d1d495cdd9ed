package node

import (
	"net/http"

	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/runstate"
)

// fastGate is the visitor gate as the proxy's fast path asks it (see
// proxy.FastListener): a hit is answered on the connection only when
// gateProxy and the visitorGate would pass the request straight to the
// proxy and nothing needs shaping, and its bytes count for its site as
// the shapedWriter counts them.
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

// Answers keeps responses that steer the gate (redirect-home) on the
// handlers' way, where shapedWriter reads them.
func (f fastGate) Answers(h http.Header) bool { return h.Get(ControlHeader) == "" }
