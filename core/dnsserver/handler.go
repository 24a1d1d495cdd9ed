package dnsserver

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/coralcdn/coral/core/ipclass"
	"github.com/miekg/dns"
)

// ServeDNS answers one query. It is the whole handler chain: sanity, EDNS,
// zone membership, name class, then the answer; rate limiting happens on the
// way out (gateWriter).
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	from, tcp := peer(w.RemoteAddr())
	m := s.respond(r, from, tcp)
	if m != nil && s.paused != nil && s.paused() {
		m = s.refusePaused(r)
	}
	if m == nil {
		return
	}
	if err := w.WriteMsg(m); err != nil {
		s.log.Debug("writing DNS response failed", "client", from, "err", err)
	}
	s.countTraffic(m.Len(), r.Len())
}

func peer(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap(), false
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// query is the state of one query on its way to an answer.
type query struct {
	r       *dns.Msg
	q       dns.Question
	m       *dns.Msg
	max     int // largest response the client accepts
	tcp     bool
	rv      visitor // the resolver
	cv      visitor // the client: EDNS client subnet, or the resolver
	ecsResp *dns.EDNS0_SUBNET
	ps      []Proxy
	psDone  bool
	qlen    int  // the query's size on the wire, for the amplification bound
	partial bool // the answer is a synthesised set: dropping records from its end keeps it valid
}

// respond builds the response to r from a client at from, or nil to send
// nothing.
func (s *Server) respond(r *dns.Msg, from netip.Addr, tcp bool) *dns.Msg {
	if r == nil || r.Response || len(r.Question) != 1 {
		s.st.malformed.Add(1)
		return nil
	}
	s.st.queries.Add(1)
	if tcp {
		s.st.tcp.Add(1)
	}
	x := &query{r: r, q: r.Question[0], m: new(dns.Msg), tcp: tcp, max: dns.MinMsgSize, qlen: boundingLen(r)}
	x.m.SetReply(r)
	x.m.Compress = true
	if tcp {
		x.max = dns.MaxMsgSize
	}
	x.rv = newVisitor(from, 128)
	x.cv = x.rv
	if r.Opcode != dns.OpcodeQuery {
		return s.finish(x, dns.RcodeNotImplemented)
	}
	if rc, ok := s.edns(x); !ok {
		return s.finish(x, rc)
	}
	if x.q.Qclass != dns.ClassINET {
		return s.finish(x, dns.RcodeRefused)
	}
	cls := s.classify(x.q.Name)
	if cls.kind == kindOutside {
		return s.finish(x, dns.RcodeRefused)
	}
	if x.q.Qtype == dns.TypeAXFR || x.q.Qtype == dns.TypeIXFR {
		return s.finish(x, dns.RcodeRefused) // the zone is synthesised; there is nothing to transfer
	}
	x.m.Authoritative = true
	switch cls.kind {
	case kindApex:
		return s.apex(x)
	case kindStaticNS:
		return s.addresses(x, cls.ns.Addrs, s.cfg.NSTTL)
	case kindNSHost:
		return s.nsHost(x, cls.node)
	case kindOrigin:
		return s.origin(x)
	case kindEmpty:
		return s.negative(x, dns.RcodeSuccess)
	default:
		return s.negative(x, dns.RcodeNameError)
	}
}

// edns handles the OPT record: echo it with our payload size and the DO
// bit, reject unknown versions, take the client's payload size and client
// subnet.
func (s *Server) edns(x *query) (int, bool) {
	var req *dns.OPT
	n := 0
	for _, rr := range x.r.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			req = o
			n++
		}
	}
	if req == nil {
		return 0, true
	}
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(uint16(s.cfg.UDPSize))
	if req.Do() {
		o.SetDo()
	}
	x.m.Extra = append(x.m.Extra, o)
	switch {
	case n > 1:
		return dns.RcodeFormatError, false // RFC 6891 §6.1.1
	case req.Version() != 0:
		return dns.RcodeBadVers, false
	}
	if !x.tcp {
		x.max = max(dns.MinMsgSize, min(int(req.UDPSize()), s.cfg.UDPSize))
	}
	for _, opt := range req.Option {
		e, ok := opt.(*dns.EDNS0_SUBNET)
		if !ok {
			continue
		}
		echo := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: e.Family, SourceNetmask: e.SourceNetmask, Address: e.Address}
		o.Option = append(o.Option, echo)
		x.ecsResp = echo // one client subnet per query: the first
		var a netip.Addr
		switch e.Family {
		case 1:
			if v4 := e.Address.To4(); v4 != nil {
				a = netip.AddrFrom4([4]byte(v4))
			}
		case 2:
			if len(e.Address) == net.IPv6len {
				a = netip.AddrFrom16([16]byte(e.Address))
			}
		}
		// A private or non-global subnet would let anyone on the Internet
		// learn volunteers' LAN addresses; such subnets are ignored.
		if e.SourceNetmask > 0 && ipclass.Of(a) == ipclass.Global {
			if p, err := a.Prefix(int(e.SourceNetmask)); err == nil {
				x.cv = newVisitor(p.Addr(), int(e.SourceNetmask))
				x.cv.ecs = true
			}
		}
		break
	}
	return 0, true
}

