package object

import (
	"crypto/sha256"
	"testing"
)

// A URL's key is the SHA-256 of the canonical URL, and its String is the
// lower-case hex the store has always keyed objects by: caches written
// before the key type existed are found under the same bytes (the digests
// here were computed with sha256sum, not with this code).
func TestKeyIsTheStoreKeyOfOld(t *testing.T) {
	for _, tc := range []struct{ url, hex string }{
		{"http://example.com/", "2a1b402420ef46577471cdc7409b0fa2c6a204db316e59ade2d805435489a067"},
		{"http://example.com:8080/a?b=c", "aff89f7307b546cc670682a4c905ce422a2fdb2969aa0440181c7c29179b9cb4"},
		{"coral-hint:10.0.0.0/24", "fcf001ab4b92ac3b6a13fe0f26d5b8aa777c1aef454369bf49ff6692ceb09c61"},
	} {
		k := KeyOf(tc.url)
		if k.String() != tc.hex {
			t.Errorf("KeyOf(%q) = %s, want %s", tc.url, k, tc.hex)
		}
		if [32]byte(k) != sha256.Sum256([]byte(tc.url)) {
			t.Errorf("KeyOf(%q) bytes are not its SHA-256", tc.url)
		}
	}
}

// A hash's clone continues from the same state, independently: a receiver
// that resumes a peer's body from the origin writes the rest into it.
func TestCloneHashContinues(t *testing.T) {
	h := NewBodyHash()
	h.Write([]byte("first half, "))
	c := CloneHash(h)
	c.Write([]byte("second half"))
	h.Write([]byte("something else"))
	if got, want := c.Sum(nil), sha256.Sum256([]byte("first half, second half")); string(got) != string(want[:]) {
		t.Errorf("clone's digest %x, want %x", got, want)
	}
	if HashOf(nil) != nil {
		t.Error("HashOf of a reader that does not hash itself is not nil")
	}
}
