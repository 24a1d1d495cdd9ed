// Package runstate is how a Coral network is run: an operator signs run-state
// documents (pause or resume components network-wide, a minimum version, a
// network-secret rotation, a message for status pages) and every node that
// trusts the operator's key applies the newest correctly signed one.
//
// It is "fail-same" (CoralCDN's lesson from trusting a misbehaving management
// point): a node keeps its status quo — the last document it accepted, kept
// on disk across restarts — until a document arrives that is well-formed,
// signed by the trusted key and newer (a higher serial). Anything else is
// refused with a reason and changes nothing.
//
// The package knows nothing of how documents travel (p2p does that); it is
// the format, the verification and the state machine.
package runstate

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	sdoc "github.com/coralcdn/coral/core/signed"
)

// Components that a document can pause.
const (
	Proxy = "proxy"
	DNS   = "dns"
	DSHT  = "dsht"
)

// Components lists every component name a document may pause.
var Components = []string{Proxy, DNS, DSHT}

// Limits on a document; larger ones are malformed.
const (
	MaxSignedBytes   = 16 << 10
	MaxMessageLength = 500
)

// signingContext is prefixed to the document bytes before signing, so a
// signature over a run-state document can mean nothing else.
const signingContext = "coral run-state document v1\n"

// Reasons a document is refused. Every refusal wraps one of these.
var (
	ErrMalformed    = sdoc.ErrMalformed
	ErrUnsigned     = sdoc.ErrUnsigned
	ErrBadSignature = sdoc.ErrBadSignature
	ErrNotNewer     = sdoc.ErrNotNewer
	ErrNoOperator   = errors.New("runstate: this node trusts no operator key")
)

// kind is how run-state documents are signed, verified and tracked.
var kind = sdoc.Kind[Document]{
	Name: "runstate", Context: signingContext, MaxBytes: MaxSignedBytes,
	Parse: ParseDocument, Serial: func(d Document) uint64 { return d.Serial }, NoKey: ErrNoOperator,
}

// Document is what an operator decides for the whole network.
type Document struct {
	// Serial orders documents: a node accepts only a higher one.
	Serial uint64 `json:"serial"`
	// Issued is when the operator signed it (informational).
	Issued time.Time `json:"issued"`
	// Paused components stop serving on every node; absent ones run.
	Paused []string `json:"paused,omitempty"`
	// MinVersion ("0.2.0"): nodes of an older release stop serving and say
	// why. Empty: no minimum.
	MinVersion string `json:"min_version,omitempty"`
	// Rotation announces a new network secret.
	Rotation *Rotation `json:"rotation,omitempty"`
	// Message is shown on every node's status page.
	Message string `json:"message,omitempty"`
}

// Rotation replaces the network secret: from From on, nodes use Secret;
// until then the old one stays in use (and accepted).
//
// Secret travels in clear: the document is signed, not encrypted, and is
// gossiped to every node connected with the old secret. So a rotation
// changes the key but is not revocation: whoever holds the old secret and
// is connected before From (a leaked invite, an expelled member) learns the
// new one. Shutting someone out takes a new network and new invites (README,
// "Run a network").
type Rotation struct {
	Secret string    `json:"secret"` // 64 hex digits (32 bytes)
	From   time.Time `json:"from"`
}

// Signed is a document as it travels and is stored (sdoc.Envelope).
type Signed = sdoc.Envelope

// Sign makes the signed envelope of doc with the operator's private key.
func Sign(doc Document, key ed25519.PrivateKey) ([]byte, error) { return kind.Sign(doc, key) }

// Open parses a signed envelope, verifies it against the trusted key and
// returns the document. It never panics on any input.
func Open(raw []byte, trusted ed25519.PublicKey) (Document, error) { return kind.Open(raw, trusted) }

// ParseDocument decodes and validates a document's JSON (as an operator
// writes it, or as it was signed).
func ParseDocument(b []byte) (Document, error) {
	var d Document
	if err := sdoc.DecodeStrict(b, &d); err != nil {
		return d, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return d, d.Validate()
}

// Validate checks that every field makes sense.
func (d Document) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
	if d.Serial == 0 {
		return bad("serial must be at least 1")
	}
	for _, c := range d.Paused {
		if !slices.Contains(Components, c) {
			return bad("paused: unknown component %q (want %s)", c, strings.Join(Components, ", "))
		}
	}
	if d.MinVersion != "" {
		if _, ok := ParseVersion(d.MinVersion); !ok {
			return bad("min_version %q: want a release number such as \"0.2.0\"", d.MinVersion)
		}
	}
	if r := d.Rotation; r != nil {
		if k, err := hex.DecodeString(r.Secret); err != nil || len(k) != 32 {
			return bad("rotation.secret: want 64 hex digits (32 bytes)")
		}
		if r.From.IsZero() {
			return bad("rotation.from: the time the new secret takes over is required")
		}
	}
	if len(d.Message) > MaxMessageLength || !utf8.ValidString(d.Message) {
		return bad("message: at most %d characters of UTF-8", MaxMessageLength)
	}
	for _, r := range d.Message {
		if r < 0x20 && r != '\n' {
			return bad("message: control characters are not allowed")
		}
	}
	return nil
}

// IsPaused reports whether the document pauses component c.
func (d Document) IsPaused(c string) bool { return slices.Contains(d.Paused, c) }

// SecretAt is the network secret (32 bytes) the document says is in force
// at now: the rotation's once its time has come, else none (ok false: keep
// the current one).
func (d Document) SecretAt(now time.Time) (secret []byte, ok bool) {
	if d.Rotation == nil || now.Before(d.Rotation.From) {
		return nil, false
	}
	k, err := hex.DecodeString(d.Rotation.Secret)
	return k, err == nil && len(k) == 32
}

// ---- operator keys ----

// FormatPublicKey is the text form of an operator key ("ed25519:<base64url>"),
// for config files and invite codes.
func FormatPublicKey(k ed25519.PublicKey) string { return sdoc.FormatPublicKey(k) }

// ParsePublicKey reads FormatPublicKey's form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	k, err := sdoc.ParsePublicKey(s, "runstate: operator key")
	return k, err
}
