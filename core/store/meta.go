package store

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/fxamacker/cbor/v2"

	"github.com/coralcdn/coral/core/wire"
)

// Meta is everything the proxy needs to serve a stored response; it lives
// in core/object so the store's users do not link Badger.
type Meta = object.Meta

// recordFormat is the first byte of every meta record so the layout can change
// later without misreading old stores.
const recordFormat byte = 1

// errCorrupt marks stored data that cannot be trusted; such objects are
// dropped and reported as not found.
var errCorrupt = errors.New("store: stored object is corrupt")

// record is the on-disk form of a meta. Times are Unix nanoseconds (0 = zero
// time) rather than CBOR time tags so the zero time survives a round trip.
type record struct {
	Key          string              `cbor:"1,keyasint"`
	URL          string              `cbor:"2,keyasint,omitempty"`
	Status       int                 `cbor:"3,keyasint,omitempty"`
	Header       map[string][]string `cbor:"4,keyasint,omitempty"`
	RequestTime  int64               `cbor:"5,keyasint,omitempty"`
	ResponseTime int64               `cbor:"6,keyasint,omitempty"`
	Size         int64               `cbor:"7,keyasint"`
	SHA256       []byte              `cbor:"8,keyasint"`
	Extra        map[string]string   `cbor:"9,keyasint,omitempty"`
	Version      uint64              `cbor:"10,keyasint"`           // body version
	Inline       bool                `cbor:"11,keyasint,omitempty"` // body in c/<Version>, else in a file
}

// codec encodes and decodes meta records; it is immutable after creation.
// Decoding goes through core/wire, the hardened decoder for bytes from
// outside: a damaged disk or another version may have written them.
type codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

func newCodec() (codec, error) {
	enc, err := cbor.EncOptions{Sort: cbor.SortCoreDeterministic}.EncMode()
	if err != nil {
		return codec{}, fmt.Errorf("store: cbor encoder: %w", err)
	}
	return codec{enc: enc, dec: wire.DecMode()}, nil
}

func timeToNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nanosToTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// encode renders m, whose body is version ver, kept inline or in a file.
func (c codec) encode(m Meta, ver uint64, inline bool) ([]byte, error) {
	r := record{
		Key:          m.Key,
		URL:          m.URL,
		Status:       m.Status,
		Header:       m.Header,
		RequestTime:  timeToNanos(m.RequestTime),
		ResponseTime: timeToNanos(m.ResponseTime),
		Size:         m.Size,
		SHA256:       m.SHA256[:],
		Extra:        m.Extra,
		Version:      ver,
		Inline:       inline,
	}
	b, err := c.enc.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("store: encode meta: %w", err)
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, recordFormat)
	return append(out, b...), nil
}

// decode parses a meta record; any malformed or implausible record yields an
// error wrapping errCorrupt, never a panic.
func (c codec) decode(b []byte) (Meta, record, error) {
	if len(b) == 0 {
		return Meta{}, record{}, fmt.Errorf("%w: empty meta record", errCorrupt)
	}
	if b[0] != recordFormat {
		return Meta{}, record{}, fmt.Errorf("%w: unknown meta format %d", errCorrupt, b[0])
	}
	var r record
	if err := c.dec.Unmarshal(b[1:], &r); err != nil {
		return Meta{}, record{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	switch {
	case r.Size < 0:
		return Meta{}, record{}, fmt.Errorf("%w: negative size", errCorrupt)
	case len(r.SHA256) != 32:
		return Meta{}, record{}, fmt.Errorf("%w: bad hash length %d", errCorrupt, len(r.SHA256))
	case r.Version == 0:
		return Meta{}, record{}, fmt.Errorf("%w: missing version", errCorrupt)
	case r.Inline && r.Size > inlineMax:
		return Meta{}, record{}, fmt.Errorf("%w: inline body of %d bytes", errCorrupt, r.Size)
	}
	m := Meta{
		Key:          r.Key,
		URL:          r.URL,
		Status:       r.Status,
		RequestTime:  nanosToTime(r.RequestTime),
		ResponseTime: nanosToTime(r.ResponseTime),
		Size:         r.Size,
		Extra:        r.Extra,
	}
	if r.Header != nil {
		m.Header = http.Header(r.Header)
	}
	copy(m.SHA256[:], r.SHA256)
	return m, r, nil
}
