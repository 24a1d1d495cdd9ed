package dnsserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"
)

// limiter is response rate limiting per client network, after BIND's RRL:
// a spoofed flood aimed at a victim network gets at most PerSecond answers
// per second out of us, while a real resolver behind that network still gets
// the slipped truncated replies and retries over TCP.
type limiter struct {
	limit rate.Limit
	burst int
	slip  uint64 // 0: never slip
	nets  *lru[netip.Prefix, *rrlState]
}

type rrlState struct {
	lim        *rate.Limiter
	suppressed atomic.Uint64
}

type rrlAction int

const (
	rrlSend rrlAction = iota
	rrlDrop
	rrlSlip
)

func newLimiter(rl RateLimit) *limiter {
	l := &limiter{limit: rate.Limit(rl.PerSecond), burst: rl.Burst, nets: newLRU[netip.Prefix, *rrlState](rl.MaxNetworks)}
	if rl.Slip > 0 {
		l.slip = uint64(rl.Slip)
	}
	return l
}

// rrlNetwork is the unit of accounting: the /24 or /56 a client sits in (an
// end site usually gets a /56 of IPv6, and spoofers can vary the rest freely).
func rrlNetwork(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 56
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}

func (l *limiter) decide(a netip.Addr, now time.Time) rrlAction {
	st := l.nets.getOrAdd(rrlNetwork(a), func() *rrlState {
		return &rrlState{lim: rate.NewLimiter(l.limit, l.burst)}
	})
	if st.lim.AllowN(now, 1) {
		return rrlSend
	}
	n := st.suppressed.Add(1)
	if l.slip > 0 && n%l.slip == 0 {
		return rrlSlip
	}
	return rrlDrop
}

// accept runs on the raw header before the message is parsed. Anything that
// is not a plain query is dropped silently: answering responses invites
// loops, and error replies to junk are free reflection.
func (s *Server) accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 || dh.Qdcount != 1 || dh.Ancount != 0 || dh.Nscount != 0 || dh.Arcount > 2 {
		s.st.malformed.Add(1)
		return dns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		s.st.otherErrors.Add(1)
		return dns.MsgRejectNotImplemented
	}
	return dns.MsgAccept
}

// invalid counts packets miekg/dns could not parse. For a bad body it then
// writes FORMERR itself; gateWriter suppresses that reply.
func (s *Server) invalid(_ []byte, _ error) { s.st.malformed.Add(1) }

// gateWriter sits between miekg/dns and the socket for every reply: it
// applies the rate limiter to UDP and swallows the library's FORMERR replies
// to unparsable messages. Those are recognisable: no OPT record (arcount 0)
// and rcode FORMERR; this server's own FORMERRs always carry OPT, since they
// are only about EDNS.
type gateWriter struct {
	next   dns.Writer
	s      *Server
	remote net.Addr
}

func (s *Server) decorate(w dns.Writer) dns.Writer {
	g := &gateWriter{next: w, s: s}
	if ra, ok := w.(interface{ RemoteAddr() net.Addr }); ok {
		g.remote = ra.RemoteAddr()
	}
	return g
}

func (g *gateWriter) Write(b []byte) (int, error) {
	if len(b) >= 12 && int(b[3]&0x0F) == dns.RcodeFormatError && b[10] == 0 && b[11] == 0 {
		return len(b), nil
	}
	if ua, ok := g.remote.(*net.UDPAddr); ok && g.s.rrl != nil {
		switch g.s.rrl.decide(ua.AddrPort().Addr(), g.s.now()) {
		case rrlDrop:
			g.s.st.rateDropped.Add(1)
			return len(b), nil
		case rrlSlip:
			t := slipped(b)
			if t == nil {
				g.s.st.rateDropped.Add(1)
				return len(b), nil
			}
			if _, err := g.next.Write(t); err != nil {
				return 0, err
			}
			g.s.st.rateSlipped.Add(1)
			return len(b), nil
		}
	}
	return g.next.Write(b)
}

// slipped turns a packed response into the header and question only, with
// TC set: no larger than the query, useless to an attacker, and a signal to a
// real resolver to ask again over TCP.
func slipped(b []byte) []byte {
	if len(b) < 12 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil
	}
	off := 12
	for {
		if off >= len(b) {
			return nil
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 { // the first name is never compressed; refuse oddities
			return nil
		}
		off += 1 + l
	}
	off += 4 // type, class
	if off > len(b) {
		return nil
	}
	t := append([]byte(nil), b[:off]...)
	t[2] |= 0x02   // TC
	clear(t[6:12]) // ancount, nscount, arcount
	t[3] &^= 0x0F  // rcode NOERROR: the truncated reply claims nothing
	return t
}
