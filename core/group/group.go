// Package group is site groups: a handful of small sites whose owners run
// Coral nodes and pool their upload, so that a spike on one site is carried
// by the whole group (CoralCDN's "time-sharing for network bandwidth").
//
// A group is defined by a manifest signed with the group's Ed25519 key: the
// group's name, a serial, the member sites (the public host name, the
// origin it maps to, a weight) and the member nodes (peer ID, the upload
// each commits, which sites are theirs). Manifests are signed, verified and
// kept exactly as run-state documents are (core/signed: fail-same, only a
// newer, well-formed, correctly signed manifest replaces the one in force).
//
// The package knows nothing of how manifests travel (p2p does that).
package group

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/signed"
)

// Limits on a manifest; larger ones are malformed.
const (
	MaxSignedBytes = 64 << 10
	MaxSites       = 64
	MaxMembers     = 256
	MaxWeight      = 1000
	MaxNameLength  = 64
)

// signingContext makes a signature over a manifest mean nothing else (a
// run-state document signed with the same key is not a manifest).
const signingContext = "coral group manifest v1\n"

// Manifest is what the group's key holder decides for the group.
type Manifest struct {
	Name    string    `json:"name"`
	Serial  uint64    `json:"serial"` // members accept only a higher one
	Issued  time.Time `json:"issued"` // informational
	Sites   []Site    `json:"sites"`
	Members []Member  `json:"members"`
}

// Site is a member site, served under its own public name.
type Site struct {
	// Host is the public name visitors use ("www.site.org"); its DNS
	// record points at Host + "." + Coral's zone.
	Host string `json:"host"`
	// Origin is where its content is fetched ("http://origin.site.org:8080"),
	// never Host itself: Host leads back to Coral.
	Origin string `json:"origin"`
	// Weight is the site's share of a member node's upload for the group.
	Weight int `json:"weight"`
}

// Member is a member node.
type Member struct {
	Peer string `json:"peer"` // libp2p peer ID (base58)
	// UploadMbps is the upload (megabits per second) the node commits.
	UploadMbps float64  `json:"upload_mbps"`
	Sites      []string `json:"sites,omitempty"` // hosts of the sites that are this member's own
}

// Kind is how manifests are signed, verified and tracked.
var Kind = signed.Kind[Manifest]{
	Name: "group", Context: signingContext, MaxBytes: MaxSignedBytes,
	Parse: ParseManifest, Serial: func(m Manifest) uint64 { return m.Serial }, NoKey: ErrNoKey,
}

// Reasons a manifest is refused (see core/signed).
var (
	ErrMalformed    = signed.ErrMalformed
	ErrUnsigned     = signed.ErrUnsigned
	ErrBadSignature = signed.ErrBadSignature
	ErrNotNewer     = signed.ErrNotNewer
	ErrNoKey        = fmt.Errorf("group: no group key")
)

// Sign makes the signed envelope of m with the group's private key.
func Sign(m Manifest, key ed25519.PrivateKey) ([]byte, error) { return Kind.Sign(m, key) }

// Open parses a signed manifest and verifies it with the group key. It
// never panics on any input.
func Open(raw []byte, key ed25519.PublicKey) (Manifest, error) { return Kind.Open(raw, key) }

// Tracker holds the manifest in force for one group (see signed.Tracker).
type Tracker = signed.Tracker[Manifest]

// NewTracker loads the last accepted manifest of the group with key from
// path, if any.
func NewTracker(path string, key ed25519.PublicKey) (*Tracker, error) {
	return signed.NewTracker(Kind, path, key)
}

// ParseManifest decodes and validates a manifest's JSON.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	if err := signed.DecodeStrict(b, &m); err != nil {
		return m, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, m.Validate()
}

