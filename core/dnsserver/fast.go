package dnsserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// The UDP fast path. Almost every query a busy nameserver gets is an A or
// AAAA query for a Coralized name, without EDNS options. miekg/dns handles
// each packet in a new goroutine, unpacks it into a Msg and packs the reply
// with a compression map: several times the work of choosing the answer.
// fastReader sits in miekg's UDP read loop (Server.DecorateReader): it
// answers such queries right there, from the raw packet into a reused
// buffer, and hands everything else (other types and names, EDNS options
// such as a client subnet, anything odd) to miekg and respond, unchanged.
// The bytes it sends are the ones respond would produce (fast_test.go
// compares them). It never blocks: a query that would need a ping or an RTT
// hint lookup takes the slow path, which does those and caches the results.
type fastReader struct {
	next dns.Reader
	s    *Server
	in   []byte
	out  []byte
}

func (s *Server) decorateReader(next dns.Reader) dns.Reader {
	return &fastReader{next: next, s: s, in: make([]byte, 4096), out: make([]byte, 0, 1024)}
}

func (r *fastReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	return r.next.ReadTCP(conn, timeout)
}

// ReadUDP answers fast-path queries itself and returns the first packet
// that needs the full handler. It sets no read deadline: miekg's Shutdown
// sets one in the past to stop the loop, which must not be overridden.
func (r *fastReader) ReadUDP(conn *net.UDPConn, _ time.Duration) ([]byte, *dns.SessionUDP, error) {
	for {
		n, sess, err := dns.ReadFromSessionUDP(conn, r.in)
		if err != nil {
			return nil, nil, err
		}
		pkt := r.in[:n]
		ua, _ := sess.RemoteAddr().(*net.UDPAddr)
		if ua == nil {
			return slices.Clone(pkt), sess, nil
		}
		out, ok := r.s.fastAnswer(r.out[:0], pkt, ua.AddrPort().Addr().Unmap())
		if !ok {
			return slices.Clone(pkt), sess, nil
		}
		r.out = out[:0]
		if out = r.s.rateGate(ua, out); out != nil {
			_, _ = dns.WriteToSessionUDP(conn, out, sess)
		}
		r.s.countTraffic(len(out), n)
	}
}

// fastQuery is what the fast path reads from a query.
type fastQuery struct {
	qend  int    // end of the question section
	qtype uint16 // A or AAAA
	name  string // lower case, with the trailing dot
	edns  bool
	do    bool
	size  int // the client's EDNS payload size
}

