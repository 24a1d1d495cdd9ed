package p2p

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// secretHeader is the libp2p "PSK v1" file format (the one IPFS's
// swarm.key uses), so existing tools can generate and read network keys.
const secretHeader = "/key/swarm/psk/1.0.0/\n/base16/\n"

// pskLabel separates the network key from any other use of the secret;
// "v1" changes if the derivation ever does.
const pskLabel = "coral psk v1"

// NetworkPSK is the key libp2p's private-network protector uses:
// HMAC-SHA256(secret, "coral psk v1" || operator key), the key empty when
// the network has no operator. The operator key is thus part of the
// network's identity: an invite whose operator key was swapped (invites are
// not signed) leads to a different network, one the real members refuse at
// the handshake, never to a member of the real network that obeys a
// stranger's run-state documents. The secret file keeps the raw secret, so
// invites and rotations carry the secret, not this key.
func NetworkPSK(secret []byte, operator ed25519.PublicKey) pnet.PSK {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(pskLabel))
	m.Write(operator)
	return m.Sum(nil)
}

// ErrSecretExists is returned by GenerateSecret when the file already exists;
// overwriting a network key would silently cut the node off its network.
var ErrSecretExists = errors.New("p2p: secret file already exists")

// LoadSecret reads a network secret in libp2p PSK v1 format.
func LoadSecret(path string) (pnet.PSK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("p2p: read secret file: %w", err)
	}
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(b))
	if err != nil {
		return nil, damagedSecret(path, err)
	}
	if bytes.Equal(psk, make([]byte, len(psk))) {
		return nil, damagedSecret(path, errors.New("an all-zero key"))
	}
	return psk, nil
}

// ErrSecretDamaged is in LoadSecret's error when the file is there but
// holds no usable key (truncated, overwritten, all zero).
var ErrSecretDamaged = errors.New("p2p: network key damaged")

// damagedSecret names the file and the way back. Never a fresh key: that
// would quietly take the node off its network.
func damagedSecret(path string, why error) error {
	return fmt.Errorf("%w: %s (%v): copy it again from another member of the network, "+
		"or run `coral join` with a new invite code (keeps this file as %s.damaged)", ErrSecretDamaged, path, why, path)
}

// GenerateSecret writes a new random 256-bit network secret to path (mode
// 0600) and returns it. It refuses to overwrite an existing file.
func GenerateSecret(path string) (pnet.PSK, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("p2p: generate secret: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("p2p: create secret dir: %w", err)
	}
	data := []byte(secretHeader + hex.EncodeToString(key) + "\n")
	// Written whole and synced under a temporary name, then linked into
	// place: a crash or a power cut never leaves an empty or half key
	// (which the next start would refuse), and a link, unlike a rename,
	// never replaces a key another process made meanwhile.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secret-*")
	if err != nil {
		return nil, fmt.Errorf("p2p: create secret file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	if cerr := tmp.Close(); werr != nil || serr != nil || cerr != nil {
		return nil, fmt.Errorf("p2p: write secret file: %w", errors.Join(werr, serr, cerr))
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("%w: %s", ErrSecretExists, path)
	case err != nil: // a filesystem without hard links
		return writeSecretExclusive(path, data, key)
	}
	return pnet.PSK(key), nil
}

// writeSecretExclusive creates path with data, refusing an existing file.
func writeSecretExclusive(path string, data, key []byte) (pnet.PSK, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("%w: %s", ErrSecretExists, path)
		}
		return nil, fmt.Errorf("p2p: create secret file: %w", err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	if cerr := f.Close(); werr != nil || serr != nil || cerr != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("p2p: write secret file: %w", errors.Join(werr, serr, cerr))
	}
	return pnet.PSK(key), nil
}

// LoadOrCreateSecret loads the network secret at path, or creates a new one
// when the file does not exist: the first node of a network mints the key,
// and its operator copies the file to every other member.
func LoadOrCreateSecret(path string) (pnet.PSK, error) {
	psk, err := LoadSecret(path)
	if err == nil {
		return psk, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	psk, err = GenerateSecret(path)
	if errors.Is(err, ErrSecretExists) {
		// Another process created it between our read and our create.
		return LoadSecret(path)
	}
	return psk, err
}
