package group

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t testing.TB) Manifest {
	t.Helper()
	b, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return m
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func sign(t testing.TB, m Manifest, priv ed25519.PrivateKey) []byte {
	t.Helper()
	raw, err := Sign(m, priv)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Every way a manifest can be wrong is refused with the matching reason.
func TestValidateRejects(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Manifest)
		want   string
	}{
		{"serial zero", func(m *Manifest) { m.Serial = 0 }, "serial"},
		{"no name", func(m *Manifest) { m.Name = "" }, "name"},
		{"control character in name", func(m *Manifest) { m.Name = "a\x01" }, "name"},
		{"no sites", func(m *Manifest) { m.Sites = nil }, "sites"},
		{"bad host", func(m *Manifest) { m.Sites[0].Host = "WWW.alice.org" }, "host"},
		{"host with port", func(m *Manifest) { m.Sites[0].Host = "www.alice.org:80" }, "host"},
		{"IP as host", func(m *Manifest) { m.Sites[0].Host = "10.0.0.1" }, "host"},
		{"origin not a URL", func(m *Manifest) { m.Sites[0].Origin = "origin.alice.org" }, "origin"},
		{"origin ftp", func(m *Manifest) { m.Sites[0].Origin = "ftp://origin.alice.org" }, "origin"},
		{"origin with path", func(m *Manifest) { m.Sites[0].Origin = "http://origin.alice.org/x" }, "origin"},
		{"origin is the public name", func(m *Manifest) { m.Sites[0].Origin = "http://www.alice.org:8080" }, "leads back to Coral"},
		{"origin is another member site", func(m *Manifest) { m.Sites[0].Origin = "http://blog.bob.net" }, "leads back to Coral"},
		{"weight zero", func(m *Manifest) { m.Sites[0].Weight = 0 }, "weight"},
		{"weight too high", func(m *Manifest) { m.Sites[0].Weight = MaxWeight + 1 }, "weight"},
		{"site twice", func(m *Manifest) { m.Sites[1] = m.Sites[0] }, "twice"},
		{"bad peer", func(m *Manifest) { m.Members[0].Peer = "not-a-peer" }, "peer"},
		{"peer twice", func(m *Manifest) { m.Members[1].Peer = m.Members[0].Peer }, "twice"},
		{"no upload", func(m *Manifest) { m.Members[0].UploadMbps = 0 }, "upload"},
		{"negative upload", func(m *Manifest) { m.Members[0].UploadMbps = -3 }, "upload"},
		{"unknown member site", func(m *Manifest) { m.Members[0].Sites = []string{"www.eve.org"} }, "not among"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := fixture(t)
			c.change(&m)
			err := m.Validate()
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want malformed mentioning %q", err, c.want)
			}
			if _, err := Sign(m, ed25519.NewKeyFromSeed(make([]byte, 32))); err == nil {
				t.Error("a malformed manifest was signed")
			}
		})
	}
}

// A tracker accepts only a newer, correctly signed, well-formed manifest;
// every refusal leaves the manifest in force as it was.
func TestTrackerRefusals(t *testing.T) {
	pub, priv := newKey(t)
	_, other := newKey(t)
	m := fixture(t)
	m.Serial = 5
	good := sign(t, m, priv)
	older, equal, newer := m, m, m
	older.Serial, newer.Serial = 4, 6
	newer.Name = "renamed"
	extraField := []byte(strings.Replace(string(good), `"signature":"`, `"signature":"",  "x":"`, 1))
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"unsigned", []byte(`{"document":"` + strings.Split(string(good), `"`)[3] + `","signature":""}`), ErrUnsigned},
		{"wrong key", sign(t, newer, other), ErrBadSignature},
		{"older serial", sign(t, older, priv), ErrNotNewer},
		{"equal serial", sign(t, equal, priv), ErrNotNewer},
		{"unknown envelope field", extraField, ErrMalformed},
		{"truncated", good[:len(good)/2], ErrMalformed},
		{"garbage", []byte("\x00\xffnot json at all"), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"too large", make([]byte, MaxSignedBytes+1), ErrMalformed},
		{"signature of a different document", swapSignature(t, sign(t, newer, priv), good), ErrBadSignature},
	}
	tr, err := NewTracker(filepath.Join(t.TempDir(), "g.signed"), pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Offer(good); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := tr.Offer(c.raw); !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
			if cur, _, _ := tr.Current(); cur.Serial != 5 || cur.Name != m.Name {
				t.Errorf("in force changed to serial %d %q", cur.Serial, cur.Name)
			}
		})
	}
	if got, err := tr.Offer(sign(t, newer, priv)); err != nil || got.Name != "renamed" {
		t.Errorf("newer manifest: %v %v", got.Name, err)
	}
}