// finish sets the rcode, counts it and fits the message to the client.
func (s *Server) finish(x *query, rcode int) *dns.Msg {
	m := x.m
	m.Rcode = rcode
	switch {
	case rcode == dns.RcodeSuccess && len(m.Answer) > 0:
		s.st.answers.Add(1)
	case rcode == dns.RcodeSuccess:
		s.st.noData.Add(1)
	case rcode == dns.RcodeNameError:
		s.st.nxDomain.Add(1)
	case rcode == dns.RcodeRefused:
		s.st.refused.Add(1)
		m.Authoritative = false
	case rcode == dns.RcodeServerFailure:
		s.st.servFail.Add(1)
		m.Authoritative = false
	default:
		s.st.otherErrors.Add(1)
	}
	limit := x.max
	if !x.tcp {
		limit = min(limit, MaxAmplification*x.qlen)
	}
	if fit(m, limit, x.partial) {
		s.st.truncated.Add(1)
	}
	return m
}

// boundingLen is the size of r counted for the amplification bound: the
// header, the question and the OPT record, uncompressed. Other additional
// records are left out: their names may be 2-byte compression pointers that
// unpack into many more bytes than they took on the wire (r itself no longer
// knows its wire size). The question name comes first, so it has nothing to
// point back to but the header and is on the wire at full length.
func boundingLen(r *dns.Msg) int {
	m := dns.Msg{Question: r.Question}
	if o := r.IsEdns0(); o != nil {
		root := *o
		root.Hdr.Name = "." // what it must be; a pointer to the question would count twice
		m.Extra = []dns.RR{&root}
	}
	return m.Len()
}

// MaxAmplification bounds a UDP response to this many times the size of its
// query, so that the server is a poor reflector for spoofed queries: a
// response that would be larger loses records (see fit) or is sent empty
// with TC, and the full answer is available over TCP.
const MaxAmplification = 8

// fit shrinks m to at most max bytes: first the optional additional records,
// then the authority section of a positive answer, then (when partial says
// the answer is a synthesised set, where any non-empty subset is a valid
// answer) answer records from the end, the least preferred; if the answer
// still does not fit, it is dropped and TC tells the client to retry over TCP.
func fit(m *dns.Msg, max int, partial bool) bool {
	if m.Len() <= max {
		return false
	}
	opt := m.Extra[:0:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			opt = append(opt, rr)
		}
	}
	m.Extra = opt
	if m.Len() <= max {
		return false
	}
	if len(m.Answer) > 0 {
		m.Ns = nil
		for partial && len(m.Answer) > 1 && m.Len() > max {
			m.Answer = m.Answer[:len(m.Answer)-1]
		}
		if m.Len() <= max {
			return false
		}
	}
	m.Answer, m.Ns = nil, nil
	m.Truncated = true
	return true
}

