package locality

import (
	"github.com/coralcdn/coral/core/shaping"

	"errors"
	"fmt"
	"net/netip"

	"github.com/coralcdn/coral/core/wire"
	"github.com/fxamacker/cbor/v2"
)

// Announcement is what a node tells its peers about its proxy.
type Announcement struct {
	// Addrs are addresses its HTTP proxy accepts visitors on: the operator's
	// advertised addresses, the listener's address, or the machine's.
	Addrs []netip.Addr
	// AnyAddr says the proxy listens on every address of the machine, so the
	// address a peer sees the node at works too (a NAT's public address).
	AnyAddr bool
	// Public: reachable from the Internet at its global addresses.
	Public bool
	// Nameserver: also answers DNS on port 53 at Addrs.
	Nameserver bool
	// Cluster IDs at level 2 (regional), 1 and 0 (global); "" for none.
	Cluster [3]string
	// Headroom is what the node can still give (the volunteer's budget);
	// a node that sends none is taken as unbounded.
	Headroom shaping.Headroom
}

// Limits on an announcement from the wire: a few addresses and short IDs.
const (
	MaxAnnouncementBytes = 2048
	MaxAnnouncedAddrs    = 16
	maxClusterLen        = 64
)

// ErrBadAnnouncement wraps every reason a peer's announcement is refused.
var ErrBadAnnouncement = errors.New("locality: bad announcement")

// wireAnnouncement is Announcement on the wire. Integer keys keep it small;
// a decoder ignores keys it does not know, so fields can be added.
type wireAnnouncement struct {
	Addrs      [][]byte          `cbor:"1,keyasint,omitempty"` // 4 or 16 bytes each
	AnyAddr    bool              `cbor:"2,keyasint,omitempty"`
	Public     bool              `cbor:"3,keyasint,omitempty"`
	Nameserver bool              `cbor:"4,keyasint,omitempty"`
	Cluster    []string          `cbor:"5,keyasint,omitempty"`
	Headroom   *shaping.Headroom `cbor:"6,keyasint,omitempty"`
}

// Marshal encodes a for a peer. Addresses beyond MaxAnnouncedAddrs and
// invalid ones are left out, so what is sent always parses.
func (a Announcement) Marshal() ([]byte, error) {
	w := wireAnnouncement{AnyAddr: a.AnyAddr, Public: a.Public, Nameserver: a.Nameserver}
	if a.Headroom != shaping.Unbounded && a.Headroom != (shaping.Headroom{}) { // zero: not told
		h := a.Headroom
		w.Headroom = &h
	}
	for _, ip := range a.Addrs {
		if len(w.Addrs) == MaxAnnouncedAddrs {
			break
		}
		if ip.IsValid() {
			w.Addrs = append(w.Addrs, ip.Unmap().AsSlice())
		}
	}
	for _, c := range a.Cluster {
		if len(c) > maxClusterLen {
			return nil, fmt.Errorf("locality: cluster ID %q longer than %d bytes", c, maxClusterLen)
		}
	}
	if a.Cluster != ([3]string{}) {
		w.Cluster = a.Cluster[:]
	}
	b, err := cbor.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("locality: encode announcement: %w", err)
	}
	return b, nil
}

// ParseAnnouncement decodes a peer's announcement. Anything malformed or
// over the limits is an error wrapping ErrBadAnnouncement.
func ParseAnnouncement(b []byte) (Announcement, error) {
	var a Announcement
	if len(b) > MaxAnnouncementBytes {
		return a, fmt.Errorf("%w: %d bytes exceeds %d", ErrBadAnnouncement, len(b), MaxAnnouncementBytes)
	}
	var w wireAnnouncement
	if err := wire.Unmarshal(b, &w); err != nil {
		return a, fmt.Errorf("%w: %v", ErrBadAnnouncement, err)
	}
	if len(w.Addrs) > MaxAnnouncedAddrs {
		return a, fmt.Errorf("%w: %d addresses exceeds %d", ErrBadAnnouncement, len(w.Addrs), MaxAnnouncedAddrs)
	}
	for _, raw := range w.Addrs {
		ip, ok := netip.AddrFromSlice(raw)
		if !ok {
			return a, fmt.Errorf("%w: address of %d bytes", ErrBadAnnouncement, len(raw))
		}
		a.Addrs = append(a.Addrs, ip.Unmap())
	}
	if len(w.Cluster) > 3 {
		return a, fmt.Errorf("%w: %d cluster levels", ErrBadAnnouncement, len(w.Cluster))
	}
	for i, c := range w.Cluster {
		if len(c) > maxClusterLen {
			return a, fmt.Errorf("%w: cluster ID of %d bytes", ErrBadAnnouncement, len(c))
		}
		a.Cluster[i] = c
	}
	a.AnyAddr, a.Public, a.Nameserver = w.AnyAddr, w.Public, w.Nameserver
	a.Headroom = shaping.Unbounded
	if w.Headroom != nil {
		a.Headroom = *w.Headroom
	}
	return a, nil
}
