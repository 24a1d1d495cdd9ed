package p2p

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damagedContents are what a crash, a full disk or a stray write leaves of
// a key file: nothing, half of it, something else.
func damagedContents(whole []byte) map[string][]byte {
	return map[string][]byte{
		"empty":   {},
		"half":    whole[:len(whole)/2],
		"garbage": []byte("\x00\xffnot a key at all\n"),
	}
}

// A damaged identity key stops the start with the file's name and what to
// do, and is left as it was: never silently a new identity (a new peer ID).
func TestDamagedIdentityKeyNamedAndKept(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadOrCreateIdentity(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, identityFile)
	whole, _ := os.ReadFile(path)
	for how, b := range damagedContents(whole) {
		t.Run(how, func(t *testing.T) {
			os.WriteFile(path, b, 0o600)
			_, err := loadOrCreateIdentity(dir)
			if err == nil {
				t.Fatal("a damaged identity key was accepted")
			}
			for _, want := range []string{path, "damaged", "backup", "new peer ID"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, b) {
				t.Error("the damaged identity key was replaced")
			}
		})
	}
}

// A damaged network key stops the start with the file's name and the way
// back, is never replaced by a fresh key, and `coral join` (ReplaceSecret)
// mends it, keeping the damaged bytes beside it.
func TestDamagedNetworkKeyNamedAndJoinMendsIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "network.key")
	if _, err := GenerateSecret(path); err != nil {
		t.Fatal(err)
	}
	whole, _ := os.ReadFile(path)
	for how, b := range damagedContents(whole) {
		t.Run(how, func(t *testing.T) {
			os.WriteFile(path, b, 0o600)
			os.Remove(path + ".damaged")
			_, err := LoadOrCreateSecret(path)
			if err == nil {
				t.Fatal("a damaged network key was accepted")
			}
			for _, want := range []string{path, "damaged", "coral join"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if now, _ := os.ReadFile(path); !bytes.Equal(now, b) {
				t.Fatal("the damaged network key was replaced by a fresh one")
			}
			key := bytes.Repeat([]byte{7}, 32)
			if _, err := ReplaceSecret(path, key); err != nil {
				t.Fatalf("joining again over a damaged key: %v", err)
			}
			if got, err := LoadSecret(path); err != nil || !bytes.Equal(got, key) {
				t.Errorf("after the join: %x, %v; want the invite's key", []byte(got), err)
			}
			if kept, err := os.ReadFile(path + ".damaged"); err != nil || !bytes.Equal(kept, b) {
				t.Errorf("the damaged bytes were not kept as .damaged: %v", err)
			}
			if _, err := os.Stat(path + ".old"); err == nil {
				t.Error("the damaged key was kept as .old, which a rotation or an undone join would take as a key")
			}
		})
	}
}

// A new secret appears whole or not at all, never over an existing one,
// and leaves nothing else in the directory.
func TestGenerateSecretWholeNeverOverExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "network.key")
	first, err := GenerateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateSecret(path); !errors.Is(err, ErrSecretExists) {
		t.Fatalf("second GenerateSecret: %v, want ErrSecretExists", err)
	}
	if got, err := LoadSecret(path); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("the first secret did not survive: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want only the key: %v", len(entries), entries)
	}
}