func (s *Server) proxies(x *query) []Proxy {
	if !x.psDone {
		x.ps, x.psDone = s.dir.Proxies(), true
	}
	return x.ps
}

// self is this node's own entry in the directory snapshot ps, remembered
// per snapshot (a scan per query cost as much as the rest of the answer).
func (s *Server) self(ps []Proxy) *Proxy {
	if s.cfg.Self == "" || len(ps) == 0 {
		return nil
	}
	if c := s.selfCache.Load(); c != nil && c.snap == &ps[0] && c.size == len(ps) {
		return c.self
	}
	c := &selfEntry{snap: &ps[0], size: len(ps)}
	for i := range ps {
		if ps[i].ID == s.cfg.Self {
			c.self = &ps[i]
			break
		}
	}
	s.selfCache.Store(c)
	return c.self
}

type selfEntry struct {
	snap, self *Proxy
	size       int
}

func ttl(d time.Duration) uint32 { return uint32(d / time.Second) }

func (s *Server) soa(owner string) dns.RR {
	t := ttl(s.cfg.TTL)
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: owner, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: t},
		Ns:      s.soaMname,
		Mbox:    "hostmaster." + s.zoneFQDN,
		Serial:  s.serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  7 * 24 * 3600,
		Minttl:  t, // negative answers are cached as briefly as positive ones
	}
}

// negative answers NXDOMAIN or NODATA with the SOA for negative caching.
func (s *Server) negative(x *query, rcode int) *dns.Msg {
	x.m.Ns = append(x.m.Ns, s.soa(s.zoneFQDN))
	return s.finish(x, rcode)
}

func (s *Server) apex(x *query) *dns.Msg {
	switch x.q.Qtype {
	case dns.TypeSOA, dns.TypeANY: // ANY gets a subset: the SOA (RFC 8482)
		x.m.Answer = append(x.m.Answer, s.soa(x.q.Name))
		return s.finish(x, dns.RcodeSuccess)
	case dns.TypeNS:
		ns := s.nsSet(x, x.q.Name)
		if len(ns) == 0 {
			return s.negative(x, dns.RcodeSuccess)
		}
		x.m.Answer = append(x.m.Answer, ns...)
		x.partial = true
		return s.finish(x, dns.RcodeSuccess)
	}
	return s.negative(x, dns.RcodeSuccess)
}

// nsSet returns the NS records (owner: owner) for the resolver: live,
// reachable volunteer nameservers nearest the resolver, or the static
// delegation when none is known. No glue goes with them (minimal
// responses): every name is in this zone, so the resolver, already talking
// to this server, asks it for their addresses; the parent holds the glue of
// the registered ones.
func (s *Server) nsSet(x *query, owner string) (ns []dns.RR) {
	ps := s.proxies(x)
	now := s.now()
	picks := s.choose(ps, chooseReq{
		v: x.rv, fam: famAny, n: s.cfg.NSCount, nsOnly: true,
		hints: s.hintsFor(x.rv.network, now), self: s.self(ps), now: now, rotation: s.rotN.Add(1),
	})
	t := ttl(s.cfg.NSTTL)
	add := func(name string) {
		ns = append(ns, &dns.NS{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: t}, Ns: name})
	}
	for _, p := range picks {
		add(s.nsName(p.p))
	}
	if len(ns) == 0 {
		for _, n := range s.staticList {
			add(n.Name)
		}
	}
	return ns
}

func addrRR(name string, a netip.Addr, t uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: t}, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: t}, AAAA: a.AsSlice()}
}

