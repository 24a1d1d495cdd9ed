package dnsserver

import "github.com/miekg/dns"

// WithPause makes the server refuse every query while paused returns true
// (the network's operator paused DNS, or this node's release is below the
// network's minimum). REFUSED sends resolvers to the zone's other
// nameservers at once, where silence would cost them a timeout. Malformed
// and rate-limited queries are handled as always.
func WithPause(paused func() bool) Option { return func(s *Server) { s.paused = paused } }

func (s *Server) refusePaused(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeRefused)
	if r.IsEdns0() != nil { // a response to an EDNS query carries OPT (RFC 6891 §7)
		m.SetEdns0(uint16(s.cfg.UDPSize), false)
	}
	s.st.refused.Add(1)
	return m
}
