package p2p

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
	"github.com/libp2p/go-msgio"
	"github.com/multiformats/go-varint"

	"github.com/coralcdn/coral/core/wire"
)

// wireVersion is the message-format version carried in every envelope. The
// protocol IDs carry the network's protocol version as well, so a mismatch
// here means a peer on the right protocol ID speaking a newer encoding.
const wireVersion = 1

// Per-message size limits. Every message read from a peer is bounded before
// any allocation proportional to its declared length happens.
const (
	maxDSHTMsg      = 128 << 10 // a DSHT request or response (room for one maximal 64 KiB value)
	maxFetchRequest = 4 << 10   // {key}
	maxFetchHeader  = 256 << 10 // status + stored response headers
	maxFetchChunk   = 256 << 10 // one body chunk
	maxFetchTrailer = 1 << 10   // stated size + hash
	maxPeersMsg     = 16 << 10  // address lookup request/response
)

// ErrMalformed marks a message that broke the wire format: bad framing,
// oversize, undecodable CBOR or an unknown envelope version. The stream that
// carried it is reset and the sender's misbehaviour score goes up.
var ErrMalformed = errors.New("p2p: malformed message")

// envelope wraps every CBOR message. Body is the payload's own CBOR so the
// payload types (dsht.Request, …) stay opaque to this package.
type envelope struct {
	V    uint64          `cbor:"1,keyasint"`
	Body cbor.RawMessage `cbor:"2,keyasint,omitempty"`
	Err  string          `cbor:"3,keyasint,omitempty"`
}

// encMode keeps nanoseconds of times on the wire and sorts maps so equal
// values encode equally (handy for tests and hashing). Decoding uses
// core/wire, the one hardened decoder for everything from outside.
var encMode = func() cbor.EncMode {
	em, err := cbor.EncOptions{Time: cbor.TimeRFC3339Nano, Sort: cbor.SortCoreDeterministic}.EncMode()
	if err != nil {
		panic("p2p: " + err.Error()) // the options are constants
	}
	return em
}()

// Frames are go-msgio's varint framing: a minimal uvarint length, then
// that many bytes. This is the framing Coral always wrote, so the wire is
// unchanged (wireVersion stays 1); only non-minimal length prefixes, which
// no Coral node writes, are now refused as malformed.

// writeFrame writes one uvarint-length-prefixed frame.
func writeFrame(w io.Writer, payload []byte) error {
	return msgio.NewVarintWriter(w).WriteMsg(payload)
}

// readFrameLen reads a frame's uvarint length prefix and checks it against
// limit. Overlong or overflowing prefixes are format errors, not I/O errors.
func readFrameLen(r *bufio.Reader, limit int) (int, error) {
	n, err := msgio.NewVarintReaderSize(r, limit).NextMsgLen()
	if err != nil {
		return 0, frameError(err)
	}
	if n > limit {
		return 0, fmt.Errorf("%w: %d-byte message exceeds the %d-byte limit", ErrMalformed, n, limit)
	}
	return n, nil
}

// readFrame reads one frame of at most limit bytes. The length is checked
// before any allocation proportional to it.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := readFrameLen(r, limit)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// frameError sorts a length-prefix error: a broken prefix is the sender's
// fault (ErrMalformed); running out of input is I/O.
func frameError(err error) error {
	switch {
	case errors.Is(err, varint.ErrOverflow), errors.Is(err, varint.ErrNotMinimal), errors.Is(err, msgio.ErrMsgTooLarge):
		return fmt.Errorf("%w: length prefix: %v", ErrMalformed, err)
	}
	return err
}

// WriteMsg encodes v as CBOR inside a versioned envelope and writes it as
// one length-delimited frame.
func WriteMsg(w io.Writer, v any) error {
	return writeEnvelope(w, v, "")
}

func writeEnvelope(w io.Writer, v any, errMsg string) error {
	env := envelope{V: wireVersion, Err: errMsg}
	if v != nil {
		body, err := encMode.Marshal(v)
		if err != nil {
			return fmt.Errorf("p2p: encode message: %w", err)
		}
		env.Body = body
	}
	b, err := encMode.Marshal(env)
	if err != nil {
		return fmt.Errorf("p2p: encode envelope: %w", err)
	}
	return writeFrame(w, b)
}

// ReadMsg reads one frame of at most limit bytes and decodes its envelope's
// body into v. Format violations are reported as ErrMalformed; I/O errors
// (including a clean io.EOF before any byte) are returned as they are.
func ReadMsg(r *bufio.Reader, v any, limit int) error {
	errMsg, err := readEnvelope(r, v, limit)
	if err != nil {
		return err
	}
	if errMsg != "" {
		return &RemoteError{Msg: errMsg}
	}
	return nil
}

// readEnvelope is ReadMsg that hands back the envelope's error text instead
// of turning it into an error, for callers that attribute it to a peer.
func readEnvelope(r *bufio.Reader, v any, limit int) (string, error) {
	b, err := readFrame(r, limit)
	if err != nil {
		return "", err
	}
	return decodeEnvelope(b, v)
}

func decodeEnvelope(b []byte, v any) (string, error) {
	var env envelope
	if err := wire.DecMode().Unmarshal(b, &env); err != nil {
		return "", fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if env.V != wireVersion {
		return "", fmt.Errorf("%w: envelope version %d, want %d", ErrMalformed, env.V, wireVersion)
	}
	if env.Err != "" {
		return env.Err, nil
	}
	if v != nil {
		if len(env.Body) == 0 {
			return "", fmt.Errorf("%w: empty body", ErrMalformed)
		}
		if err := wire.DecMode().Unmarshal(env.Body, v); err != nil {
			return "", fmt.Errorf("%w: body: %v", ErrMalformed, err)
		}
	}
	return "", nil
}

// RemoteError is an error the remote handler reported in its reply; the
// exchange itself was well-formed.
type RemoteError struct {
	Peer string
	Msg  string
}

func (e *RemoteError) Error() string {
	if e.Peer == "" {
		return "p2p: remote error: " + e.Msg
	}
	return "p2p: remote error from " + e.Peer + ": " + e.Msg
}