// parseFast reads a plain query: one question of class IN for A or AAAA,
// no answer or authority records, at most an OPT record without options.
// ok is false for anything else.
func parseFast(b []byte) (q fastQuery, ok bool) {
	if len(b) < 12 || b[2]&0xF8 != 0 || // QR and opcode
		binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 ||
		binary.BigEndian.Uint16(b[8:]) != 0 || binary.BigEndian.Uint16(b[10:]) > 1 {
		return q, false
	}
	var name [255]byte
	nl := 0
	off := 12
	for {
		if off >= len(b) {
			return q, false
		}
		l := int(b[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(b) || nl+l+1 > len(name) {
			return q, false
		}
		for _, c := range b[off : off+l] {
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return q, false // escapes and odd bytes: the slow path knows them
			}
			name[nl] = c
			nl++
		}
		name[nl] = '.'
		nl++
		off += l
	}
	if nl == 0 || off+4 > len(b) {
		return q, false
	}
	q.qtype = binary.BigEndian.Uint16(b[off:])
	if (q.qtype != dns.TypeA && q.qtype != dns.TypeAAAA) || binary.BigEndian.Uint16(b[off+2:]) != dns.ClassINET {
		return q, false
	}
	q.qend = off + 4
	q.name = string(name[:nl])
	q.size = dns.MinMsgSize
	if binary.BigEndian.Uint16(b[10:]) == 0 {
		return q, q.qend == len(b)
	}
	o := b[q.qend:] // OPT: root name, type, payload size, rcode/version/flags, rdlength
	if len(o) != 11 || o[0] != 0 || binary.BigEndian.Uint16(o[1:]) != dns.TypeOPT || o[6] != 0 ||
		binary.BigEndian.Uint16(o[9:]) != 0 {
		return q, false
	}
	q.edns, q.do = true, o[7]&0x80 != 0
	q.size = int(binary.BigEndian.Uint16(o[3:]))
	return q, true
}

// fastAnswer appends the answer to query b from client to out, or says
// the slow path must answer it.
func (s *Server) fastAnswer(out, b []byte, client netip.Addr) ([]byte, bool) {
	if s.paused != nil && s.paused() {
		return out, false // the slow path refuses (WithPause)
	}
	q, ok := parseFast(b)
	if !ok {
		return out, false
	}
	cls := getOrAdd(s.classes, q.name, func() nameKind { return s.classify(q.name).kind })
	if cls != kindOrigin {
		return out, false
	}
	if _, site := s.siteMembers(q.name); site {
		return out, false // the slow path picks the group's proxies
	}
	fam, rlen := fam4, 4
	if q.qtype == dns.TypeAAAA {
		fam, rlen = fam6, 16
	}
	v := newVisitor(client, 128)
	now := s.now()
	hints, ok := s.cachedHints(v.network, now)
	if !ok {
		return out, false
	}
	ps := s.dir.Proxies()
	req := chooseReq{v: v, fam: fam, n: s.cfg.Answers, hints: hints, self: s.self(ps), now: now}
	if rk := s.ranking(ps, req); rk.probing {
		return out, false
	}
	req.rotation = s.rotA.Add(1)
	picks := s.choose(ps, req)
	if len(picks) == 0 {
		return out, false
	}
	limit := dns.MinMsgSize
	if q.edns {
		limit = max(dns.MinMsgSize, min(q.size, s.cfg.UDPSize))
	}
	limit = min(limit, MaxAmplification*len(b))
	fixed := q.qend + 11*btoi(q.edns)
	n := min(len(picks), (limit-fixed)/(12+rlen))
	if n < 1 {
		return out, false
	}
	out = append(out, b[0], b[1], 0x80|0x04|b[2]&0x01, b[3]&0x10, 0, 1, 0, 0, 0, 0, 0, byte(btoi(q.edns)))
	out = append(out, b[12:q.qend]...)
	out, k := appendAddrRecords(out, picks, fam, n, ttl(s.cfg.TTL))
	binary.BigEndian.PutUint16(out[6:], uint16(k))
	if q.edns {
		out = appendOPT(out, s.cfg.UDPSize, q.do)
	}
	s.st.queries.Add(1)
	s.st.answers.Add(1)
	return out, true
}

// appendAddrRecords appends up to n A or AAAA records (by fam) of distinct
// addresses of picks, each named by a pointer to the question, and says how
// many it wrote.
func appendAddrRecords(out []byte, picks []pick, fam family, n int, t uint32) ([]byte, int) {
	rtype, rlen := dns.TypeA, 4
	if fam == fam6 {
		rtype, rlen = dns.TypeAAAA, 16
	}
	var used [4]netip.Addr
	k := 0
	for _, p := range picks {
		a := p.a4
		if fam == fam6 {
			a = p.a6
		}
		if k == n || k == len(used) || slices.Contains(used[:k], a) {
			continue
		}
		used[k] = a
		k++
		out = append(out, 0xC0, 12, byte(rtype>>8), byte(rtype), 0, 1, byte(t>>24), byte(t>>16), byte(t>>8), byte(t), 0, byte(rlen))
		if fam == fam4 {
			a4 := a.As4()
			out = append(out, a4[:]...)
		} else {
			a16 := a.As16()
			out = append(out, a16[:]...)
		}
	}
	return out, k
}

// appendOPT appends the EDNS OPT record of a fast answer.
func appendOPT(out []byte, udpSize int, do bool) []byte {
	var flags byte
	if do {
		flags = 0x80
	}
	return append(out, 0, 0, 41, byte(udpSize>>8), byte(udpSize), 0, 0, flags, 0, 0, 0)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
