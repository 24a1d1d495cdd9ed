package locality

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/ipclass"
	"github.com/coralcdn/coral/core/object"
)

// Hint says that proxy Proxy is RTT away from a visitor network.
type Hint struct {
	Proxy string
	RTT   time.Duration
}

// Hint values are one line of text, "coral-hint/1 <proxy peer ID> <rtt ms>",
// so the control API's DSHT endpoints (which carry strings) can show and
// plant them.
const (
	hintMagic    = "coral-hint/1"
	maxHintBytes = 256
	maxProxyID   = 128
	// MaxHintRTT caps a hint; anything slower is not worth ranking.
	MaxHintRTT = 60 * time.Second
)

// ErrBadHint wraps every reason a hint value is refused.
var ErrBadHint = errors.New("locality: bad hint")

// Marshal encodes h as a DSHT value. The RTT is rounded to a millisecond.
func (h Hint) Marshal() ([]byte, error) {
	if err := checkProxyID(h.Proxy); err != nil {
		return nil, err
	}
	if h.RTT < 0 || h.RTT > MaxHintRTT {
		return nil, fmt.Errorf("%w: rtt %v outside 0..%v", ErrBadHint, h.RTT, MaxHintRTT)
	}
	ms := h.RTT.Round(time.Millisecond).Milliseconds()
	return []byte(hintMagic + " " + h.Proxy + " " + strconv.FormatInt(ms, 10)), nil
}

// ParseHint decodes a DSHT value written by Marshal (by any node: the
// bytes are outside input).
func ParseHint(b []byte) (Hint, error) {
	if len(b) > maxHintBytes {
		return Hint{}, fmt.Errorf("%w: %d bytes", ErrBadHint, len(b))
	}
	f := strings.Split(string(b), " ")
	if len(f) != 3 || f[0] != hintMagic {
		return Hint{}, fmt.Errorf("%w: want %q <proxy> <ms>", ErrBadHint, hintMagic)
	}
	if err := checkProxyID(f[1]); err != nil {
		return Hint{}, err
	}
	ms, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil || f[2] != strconv.FormatUint(ms, 10) {
		return Hint{}, fmt.Errorf("%w: rtt %q is not a number of milliseconds", ErrBadHint, f[2])
	}
	rtt := time.Duration(ms) * time.Millisecond
	if rtt > MaxHintRTT {
		return Hint{}, fmt.Errorf("%w: rtt %v above %v", ErrBadHint, rtt, MaxHintRTT)
	}
	return Hint{Proxy: f[1], RTT: rtt}, nil
}

// checkProxyID accepts printable ASCII without spaces: peer IDs are base58.
func checkProxyID(id string) error {
	if id == "" || len(id) > maxProxyID {
		return fmt.Errorf("%w: proxy ID of %d bytes", ErrBadHint, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: proxy ID has byte %#x", ErrBadHint, c)
		}
	}
	return nil
}

// NetworkOf is the hint network of a visitor address: its IPv4 /24 or IPv6
// /48. Addresses that are not global (loopback, LAN, CGNAT, link-local, a
// proxy tool's 198.18.0.0/15 and the other special-purpose blocks) have no
// hint network: the same prefix is a different place on every LAN.
func NetworkOf(a netip.Addr) (netip.Prefix, bool) {
	a = a.Unmap()
	if ipclass.Of(a) != ipclass.Global {
		return netip.Prefix{}, false
	}
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// hintNetwork maps the nameserver's network (a /24 or /48, or a shorter
// EDNS client subnet) to the network hints are stored under. A shorter
// client subnet is narrowed to the /24 (/48) at its start: an
// approximation, since visitors are recorded per /24.
func hintNetwork(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return netip.Prefix{}, false
	}
	return NetworkOf(p.Masked().Addr())
}

// HintKey is the DSHT key hints for network n are stored under. The
// "coral-hint:" prefix keeps it apart from URL keys.
func HintKey(n netip.Prefix) dsht.ID {
	return dsht.ID(object.KeyOf("coral-hint:" + n.Masked().String()))
}

// quantize rounds an RTT so that a proxy renewing a hint usually writes the
// same bytes (renewing, not adding, a DSHT value): 1 ms steps below 20 ms,
// 5 ms below 100 ms, 10 ms above — finer than the nameserver's 10 ms buckets
// where it matters.
func quantize(d time.Duration) time.Duration {
	step := time.Millisecond
	switch {
	case d >= 100*time.Millisecond:
		step = 10 * time.Millisecond
	case d >= 20*time.Millisecond:
		step = 5 * time.Millisecond
	}
	return min(d.Round(step), MaxHintRTT)
}
