package runstate

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func signed(t testing.TB, d Document, k ed25519.PrivateKey) []byte {
	t.Helper()
	raw, err := Sign(d, k)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func fixture(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRaw signs arbitrary document bytes, bypassing Sign's validation, as a
// careless or hostile operator tool could.
func signRaw(body []byte, k ed25519.PrivateKey) []byte {
	raw, _ := json.Marshal(Signed{Document: body, Signature: ed25519.Sign(k, append([]byte(signingContext), body...))})
	return raw
}

// Every way a document can be wrong is refused with its reason and leaves
// the document in force unchanged.
func TestOfferRejections(t *testing.T) {
	pub, priv := newKey(t)
	_, other := newKey(t)
	good := signed(t, Document{Serial: 5, Paused: []string{DNS}, Message: "in force"}, priv)
	unsigned, _ := json.Marshal(Signed{Document: []byte(`{"serial":9}`)})
	tampered := strings.Replace(string(signed(t, Document{Serial: 9}, priv)), `"signature":"`, `"signature":"AAAA`, 1)
	swapped := func() []byte { // a valid signature over another document
		var a, b Signed
		json.Unmarshal(signed(t, Document{Serial: 9}, priv), &a)
		json.Unmarshal(signed(t, Document{Serial: 10, Paused: Components}, priv), &b)
		a.Document = b.Document
		raw, _ := json.Marshal(a)
		return raw
	}()
	for _, tc := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"unsigned", unsigned, ErrUnsigned},
		{"wrong key", signed(t, Document{Serial: 9}, other), ErrBadSignature},
		{"bad signature", []byte(tampered), ErrBadSignature}, // 67 bytes, not a signature
		{"signature over another document", swapped, ErrBadSignature},
		{"older serial", signed(t, Document{Serial: 4}, priv), ErrNotNewer},
		{"same serial", signed(t, Document{Serial: 5, Message: "replay with a change"}, priv), ErrNotNewer},
		{"unknown field", signRaw(fixture(t, "unknown-field.json"), priv), ErrMalformed},
		{"unknown component", signRaw(fixture(t, "bad-component.json"), priv), ErrMalformed},
		{"serial zero", signRaw([]byte(`{"serial":0}`), priv), ErrMalformed},
		{"bad min version", signRaw([]byte(`{"serial":9,"min_version":"soon"}`), priv), ErrMalformed},
		{"short rotation secret", signRaw([]byte(`{"serial":9,"rotation":{"secret":"abcd","from":"2026-12-07T00:00:00Z"}}`), priv), ErrMalformed},
		{"control characters", signRaw([]byte(`{"serial":9,"message":"a\u001b[2Jb"}`), priv), ErrMalformed},
		{"truncated", good[:len(good)/2], ErrMalformed},
		{"trailing data", append(append([]byte{}, good...), []byte(`{"x":1}`)...), ErrMalformed},
		{"garbage", []byte("\x00\x01\xffnot json at all"), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"no document", []byte(`{"signature":""}`), ErrMalformed},
		{"oversize", append([]byte(`{"document":"`), make([]byte, MaxSignedBytes)...), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := NewTracker(filepath.Join(t.TempDir(), "runstate"), pub)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Offer(good); err != nil {
				t.Fatalf("good document refused: %v", err)
			}
			_, err = tr.Offer(tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if d, _, _ := tr.Current(); d.Serial != 5 || d.Message != "in force" {
				t.Errorf("document in force changed to %+v", d)
			}
		})
	}
}

