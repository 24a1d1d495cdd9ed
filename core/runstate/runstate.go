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
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
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
	ErrMalformed    = errors.New("runstate: malformed document")
	ErrUnsigned     = errors.New("runstate: document is not signed")
	ErrBadSignature = errors.New("runstate: signature does not verify with the trusted operator key")
	ErrNotNewer     = errors.New("runstate: document is not newer than the one in force")
	ErrNoOperator   = errors.New("runstate: this node trusts no operator key")
)

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
type Rotation struct {
	Secret string    `json:"secret"` // 64 hex digits (32 bytes)
	From   time.Time `json:"from"`
}

// Signed is a document as it travels and is stored: the exact bytes the
// operator signed, and the signature.
type Signed struct {
	Document  []byte `json:"document"`  // JSON of a Document (base64 in the envelope)
	Signature []byte `json:"signature"` // ed25519 over signingContext + Document
}

// Sign makes the signed envelope of doc with the operator's private key.
func Sign(doc Document, key ed25519.PrivateKey) ([]byte, error) {
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("runstate: encode: %w", err)
	}
	sig := ed25519.Sign(key, append([]byte(signingContext), body...))
	return json.Marshal(Signed{Document: body, Signature: sig})
}

// Open parses a signed envelope, verifies it against the trusted key and
// returns the document. It never panics on any input.
func Open(raw []byte, trusted ed25519.PublicKey) (Document, error) {
	if len(trusted) != ed25519.PublicKeySize {
		return Document{}, ErrNoOperator
	}
	s, err := parseEnvelope(raw)
	if err != nil {
		return Document{}, err
	}
	if len(s.Signature) == 0 {
		return Document{}, ErrUnsigned
	}
	if len(s.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(trusted, append([]byte(signingContext), s.Document...), s.Signature) {
		return Document{}, ErrBadSignature
	}
	return ParseDocument(s.Document)
}

func parseEnvelope(raw []byte) (Signed, error) {
	var s Signed
	if len(raw) > MaxSignedBytes {
		return s, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), MaxSignedBytes)
	}
	if err := decodeStrict(raw, &s); err != nil {
		return s, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if len(s.Document) == 0 {
		return s, fmt.Errorf("%w: no document in the envelope", ErrMalformed)
	}
	return s, nil
}

// ParseDocument decodes and validates a document's JSON (as an operator
// writes it, or as it was signed).
func ParseDocument(b []byte) (Document, error) {
	var d Document
	if err := decodeStrict(b, &d); err != nil {
		return d, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return d, d.Validate()
}

// decodeStrict decodes exactly one JSON value with no unknown fields: a
// field this release does not know could be an order it would ignore.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
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

// publicKeyPrefix marks an operator public key in text form.
const publicKeyPrefix = "ed25519:"

// FormatPublicKey is the text form of an operator key ("ed25519:<base64url>"),
// for config files and invite codes.
func FormatPublicKey(k ed25519.PublicKey) string {
	return publicKeyPrefix + base64.RawURLEncoding.EncodeToString(k)
}

// ParsePublicKey reads FormatPublicKey's form.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), publicKeyPrefix)
	if !ok {
		return nil, fmt.Errorf("runstate: operator key %q: want \"ed25519:\" and 43 base64url characters", s)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("runstate: operator key %q: want \"ed25519:\" and 43 base64url characters", s)
	}
	return ed25519.PublicKey(b), nil
}