// swapSignature puts b's signature on a's document.
func swapSignature(t *testing.T, a, b []byte) []byte {
	t.Helper()
	var ea, eb Envelope
	if err := decode(a, &ea); err != nil {
		t.Fatal(err)
	}
	if err := decode(b, &eb); err != nil {
		t.Fatal(err)
	}
	ea.Signature = eb.Signature
	return encode(t, ea)
}

// A tracker with no key accepts nothing.
func TestNoKey(t *testing.T) {
	_, priv := newKey(t)
	tr, _ := NewTracker(filepath.Join(t.TempDir(), "g"), nil)
	if _, err := tr.Offer(sign(t, fixture(t), priv)); !errors.Is(err, ErrNoKey) {
		t.Errorf("got %v", err)
	}
}

// The accepted manifest survives a restart; a damaged file or a changed
// key is reported and not applied.
func TestPersistence(t *testing.T) {
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "groups", "g.signed")
	tr, _ := NewTracker(path, pub)
	m := fixture(t)
	m.Serial = 9
	if _, err := tr.Offer(sign(t, m, priv)); err != nil {
		t.Fatal(err)
	}
	again, err := NewTracker(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _, ok := again.Current(); !ok || cur.Serial != 9 || cur.Sites[0].Host != "www.alice.org" {
		t.Errorf("after restart: %+v %v", cur, ok)
	}
	other, _ := newKey(t)
	if tr, err := NewTracker(path, other); err == nil {
		t.Error("a manifest under another key was applied")
	} else if _, _, ok := tr.Current(); ok {
		t.Error("tracker holds a manifest it could not verify")
	}
	os.WriteFile(path, []byte(`{"document":"e30"`), 0o600)
	if tr, err := NewTracker(path, pub); err == nil {
		t.Error("a damaged file was applied")
	} else if _, _, ok := tr.Current(); ok {
		t.Error("tracker holds a damaged manifest")
	}
}

// A run-state document signed with the same key is not a manifest.
func TestContextSeparation(t *testing.T) {
	pub, priv := newKey(t)
	body := []byte(`{"serial":1}`)
	sig := ed25519.Sign(priv, append([]byte("coral run-state document v1\n"), body...))
	raw := encode(t, Envelope{Document: body, Signature: sig})
	if _, err := Open(raw, pub); !errors.Is(err, ErrBadSignature) {
		t.Errorf("got %v", err)
	}
}

func TestLookups(t *testing.T) {
	m := fixture(t)
	if s, ok := m.Site("blog.bob.net"); !ok || s.Origin != "https://bob.example.net:8443" {
		t.Errorf("Site: %+v %v", s, ok)
	}
	if _, ok := m.Site("www.eve.org"); ok {
		t.Error("unknown site found")
	}
	if p := m.Peers(); len(p) != 2 {
		t.Errorf("Peers: %v", p)
	}
	pub, _ := newKey(t)
	k, err := ParsePublicKey(FormatPublicKey(pub))
	if err != nil || !k.Equal(pub) {
		t.Errorf("key round trip: %v", err)
	}
	if _, err := ParsePublicKey("ed25519:short"); err == nil {
		t.Error("short key accepted")
	}
	if id := ID(pub); len(id) != 17 || id != ID(k) {
		t.Errorf("ID %q", id)
	}
}
