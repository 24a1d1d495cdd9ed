package group

import (
	"crypto/ed25519"
	"encoding/json"
	"os"
	"testing"
)

// Envelope is the signed form, for tests that build envelopes by hand.
type Envelope struct {
	Document  []byte `json:"document"`
	Signature []byte `json:"signature"`
}

func decode(b []byte, v any) error { return json.Unmarshal(b, v) }

func encode(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzOpen: any bytes from a peer give a manifest that validates or an
// error, never a panic; what opens re-validates and re-signs.
func FuzzOpen(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := priv.Public().(ed25519.PublicKey)
	fixture, _ := os.ReadFile("testdata/manifest.json")
	m, _ := ParseManifest(fixture)
	good, _ := Sign(m, priv)
	f.Add(good)
	f.Add(fixture)
	f.Add([]byte(`{"document":"","signature":""}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := Open(raw, pub)
		if err != nil {
			return
		}
		if err := got.Validate(); err != nil {
			t.Fatalf("opened an invalid manifest: %v", err)
		}
		if _, err := Sign(got, priv); err != nil {
			t.Fatalf("cannot re-sign an opened manifest: %v", err)
		}
	})
}

// FuzzParseManifest: a manifest's JSON as an owner writes it.
func FuzzParseManifest(f *testing.F) {
	fixture, _ := os.ReadFile("testdata/manifest.json")
	f.Add(fixture)
	f.Add([]byte(`{"serial":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseManifest(b); err == nil {
			if _, err := ParseManifest(encode(t, m)); err != nil {
				t.Fatalf("valid manifest does not round-trip: %v", err)
			}
		}
	})
}
