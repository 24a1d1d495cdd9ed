package p2p

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSecretReadsIPFSSwarmKey(t *testing.T) {
	psk, err := LoadSecret("testdata/swarm.key")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 32)
	for i := range want {
		want[i] = byte(i)
	}
	if !bytes.Equal(psk, want) {
		t.Fatalf("key = %x, want %x", []byte(psk), want)
	}
}

func TestGenerateSecretRoundTripsAndNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "network.key")
	psk, err := GenerateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "/key/swarm/psk/1.0.0/\n/base16/\n") {
		t.Errorf("file is not in PSK v1 format: %q", data)
	}
	got, err := LoadSecret(path)
	if err != nil || !bytes.Equal(got, psk) {
		t.Fatalf("LoadSecret = %x, %v; want %x", []byte(got), err, []byte(psk))
	}
	if _, err := GenerateSecret(path); !errors.Is(err, ErrSecretExists) {
		t.Fatalf("second GenerateSecret: err = %v, want ErrSecretExists", err)
	}
	again, err := LoadOrCreateSecret(path)
	if err != nil || !bytes.Equal(again, psk) {
		t.Fatalf("LoadOrCreateSecret on existing file changed the key: %v", err)
	}
}

func TestLoadOrCreateSecretCreatesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "network.key")
	psk, err := LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadSecret(path)
	if err != nil || !bytes.Equal(got, psk) {
		t.Fatalf("created secret does not load back: %v", err)
	}
}

func TestLoadSecretRejectsBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"empty", ""},
		{"wrong header", "/key/swarm/psk/2.0.0/\n/base16/\n" + strings.Repeat("ab", 32) + "\n"},
		{"unknown encoding", "/key/swarm/psk/1.0.0/\n/base58/\n" + strings.Repeat("ab", 32) + "\n"},
		{"short key", "/key/swarm/psk/1.0.0/\n/base16/\nabcd\n"},
		{"not hex", "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("zz", 32) + "\n"},
		{"all zero", "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("00", 32) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadSecret(path); err == nil {
				t.Fatal("LoadSecret accepted a bad file")
			}
			if _, err := LoadOrCreateSecret(path); err == nil {
				t.Fatal("LoadOrCreateSecret accepted (or replaced) a bad file")
			}
		})
	}
}
