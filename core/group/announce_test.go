package group

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"testing"
)

// An announcement opens only if the manifest it carries is signed by the
// key it carries; the ID it yields is that key's.
func TestAnnouncement(t *testing.T) {
	pub, priv := newKey(t)
	otherPub, _ := newKey(t)
	signedM := sign(t, fixture(t), priv)
	id, key, m, raw, err := OpenAnnouncement(Announce(FormatPublicKey(pub), signedM))
	if err != nil || id != ID(pub) || key != FormatPublicKey(pub) || m.Name != "small blogs" || string(raw) != string(signedM) {
		t.Fatalf("good announcement: %v %v %v", id, m.Name, err)
	}
	for name, tc := range map[string]struct {
		raw  []byte
		want error
	}{
		"another key":  {Announce(FormatPublicKey(otherPub), signedM), ErrBadSignature},
		"bad key":      {Announce("ed25519:nope", signedM), ErrMalformed},
		"no manifest":  {[]byte(`{"key":"` + FormatPublicKey(pub) + `"}`), ErrMalformed},
		"extra field":  {[]byte(`{"key":"x","manifest":{},"x":1}`), ErrMalformed},
		"garbage":      {[]byte("\x00"), ErrMalformed},
		"not a string": {[]byte(`{"key":1}`), ErrMalformed},
	} {
		if _, _, _, _, err := OpenAnnouncement(tc.raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzOpenAnnouncement(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	raw, _ := Sign(fixture(f), priv)
	k, _ := json.Marshal(FormatPublicKey(priv.Public().(ed25519.PublicKey)))
	f.Add([]byte(`{"key":` + string(k) + `,"manifest":` + string(raw) + `}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if id, _, m, _, err := OpenAnnouncement(b); err == nil && (id == "" || m.Validate() != nil) {
			t.Fatalf("opened %q %+v", id, m)
		}
	})
}
