// Package wire holds the one CBOR decoder Coral uses for bytes that come from
// outside the process: peer messages, DSHT values and stored metadata (which
// a damaged disk or another version may have written). Its limits bound what
// a hostile input can make the decoder allocate or recurse into, so every
// parser gets the same hardening instead of each choosing its own.
package wire

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Limits of the decoder. They are far above anything Coral writes (a stored
// response's header map, a peer list, a DSHT reply) and far below what would
// let a few kilobytes of input allocate gigabytes.
const (
	MaxNestedLevels  = 16
	MaxArrayElements = 1 << 16
	MaxMapPairs      = 1 << 16
)

var decMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{
		MaxNestedLevels:  MaxNestedLevels,
		MaxArrayElements: MaxArrayElements,
		MaxMapPairs:      MaxMapPairs,
		IndefLength:      cbor.IndefLengthForbidden, // Coral never writes them
		DupMapKey:        cbor.DupMapKeyEnforcedAPF, // one meaning per input
	}.DecMode()
	if err != nil {
		panic("wire: " + err.Error()) // the options are constants
	}
	return dm
}()

// Unmarshal decodes b into v under the limits above.
func Unmarshal(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("wire: %w", err)
	}
	return nil
}

// DecMode is the decoder itself, for callers that stream (cbor.Decoder).
func DecMode() cbor.DecMode { return decMode }
