package dnsserver

import (
	"encoding/binary"
	"hash/maphash"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// limiter is response rate limiting as BIND's RRL: it counts identical
// responses to one client network, where a response is identified by its
// query name, type and kind (answer, no data, NXDOMAIN, error). A spoofed
// flood of one query aimed at a victim network gets at most PerSecond such
// responses per second out of us (plus the Slip-th suppressed ones, sent
// empty with TC).
//
// Only the names in perName (the apex and the registered nameservers) have
// a budget each. Every other name in the zone is synthesised, so a flood
// can use a new name for every query: as BIND counts all answers made from
// one wildcard together, answers and no-data responses for those count
// under the zone (per type), NXDOMAIN under the zone, errors under one name.
// A resolver network asking for more different names than PerSecond (after
// the burst) gets the Slip-th of the excess truncated and retries over TCP.
//
// The table is sharded by a hash of the key and bounded: when a shard is
// full, buckets that have refilled completely (equivalent to no entry) are
// dropped first, then arbitrary ones.
type limiter struct {
	rate     float64 // tokens per nanosecond
	burst    float64
	slip     uint32 // 0: never slip
	maxShard int
	seed     maphash.Seed
	perName  map[string]bool // lower-case FQDNs with a budget each
	shards   [rrlShards]rrlShard
}

const rrlShards = 64

type rrlShard struct {
	mu      sync.Mutex
	buckets map[uint64]rrlBucket
	_       [48]byte // keep shards on separate cache lines (64 bytes each)
}

type rrlBucket struct {
	tokens     float64
	last       int64 // UnixNano of the last update
	suppressed uint32
}

type rrlAction int

const (
	rrlSend rrlAction = iota
	rrlDrop
	rrlSlip
)

// Response kinds, the last part of a response's identity.
const (
	rrlAnswer byte = iota + 1
	rrlNoData
	rrlNXDomain
	rrlError
)

// newLimiter makes a limiter; perName are the lower-case FQDNs whose
// answers and no-data responses have a budget each (see limiter).
func newLimiter(rl RateLimit, perName ...string) *limiter {
	l := &limiter{
		rate:     rl.PerSecond / float64(time.Second),
		burst:    float64(rl.Burst),
		maxShard: max(1, rl.MaxEntries/rrlShards),
		seed:     maphash.MakeSeed(),
		perName:  make(map[string]bool),
	}
	for _, n := range perName {
		l.perName[n] = true
	}
	if rl.Slip > 0 {
		l.slip = uint32(rl.Slip)
	}
	for i := range l.shards {
		l.shards[i].buckets = make(map[uint64]rrlBucket)
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

// responseKey hashes what identifies a packed response b to a client at a:
// the client's network, and the query name (lower-cased), type and the kind
// of response. An error without a question (NOTIMP to a question-less
// message) counts with the other errors. ok is false when b is not a
// response with one question or such an error.
func (l *limiter) responseKey(a netip.Addr, b []byte) (key uint64, ok bool) {
	if len(b) < 12 {
		return 0, false
	}
	var h maphash.Hash
	h.SetSeed(l.seed)
	n := rrlNetwork(a)
	ab := n.Addr().As16()
	h.Write(ab[:])
	if binary.BigEndian.Uint16(b[4:]) == 0 && b[3]&0x0F != dns.RcodeSuccess {
		h.WriteByte(rrlError)
		return h.Sum64(), true
	}
	end := questionEnd(b)
	if binary.BigEndian.Uint16(b[4:]) != 1 || end < 0 {
		return 0, false
	}
	kind := rrlError
	switch rcode := b[3] & 0x0F; {
	case rcode == dns.RcodeSuccess && binary.BigEndian.Uint16(b[6:]) > 0:
		kind = rrlAnswer
	case rcode == dns.RcodeSuccess:
		kind = rrlNoData
	case rcode == dns.RcodeNameError:
		kind = rrlNXDomain
	}
	h.WriteByte(kind)
	if kind == rrlAnswer || kind == rrlNoData {
		var buf [255]byte
		if name, ok := presentName(buf[:0], b[12:end-4]); ok && l.perName[string(name)] {
			h.Write(name)
		}
		h.Write(b[end-4 : end-2]) // qtype
	}
	return h.Sum64(), true
}

// presentName appends wire name w (uncompressed, as in a question) to out
// as a lower-case FQDN with dots, for the perName lookup. ok is false for a
// name that no plain host name spells the same way: a label with a dot or
// an odd byte (such names never have a budget of their own).
func presentName(out, w []byte) (_ []byte, ok bool) {
	for len(w) > 0 && w[0] != 0 {
		n := int(w[0])
		if 1+n > len(w) {
			return out, false
		}
		for _, c := range w[1 : 1+n] {
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return out, false
			}
			out = append(out, c)
		}
		out = append(out, '.')
		w = w[1+n:]
	}
	if len(out) == 0 {
		out = append(out, '.')
	}
	return out, true
}

// questionEnd is the offset just past the only question of packed message
// b, or -1. The question name of a query is never compressed.
func questionEnd(b []byte) int {
	off := 12
	for {
		if off >= len(b) {
			return -1
		}
		l := int(b[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return -1
		}
		off += 1 + l
	}
	if off+4 > len(b) {
		return -1
	}
	return off + 4
}

// decide spends a token of the bucket for key at now.
func (l *limiter) decide(key uint64, now time.Time) rrlAction {
	t := now.UnixNano()
	sh := &l.shards[key%rrlShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	bk, found := sh.buckets[key]
	if !found {
		if len(sh.buckets) >= l.maxShard {
			l.evict(sh, t)
		}
		bk = rrlBucket{tokens: l.burst, last: t}
	}
	bk.tokens = min(l.burst, bk.tokens+float64(max(0, t-bk.last))*l.rate)
	bk.last = t
	action := rrlSend
	if bk.tokens >= 1 {
		bk.tokens--
	} else {
		bk.suppressed++
		action = rrlDrop
		if l.slip > 0 && bk.suppressed%l.slip == 0 {
			action = rrlSlip
		}
	}
	sh.buckets[key] = bk
	return action
}

// evict makes room in a full shard: buckets that have refilled are the
// same as no bucket; if that frees too little, arbitrary ones go too (map
// order is random), down to three quarters, so sweeps stay rare.
func (l *limiter) evict(sh *rrlShard, now int64) {
	for k, bk := range sh.buckets {
		if bk.tokens+float64(now-bk.last)*l.rate >= l.burst {
			delete(sh.buckets, k)
		}
	}
	for k := range sh.buckets {
		if len(sh.buckets) <= l.maxShard*3/4 {
			break
		}
		delete(sh.buckets, k)
	}
}

// len is the number of buckets held.
func (l *limiter) len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}

// accept runs on the raw header before the message is parsed. Responses
// are dropped silently (answering them invites loops). Other opcodes than
// QUERY get NOTIMP (RFC 2136 §3, RFC 1996): with one question, respond
// echoes it; without, miekg replies from the header. Either is no larger
// than the query. A QUERY that is not a plain one is dropped silently:
// error replies to junk are free reflection.
func (s *Server) accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		s.st.malformed.Add(1)
		return dns.MsgIgnore
	}
	if opcode := int(dh.Bits>>11) & 0xF; opcode != dns.OpcodeQuery {
		if dh.Qdcount == 1 {
			return dns.MsgAccept // NOTIMP from respond, the question echoed
		}
		s.st.otherErrors.Add(1)
		return dns.MsgRejectNotImplemented
	}
	if dh.Qdcount != 1 || dh.Ancount != 0 || dh.Nscount != 0 || dh.Arcount > 2 {
		s.st.malformed.Add(1)
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// invalid counts packets miekg/dns could not parse. For a bad body it then
// writes FORMERR itself; gateWriter suppresses that reply unless the
// question parsed.
func (s *Server) invalid(_ []byte, _ error) { s.st.malformed.Add(1) }

// gateWriter sits between miekg/dns and the socket for every reply: it
// applies the rate limiter to UDP and swallows the library's FORMERR replies
// to unparsable junk. Those are recognisable: rcode FORMERR without a
// question or OPT record (this server's own FORMERRs carry OPT, since they
// are only about EDNS). A FORMERR that echoes the question answers a query
// whose additional section is bad, such as a client subnet longer than its
// address family (RFC 7871 §7.1.2 wants FORMERR): it is no larger than the
// query and goes out, rate limited as an error.
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
	if len(b) >= 12 && int(b[3]&0x0F) == dns.RcodeFormatError && b[10] == 0 && b[11] == 0 &&
		binary.BigEndian.Uint16(b[4:]) == 0 {
		return len(b), nil
	}
	n := len(b)
	if ua, ok := g.remote.(*net.UDPAddr); ok {
		if b = g.s.rateGate(ua, b); b == nil {
			return n, nil
		}
	}
	if _, err := g.next.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// rateGate applies the limiter to a UDP response b: it returns b, its
// slipped (truncated) form, or nil to send nothing.
func (s *Server) rateGate(ua *net.UDPAddr, b []byte) []byte {
	if s.rrl == nil {
		return b
	}
	key, ok := s.rrl.responseKey(ua.AddrPort().Addr(), b)
	if !ok {
		return nil // not a reply this server makes
	}
	switch s.rrl.decide(key, s.now()) {
	case rrlDrop:
		s.st.rateDropped.Add(1)
		return nil
	case rrlSlip:
		if t := slipped(b); t != nil {
			s.st.rateSlipped.Add(1)
			return t
		}
		s.st.rateDropped.Add(1)
		return nil
	}
	return b
}

// slipped turns a packed response into the header and question only, with
// TC set: no larger than the query, useless to an attacker, and a signal to a
// real resolver to ask again over TCP.
func slipped(b []byte) []byte {
	end := questionEnd(b)
	if end < 0 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return nil
	}
	t := append([]byte(nil), b[:end]...)
	t[2] |= 0x02   // TC
	clear(t[6:12]) // ancount, nscount, arcount
	t[3] &^= 0x0F  // rcode NOERROR: the truncated reply claims nothing
	return t
}
