package p2p

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
)

const identityFile = "identity.key"

// loadOrCreateIdentity keeps the node's private key in dataDir so its peer
// ID — and therefore its DSHT node ID — survives restarts.
func loadOrCreateIdentity(dataDir string) (crypto.PrivKey, error) {
	path := filepath.Join(dataDir, identityFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("p2p: identity key %s is damaged (%w): restore it from a backup to keep this node's peer ID, "+
				"or move it aside to start as a new peer (a new peer ID; the network key and the cache are kept)", path, err)
		}
		return k, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("p2p: read identity key: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("p2p: generate identity key: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("p2p: encode identity key: %w", err)
	}
	if err := writeFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("p2p: save identity key: %w", err)
	}
	return k, nil
}

// writeFileAtomic replaces path only once the new contents are on disk
// (renameio: a synced temporary file, renamed), so a crash never leaves a
// half-written key or peer list behind.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(path, data, perm)
}