// addresses answers A/AAAA for a name with fixed addresses.
func (s *Server) addresses(x *query, addrs []netip.Addr, d time.Duration) *dns.Msg {
	want4 := x.q.Qtype == dns.TypeA || x.q.Qtype == dns.TypeANY
	if !want4 && x.q.Qtype != dns.TypeAAAA {
		return s.negative(x, dns.RcodeSuccess)
	}
	for _, a := range addrs {
		if a.Is4() == want4 {
			x.m.Answer = append(x.m.Answer, addrRR(x.q.Name, a, ttl(d)))
		}
	}
	if len(x.m.Answer) == 0 {
		return s.negative(x, dns.RcodeSuccess)
	}
	return s.finish(x, dns.RcodeSuccess)
}

// nsHost answers for a volunteer nameserver's name with the addresses the
// resolver can reach.
func (s *Server) nsHost(x *query, node string) *dns.Msg {
	ps := s.proxies(x)
	for i := range ps {
		p := &ps[i]
		if !p.Nameserver || s.nodeLabel(p.ID) != node {
			continue
		}
		var addrs []netip.Addr
		for _, a := range p.Addrs {
			if ok, _ := reachable(a, p.Public, x.rv); ok {
				addrs = append(addrs, a.Unmap())
			}
		}
		return s.addresses(x, addrs, s.cfg.NSTTL)
	}
	return s.negative(x, dns.RcodeNameError)
}

// origin answers for a Coralized name: A/AAAA of chosen proxies and
// nothing else (minimal responses).
func (s *Server) origin(x *query) *dns.Msg {
	var fam family
	switch x.q.Qtype {
	case dns.TypeA, dns.TypeANY: // ANY gets the A set (RFC 8482)
		fam = fam4
	case dns.TypeAAAA:
		fam = fam6
	default:
		return s.negative(x, dns.RcodeSuccess)
	}
	if x.ecsResp != nil && x.cv.ecs {
		x.ecsResp.SourceScope = uint8(x.cv.network.Bits()) // the answer is for this network only
	}
	ps := s.proxies(x)
	self, n := s.self(ps), s.cfg.Answers
	members, subset := s.siteMembers(x.q.Name)
	if subset {
		// Only members: the visitor's Host is the site's public name,
		// which only members map (no other node can tell which group's
		// claim to it is genuine). See groupAnswers for who and how many.
		ps, n = onlyMembers(ps, members), groupAnswers(s.cfg.Answers, len(members))
		// A group's nodes share its sites' spikes: none is preferred for
		// sharing this nameserver's clusters (a site's own node is the one
		// its owner's resolvers reach first).
		self = nil
	}
	now := s.now()
	req := chooseReq{
		v: x.cv, fam: fam, n: n, subset: subset,
		hints: s.hintsFor(x.cv.network, now), self: self, now: now, rotation: s.rotA.Add(1),
	}
	picks := s.choose(ps, req)
	if len(picks) == 0 {
		// Nothing of this family: NODATA if the other family has proxies
		// (so the client uses those); SERVFAIL if none is usable at all, so
		// the resolver tries another nameserver that may know a live one.
		req.fam, req.n = famAny, 1
		if len(s.choose(ps, req)) > 0 {
			return s.negative(x, dns.RcodeSuccess)
		}
		return s.finish(x, dns.RcodeServerFailure)
	}
	t := ttl(s.cfg.TTL)
	var used []netip.Addr // two IDs may share an address; an RRset has no duplicates
	for _, p := range picks {
		a := p.a4
		if fam == fam6 {
			a = p.a6
		}
		if !slices.Contains(used, a) {
			used = append(used, a)
			x.m.Answer = append(x.m.Answer, addrRR(x.q.Name, a, t))
		}
	}
	x.partial = true
	return s.finish(x, dns.RcodeSuccess)
}

// countTraffic reports a query's and its answer's bytes (Config.Traffic).
func (s *Server) countTraffic(sent, received int) {
	if s.cfg.Traffic != nil {
		s.cfg.Traffic(sent, received)
	}
}