// A node that trusts no operator accepts nothing.
func TestNoOperatorAcceptsNothing(t *testing.T) {
	_, priv := newKey(t)
	tr, err := NewTracker(filepath.Join(t.TempDir(), "runstate"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Offer(signed(t, Document{Serial: 1}, priv)); !errors.Is(err, ErrNoOperator) {
		t.Fatalf("got %v", err)
	}
}

// The accepted document is kept on disk and in force after a restart; a
// stored document that no longer verifies is not applied.
func TestTrackerKeepsStateAcrossRestart(t *testing.T) {
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "runstate")
	tr, _ := NewTracker(path, pub)
	doc, err := ParseDocument(fixture(t, "pause-proxy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Offer(signed(t, doc, priv)); err != nil {
		t.Fatal(err)
	}
	again, err := NewTracker(path, pub)
	if err != nil {
		t.Fatal(err)
	}
	got, raw, ok := again.Current()
	if !ok || got.Serial != 2 || !got.IsPaused(Proxy) || len(raw) == 0 {
		t.Errorf("after restart: %+v %v", got, ok)
	}
	if _, err := again.Offer(signed(t, Document{Serial: 1}, priv)); !errors.Is(err, ErrNotNewer) {
		t.Errorf("older document after restart: %v", err)
	}

	otherPub, _ := newKey(t)
	rekeyed, err := NewTracker(path, otherPub)
	if err == nil || !errors.Is(err, ErrBadSignature) {
		t.Errorf("stored document under another key: %v", err)
	}
	if _, _, ok := rekeyed.Current(); ok {
		t.Error("a document the trusted key did not sign is in force")
	}
	os.WriteFile(path, []byte("damaged"), 0o600)
	if damaged, err := NewTracker(path, pub); err == nil {
		t.Error("damaged file accepted")
	} else if _, _, ok := damaged.Current(); ok {
		t.Error("damaged file in force")
	}
}

func TestEffect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		doc     Document
		version string
		serving []string
		why     string
	}{
		{"nothing", Document{Serial: 1}, "0.1.0", Components, ""},
		{"pause proxy", Document{Serial: 1, Paused: []string{Proxy}}, "0.1.0", []string{DNS, DSHT}, "paused by the network's operator: proxy"},
		{"too old", Document{Serial: 1, MinVersion: "0.2.0"}, "0.1.9+git1234", nil, "runs coral 0.1.9+git1234, the network requires 0.2.0 or newer"},
		{"new enough", Document{Serial: 1, MinVersion: "0.2.0"}, "v0.2.0", Components, ""},
		{"development build", Document{Serial: 1, MinVersion: "0.2.0"}, "dev", Components, "has no release number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := EffectFor(tc.doc, tc.version)
			for _, c := range Components {
				want := strings.Contains(strings.Join(tc.serving, ","), c)
				if e.Serving[c] != want {
					t.Errorf("%s serving %v, want %v", c, e.Serving[c], want)
				}
			}
			if !strings.Contains(e.Why, tc.why) || (tc.why == "") != (e.Why == "") {
				t.Errorf("why %q, want %q", e.Why, tc.why)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	doc, err := ParseDocument(fixture(t, "rotation.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := doc.SecretAt(doc.Rotation.From.Add(-time.Second)); ok {
		t.Error("new secret in force before its time")
	}
	if k, ok := doc.SecretAt(doc.Rotation.From); !ok || len(k) != 32 || k[1] != 0x11 {
		t.Errorf("new secret at its time: %x %v", k, ok)
	}
}

func TestPublicKeyText(t *testing.T) {
	pub, _ := newKey(t)
	got, err := ParsePublicKey(FormatPublicKey(pub))
	if err != nil || !got.Equal(pub) {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", "ed25519:", "ed25519:abc", "rsa:" + FormatPublicKey(pub)[8:], FormatPublicKey(pub) + "AA"} {
		if _, err := ParsePublicKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzOpen: no input makes the parser panic, and whatever it accepts is a
// valid document signed by the trusted key.
func FuzzOpen(f *testing.F) {
	pub, priv := newKey(f)
	f.Add(signed(f, Document{Serial: 3, Paused: []string{Proxy}, Message: "m"}, priv))
	f.Add([]byte(`{"document":"e30=","signature":""}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := Open(raw, pub)
		if err == nil {
			if verr := d.Validate(); verr != nil {
				t.Fatalf("accepted an invalid document: %v", verr)
			}
		}
	})
}

// Documents arriving at once from several peers: the highest serial wins,
// whatever the order, and what is in force always verifies.
func TestTrackerConcurrentOffers(t *testing.T) {
	pub, priv := newKey(t)
	path := filepath.Join(t.TempDir(), "runstate")
	tr, _ := NewTracker(path, pub)
	docs := make([][]byte, 40)
	for i := range docs {
		docs[i] = signed(t, Document{Serial: uint64(i + 1)}, priv)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(docs); i += 4 {
				tr.Offer(docs[len(docs)-1-i])
				if _, raw, ok := tr.Current(); ok {
					if _, err := Open(raw, pub); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if d, _, _ := tr.Current(); d.Serial != uint64(len(docs)) {
		t.Errorf("in force: serial %d, want %d", d.Serial, len(docs))
	}
	again, _ := NewTracker(path, pub)
	if d, _, _ := again.Current(); d.Serial != uint64(len(docs)) {
		t.Errorf("on disk: serial %d, want %d", d.Serial, len(docs))
	}
}
