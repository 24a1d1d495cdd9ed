package group

import (
	"encoding/json"
	"fmt"
)

// An Announcement carries a group's signed manifest to every node of the
// network, member or not, with the group's public key. It is
// self-certifying: a group is named by ID(key), so a node that answers
// for <site>.<id>.<zone> (the name a site owner's CNAME points at) can
// check that the manifest was signed by the key the name stands for,
// without trusting whoever sent it. Names without the ID are mapped only
// by member nodes, which know their groups' keys from their own config.
type Announcement struct {
	Key      string          `json:"key"`      // FormatPublicKey form
	Manifest json.RawMessage `json:"manifest"` // the signed envelope
}

// OpenAnnouncement verifies an announcement: the manifest is well-formed
// and signed by the key it carries. It returns the group's ID, the key's
// text form, the manifest and its signed envelope.
func OpenAnnouncement(raw []byte) (id, key string, m Manifest, signedManifest []byte, err error) {
	var a Announcement
	if len(raw) > MaxSignedBytes+1024 {
		return "", "", m, nil, fmt.Errorf("%w: announcement of %d bytes", ErrMalformed, len(raw))
	}
	if err := decodeStrict(raw, &a); err != nil {
		return "", "", m, nil, fmt.Errorf("%w: announcement: %v", ErrMalformed, err)
	}
	k, err := ParsePublicKey(a.Key)
	if err != nil {
		return "", "", m, nil, fmt.Errorf("%w: announcement: %v", ErrMalformed, err)
	}
	if m, err = Open(a.Manifest, k); err != nil {
		return "", "", m, nil, err
	}
	return ID(k), a.Key, m, a.Manifest, nil
}

// Announce makes the announcement of a signed manifest of the group key.
func Announce(key string, signedManifest []byte) []byte {
	b, _ := json.Marshal(Announcement{Key: key, Manifest: signedManifest})
	return b
}