// Validate checks that every field makes sense.
func (m Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if m.Serial == 0 {
		return bad("serial must be at least 1")
	}
	if m.Name == "" || len(m.Name) > MaxNameLength || !utf8.ValidString(m.Name) || strings.ContainsFunc(m.Name, func(r rune) bool { return r < 0x20 }) {
		return bad("name: 1 to %d printable characters", MaxNameLength)
	}
	if len(m.Sites) == 0 || len(m.Sites) > MaxSites {
		return bad("sites: 1 to %d", MaxSites)
	}
	if len(m.Members) > MaxMembers {
		return bad("members: at most %d", MaxMembers)
	}
	hosts := map[string]bool{}
	for i, s := range m.Sites {
		if err := s.validate(); err != nil {
			return bad("sites[%d]: %v", i, err)
		}
		if hosts[s.Host] {
			return bad("sites[%d]: %s is listed twice", i, s.Host)
		}
		hosts[s.Host] = true
	}
	for i, s := range m.Sites {
		if o, _, _ := coralurl.ParseOrigin(s.Origin); hosts[o.Host] {
			return bad("sites[%d]: origin %s is a member site's public name, which leads back to Coral", i, s.Origin)
		}
	}
	peers := map[string]bool{}
	for i, mb := range m.Members {
		if err := mb.validate(hosts); err != nil {
			return bad("members[%d]: %v", i, err)
		}
		if peers[mb.Peer] {
			return bad("members[%d]: peer %s is listed twice", i, mb.Peer)
		}
		peers[mb.Peer] = true
	}
	return nil
}

func (s Site) validate() error {
	o, u, err := coralurl.ParseOrigin("http://" + s.Host)
	if err != nil || o.Host != s.Host || u.Port() != "" || u.Path != "" || u.RawQuery != "" || !strings.ContainsAny(s.Host, "abcdefghijklmnopqrstuvwxyz") {
		return fmt.Errorf("host %q: want a lower-case DNS name such as www.site.org", s.Host)
	}
	o, u, err = coralurl.ParseOrigin(s.Origin)
	if err != nil || !strings.Contains(s.Origin, "://") || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return fmt.Errorf("origin %q: want http(s)://host[:port] (%v)", s.Origin, err)
	}
	if o.Host == s.Host {
		return fmt.Errorf("origin %q is the public name itself, which leads back to Coral", s.Origin)
	}
	if s.Weight < 1 || s.Weight > MaxWeight {
		return fmt.Errorf("weight %d: want 1 to %d", s.Weight, MaxWeight)
	}
	return nil
}

func (mb Member) validate(hosts map[string]bool) error {
	if !peerIDLike(mb.Peer) {
		return fmt.Errorf("peer %q: want a libp2p peer ID (base58, as `coral id` prints)", mb.Peer)
	}
	if !(mb.UploadMbps > 0 && mb.UploadMbps <= 1e6) {
		return fmt.Errorf("upload_mbps %v: want more than 0", mb.UploadMbps)
	}
	for _, h := range mb.Sites {
		if !hosts[h] {
			return fmt.Errorf("site %q is not among the group's sites", h)
		}
	}
	return nil
}

// peerIDLike checks the text form of a peer ID without linking libp2p
// (core does not): base58, of the lengths libp2p's IDs have.
func peerIDLike(s string) bool {
	if len(s) < 40 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", r) {
			return false
		}
	}
	return true
}

// Site returns the member site with public name host.
func (m Manifest) Site(host string) (Site, bool) {
	for _, s := range m.Sites {
		if s.Host == host {
			return s, true
		}
	}
	return Site{}, false
}

// Peers are the member nodes' peer IDs.
func (m Manifest) Peers() []string {
	out := make([]string, len(m.Members))
	for i, mb := range m.Members {
		out[i] = mb.Peer
	}
	return out
}

// Member returns the member entry of peer.
func (m Manifest) Member(peer string) (Member, bool) {
	for _, mb := range m.Members {
		if mb.Peer == peer {
			return mb, true
		}
	}
	return Member{}, false
}

// ID names a group by its key: a short, stable label for topics and file
// names ("g" and 16 base32 characters of the key's SHA-256).
func ID(key ed25519.PublicKey) string {
	sum := sha256.Sum256(key)
	return "g" + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10]))
}

// FormatPublicKey and ParsePublicKey are the text form of a group key
// ("ed25519:<base64url>"), as in the config's [[groups]] key.
func FormatPublicKey(k ed25519.PublicKey) string { return signed.FormatPublicKey(k) }

// ParsePublicKey reads FormatPublicKey's form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	return signed.ParsePublicKey(s, "group key")
}

func decodeStrict(b []byte, v any) error { return signed.DecodeStrict(b, v) }
