package store

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/coralcdn/coral/core/object"
)

// A writer whose caller hashes the body (a peer's body, hashed as it
// streamed in) stores the digest it is given without hashing the body
// again, the copy reads back whole, and a caller that states no digest
// stores nothing.
func TestCallerHashes(t *testing.T) {
	s := openStore(t, t.TempDir(), Options{})
	for _, tc := range []struct {
		name   string
		size   int
		digest bool // whether the caller states the SHA-256
	}{
		{"inline", 100, true},
		{"file", 3 * unit, true},
		{"no digest", 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "caller-" + tc.name
			data := body(key, 1, tc.size)
			meta := Meta{URL: "http://example.com/" + key, Status: 200, Size: int64(len(data))}
			if tc.digest {
				meta.SHA256 = sha256.Sum256(data)
			}
			before := object.BodyBytesHashed()
			w := s.Create(key, 0)
			w.CallerHashes()
			writePieces(t, w, data, 10_000)
			m, err := w.Commit(meta)
			if hashed := object.BodyBytesHashed() - before; hashed != 0 {
				t.Errorf("the store hashed %d bytes of a body its caller hashed", hashed)
			}
			if !tc.digest {
				if err == nil {
					t.Fatal("commit without the caller's digest succeeded")
				}
				if _, _, gerr := s.Get(key); gerr == nil {
					t.Fatal("an object was stored without a digest")
				}
				return
			}
			if err != nil || m.SHA256 != meta.SHA256 || m.Size != int64(len(data)) {
				t.Fatalf("commit: %v, meta %+v", err, m)
			}
			_, got, err := get(t, s, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back: %v, %d bytes of %d", err, len(got), len(data))
			}
		})
	}
}
