package p2p

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ReplaceSecret makes key the network secret in path (joining a network,
// or a rotation the operator announced). A different secret already there
// is kept beside it as path+".old", so a mistaken join can be undone by
// hand. It reports whether the file changed.
func ReplaceSecret(path string, key []byte) (changed bool, err error) {
	if len(key) != 32 || bytes.Equal(key, make([]byte, 32)) {
		return false, errors.New("p2p: a network secret is 32 bytes, not all zero")
	}
	old, err := LoadSecret(path)
	switch {
	case err == nil && bytes.Equal(old, key):
		return false, nil
	case err == nil:
		if err := copyFile(path, path+".old"); err != nil {
			return false, fmt.Errorf("p2p: keeping the old secret: %w", err)
		}
	case errors.Is(err, ErrSecretDamaged):
		// Joining again is the way back from a damaged key; the damaged
		// bytes are kept, not thrown away, and never as .old (a rotation
		// or an undone join reads that one).
		if err := copyFile(path, path+".damaged"); err != nil {
			return false, fmt.Errorf("p2p: keeping the damaged secret: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("p2p: create secret dir: %w", err)
	}
	if err := writeFileAtomic(path, []byte(secretHeader+hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return false, fmt.Errorf("p2p: write secret file: %w", err)
	}
	return true, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return writeFileAtomic(to, b, 0o600)
}

// StoredPeerID is the peer ID of the identity kept in dataDir, for a node
// that is not running (its invite code); an error if it has none yet.
func StoredPeerID(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, identityFile))
	if err != nil {
		return "", fmt.Errorf("p2p: read identity key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return "", fmt.Errorf("p2p: decode identity key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("p2p: identity key: %w", err)
	}
	return id.String(), nil
}
