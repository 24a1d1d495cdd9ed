package signed

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

type doc struct {
	Serial uint64 `json:"serial"`
}

var kind = Kind[doc]{
	Name: "test", Context: "test document v1\n", MaxBytes: 512,
	Parse: func(b []byte) (doc, error) {
		var d doc
		if err := DecodeStrict(b, &d); err != nil || d.Serial == 0 {
			return d, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return d, nil
	},
	Serial: func(d doc) uint64 { return d.Serial },
	NoKey:  errors.New("no key"),
}

// Sign refuses what Parse would refuse and what would not fit; Open
// refuses another context's signature; the tracker keeps the highest.
func TestKind(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	if _, err := kind.Sign(doc{}, priv); !errors.Is(err, ErrMalformed) {
		t.Errorf("signed an invalid document: %v", err)
	}
	big := kind
	big.MaxBytes = 10
	if _, err := big.Sign(doc{Serial: 1}, priv); !errors.Is(err, ErrMalformed) {
		t.Errorf("signed a document larger than MaxBytes: %v", err)
	}
	other := kind
	other.Context = "another kind v1\n"
	raw, _ := other.Sign(doc{Serial: 1}, priv)
	if _, err := kind.Open(raw, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another context's signature: %v", err)
	}
	if _, err := kind.Open(raw, nil); err != kind.NoKey {
		t.Errorf("no key: %v", err)
	}
	tr, _ := NewTracker(kind, filepath.Join(t.TempDir(), "doc"), pub)
	for _, s := range []uint64{2, 1, 2, 3} {
		raw, _ := kind.Sign(doc{Serial: s}, priv)
		tr.Offer(raw)
	}
	if d, _, _ := tr.Current(); d.Serial != 3 {
		t.Errorf("in force %d", d.Serial)
	}
	for _, s := range []string{"", "ed25519:", "ed25519:AAAA", "rsa:" + FormatPublicKey(pub)[8:]} {
		if _, err := ParsePublicKey(s, "test key"); err == nil {
			t.Errorf("key %q accepted", s)
		}
	}
	if k, err := ParsePublicKey(" "+FormatPublicKey(pub)+"\n", "test key"); err != nil || !k.Equal(pub) {
		t.Errorf("round trip: %v", err)
	}
}
