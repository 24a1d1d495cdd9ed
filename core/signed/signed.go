// Package signed is the one implementation of Coral's signed documents: a
// JSON document, signed with an Ed25519 key under a context string (so a
// signature made for one kind of document means nothing for another), and
// a Tracker that keeps the newest accepted one on disk.
//
// Run-state documents (core/runstate) and group manifests (core/group) are
// both "fail-same" (CoralCDN's lesson from trusting a misbehaving
// management point): a node keeps the last document it accepted until one
// arrives that is well-formed, signed by the trusted key and newer (a
// higher serial). Anything else is refused with a reason and changes
// nothing.
package signed

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Reasons a document is refused. Every refusal wraps one of these.
var (
	ErrMalformed    = errors.New("malformed document")
	ErrUnsigned     = errors.New("document is not signed")
	ErrBadSignature = errors.New("signature does not verify with the trusted key")
	ErrNotNewer     = errors.New("document is not newer than the one in force")
	// ErrNotKept is a document that may well be valid but that this node
	// does not take now (a bound on what it keeps, or on how often one
	// sender is heard, is reached): gossip ignores it and does not hold it
	// against the peer that passed it on.
	ErrNotKept = errors.New("document not kept")
)

// Envelope is a document as it travels and is stored: the exact bytes the
// key holder signed, and the signature.
type Envelope struct {
	Document  []byte `json:"document"`  // the document's JSON (base64 in the envelope)
	Signature []byte `json:"signature"` // ed25519 over Kind.Context + Document
}

// Kind describes one kind of signed document D.
type Kind[D any] struct {
	Name     string // for messages: "runstate", "group"
	Context  string // prefixed to the document bytes before signing
	MaxBytes int    // larger envelopes are malformed
	// Parse decodes and validates a document's JSON; its errors wrap
	// ErrMalformed.
	Parse func([]byte) (D, error)
	// Serial orders documents: a tracker accepts only a higher one.
	Serial func(D) uint64
	// NoKey is returned when no key is trusted.
	NoKey error
}

// Sign makes the signed envelope of doc. The document is encoded and
// parsed back first, so that only documents a node would accept get signed.
func (k Kind[D]) Sign(doc D, key ed25519.PrivateKey) ([]byte, error) {
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", k.Name, err)
	}
	if _, err := k.Parse(body); err != nil {
		return nil, err
	}
	sig := ed25519.Sign(key, append([]byte(k.Context), body...))
	raw, err := json.Marshal(Envelope{Document: body, Signature: sig})
	if err == nil && len(raw) > k.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes signed, more than %d", ErrMalformed, len(raw), k.MaxBytes)
	}
	return raw, err
}

// Open parses a signed envelope, verifies it against the trusted key and
// returns the document. It never panics on any input.
func (k Kind[D]) Open(raw []byte, trusted ed25519.PublicKey) (D, error) {
	var zero D
	if len(trusted) != ed25519.PublicKeySize {
		return zero, k.NoKey
	}
	var s Envelope
	if len(raw) > k.MaxBytes {
		return zero, fmt.Errorf("%w: %d bytes, more than %d", ErrMalformed, len(raw), k.MaxBytes)
	}
	if err := DecodeStrict(raw, &s); err != nil {
		return zero, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if len(s.Document) == 0 {
		return zero, fmt.Errorf("%w: no document in the envelope", ErrMalformed)
	}
	if len(s.Signature) == 0 {
		return zero, ErrUnsigned
	}
	if len(s.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(trusted, append([]byte(k.Context), s.Document...), s.Signature) {
		return zero, ErrBadSignature
	}
	return k.Parse(s.Document)
}

// DecodeStrict decodes exactly one JSON value with no unknown fields: a
// field this release does not know could be an order it would ignore.
func DecodeStrict(b []byte, v any) error {
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

// publicKeyPrefix marks a public key in text form.
const publicKeyPrefix = "ed25519:"

// FormatPublicKey is the text form of a key ("ed25519:<base64url>"), for
// config files and invite codes.
func FormatPublicKey(k ed25519.PublicKey) string {
	return publicKeyPrefix + base64.RawURLEncoding.EncodeToString(k)
}

// ParsePublicKey reads FormatPublicKey's form; what names the key in the
// error ("operator key", "group key").
func ParsePublicKey(s, what string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), publicKeyPrefix)
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok || err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%s %q: want \"ed25519:\" and 43 base64url characters", what, s)
	}
	return ed25519.PublicKey(b), nil
}
