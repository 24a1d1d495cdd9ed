package proxy

import "bytes"

// The fast path's request parser (see fastpath.go). It faces the internet,
// so it is strict: it recognises only what it must, and everything it does
// not fully understand goes to net/http unchanged. Its one promise about a
// head it hands over (fastOther) is the framing: the head ends at its first
// empty line and the request has no body, exactly as net/http will read it.

// fastHeadMax is the largest request head the fast path reads (and its
// read buffer per connection); a longer one goes to net/http.
const fastHeadMax = 4 << 10

// fastFieldsMax is the most header fields the fast path reads.
const fastFieldsMax = 64

// fastVerdict is what the fast path may do with the bytes at the start of a
// connection's buffer.
type fastVerdict int

const (
	// fastIncomplete: no complete head yet.
	fastIncomplete fastVerdict = iota
	// fastPlain: a plain GET or HEAD the hot cache may answer.
	fastPlain
	// fastOther: a well-formed GET or HEAD without a body that needs the
	// full way (conditional, Range, Via, ...); its head alone is handed
	// to net/http.
	fastOther
	// fastUnusual: anything else; the connection is handed to net/http
	// for good from here.
	fastUnusual
)

// fastRequest is a parsed request head; its slices point into the buffer.
type fastRequest struct {
	head   bool   // HEAD, else GET
	target []byte // origin-form request-target, as sent
	host   []byte // the Host field's value, as net/http's Request.Host has it
}

// parseFastRequest reads the request head at the start of b: the verdict,
// and for fastPlain and fastOther the request and the head's length.
func parseFastRequest(b []byte) (req fastRequest, n int, v fastVerdict) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		// A bare CR or LF ends no head the fast path would read:
		// net/http gets it rather than the visitor waiting for more.
		if len(b) >= fastHeadMax || !crlfOnly(b) {
			return req, 0, fastUnusual
		}
		return req, 0, fastIncomplete
	}
	n = end + 4
	if n > fastHeadMax {
		return req, 0, fastUnusual
	}
	line, rest, _ := bytes.Cut(b[:end+2], []byte("\r\n"))
	var ok bool
	if req, ok = parseRequestLine(line); !ok {
		return req, 0, fastUnusual
	}
	plain, hosts, fields := true, 0, 0
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if fields++; fields > fastFieldsMax {
			return req, 0, fastUnusual
		}
		name, value, ok := parseField(line)
		if !ok {
			return req, 0, fastUnusual
		}
		switch fieldClass(name, value) {
		case fieldHost:
			req.host = value
			hosts++
		case fieldBody:
			return req, 0, fastUnusual
		case fieldNotPlain:
			plain = false
		}
	}
	if hosts != 1 || !validHost(req.host) {
		return req, 0, fastUnusual
	}
	if !plain {
		return req, n, fastOther
	}
	return req, n, fastPlain
}

// crlfOnly reports whether every CR and LF in b belongs to a CRLF (a CR
// at the very end may be the start of one).
func crlfOnly(b []byte) bool {
	for i, c := range b {
		switch {
		case c == '\n' && (i == 0 || b[i-1] != '\r'):
			return false
		case c == '\r' && i+1 < len(b) && b[i+1] != '\n':
			return false
		}
	}
	return true
}

// parseRequestLine accepts "GET|HEAD SP origin-form SP HTTP/1.1" only.
func parseRequestLine(line []byte) (req fastRequest, ok bool) {
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		req.head, line = true, line[5:]
	default:
		return req, false
	}
	target, version, found := bytes.Cut(line, []byte(" "))
	if !found || string(version) != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return req, false
	}
	for i, c := range target {
		if c <= ' ' || c >= 0x7f || c == '#' || c == '%' && !escaped(target[i+1:]) {
			return req, false
		}
	}
	req.target = target
	return req, true
}

// escaped reports whether b starts with the two hex digits of a
// percent-escape (net/http refuses a target with a broken one).
func escaped(b []byte) bool {
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	return len(b) >= 2 && isHex(b[0]) && isHex(b[1])
}

// parseField splits "name: value" (RFC 9110 §5): a token, a colon, and a
// value without control characters, stripped of spaces and tabs.
func parseField(line []byte) (name, value []byte, ok bool) {
	name, value, found := bytes.Cut(line, []byte(":"))
	if !found || len(name) == 0 {
		return nil, nil, false
	}
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, false
		}
	}
	for _, c := range value {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, bytes.Trim(value, " \t"), true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return c < 0x7f && bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validHost accepts the characters of a host name, an IP literal and a
// port: nothing net/http would refuse, and nothing an entry's key could
// hold that this does not.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

// fieldKind is what a request header field means to the fast path.
type fieldKind int

const (
	fieldPlain    fieldKind = iota // changes nothing in a hit's answer
	fieldHost                      // the Host field
	fieldNotPlain                  // changes the answer, or is the proxy's to check: the full way
	fieldBody                      // announces a body or a protocol change: net/http for good
)

// fieldClass sorts a request field. A field the hot path of ServeHTTP
// would not answer (plainRequest) is fieldNotPlain here too.
func fieldClass(name, value []byte) fieldKind {
	switch {
	case bytes.EqualFold(name, []byte("Host")):
		return fieldHost
	case bytes.EqualFold(name, []byte("Content-Length")), bytes.EqualFold(name, []byte("Transfer-Encoding")),
		bytes.EqualFold(name, []byte("Upgrade")), bytes.EqualFold(name, []byte("Expect")):
		return fieldBody
	case bytes.EqualFold(name, []byte("Connection")):
		if bytes.EqualFold(value, []byte("keep-alive")) {
			return fieldPlain
		}
		return fieldNotPlain
	case bytes.EqualFold(name, []byte("Via")):
		return fieldNotPlain // the loop check is ServeHTTP's
	}
	for _, f := range hotUnplainFields {
		if bytes.EqualFold(name, []byte(f)) {
			return fieldNotPlain
		}
	}
	return fieldPlain
}
