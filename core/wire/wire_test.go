package wire

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestUnmarshalRefusesHostileInput(t *testing.T) {
	deep := bytes.Repeat([]byte{0x81}, MaxNestedLevels+2) // arrays of one array ...
	deep = append(deep, 0x00)
	tests := []struct {
		name string
		in   []byte
		want string // part of the error; "" = must decode
	}{
		{"plain map", mustMarshal(t, map[string]int{"a": 1}), ""},
		{"nested too deep", deep, "exceeded max nested level"},
		{"duplicate map key", []byte{0xa2, 0x61, 'a', 0x01, 0x61, 'a', 0x02}, "duplicate map key"},
		{"indefinite length", []byte{0x9f, 0x01, 0xff}, "indefinite-length"},
		{"huge array header", []byte{0x9a, 0xff, 0xff, 0xff, 0xff}, "exceeded max number of elements"},
		{"truncated", []byte{0xa1, 0x61}, "unexpected EOF"},
		{"garbage", []byte{0xff, 0xfe}, "wire:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v any
			err := Unmarshal(tc.in, &v)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(mustMarshal(f, map[string][]string{"Content-Type": {"text/html"}}))
	f.Add([]byte{0x9f, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		_ = Unmarshal(b, &v) // must not panic or hang
	})
}

func mustMarshal(tb testing.TB, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
