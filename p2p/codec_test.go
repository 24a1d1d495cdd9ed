package p2p

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
	"github.com/fxamacker/cbor/v2"
)

func frame(b []byte) []byte {
	var buf bytes.Buffer
	_ = writeFrame(&buf, b)
	return buf.Bytes()
}

func mustCBOR(t testing.TB, v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMsgRoundTrip(t *testing.T) {
	req := &dsht.Request{Op: dsht.OpStore, Level: 2, Target: dsht.ID(object.KeyOf("http://example.com/")),
		Value: []byte("value"), TTLMs: 20000, ForwardTo: &dsht.NodeInfo{ID: dsht.NodeID([]byte("x")), Addr: "x"}}
	var buf bytes.Buffer
	if err := WriteMsg(&buf, req); err != nil {
		t.Fatal(err)
	}
	var got dsht.Request
	if err := ReadMsg(bufio.NewReader(&buf), &got, maxDSHTMsg); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, req) {
		t.Fatalf("round trip: got %+v, want %+v", got, *req)
	}

	// Times keep their nanoseconds and zero times stay zero.
	now := time.Now()
	m := wireMeta{Key: "k", RequestTime: now}
	buf.Reset()
	if err := WriteMsg(&buf, &m); err != nil {
		t.Fatal(err)
	}
	var gm wireMeta
	if err := ReadMsg(bufio.NewReader(&buf), &gm, maxFetchHeader); err != nil {
		t.Fatal(err)
	}
	if !gm.RequestTime.Equal(now) || !gm.ResponseTime.IsZero() {
		t.Fatalf("times: got %v / %v, want %v / zero", gm.RequestTime, gm.ResponseTime, now)
	}
}

func TestReadMsgRejectsMalformed(t *testing.T) {
	good := mustCBOR(t, envelope{V: wireVersion, Body: mustCBOR(t, fetchRequest{Key: "k"})})
	overflow := bytes.Repeat([]byte{0xff}, binary.MaxVarintLen64+1)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"length over limit", frame(make([]byte, 100))[:3]},
		{"length prefix overflows", overflow},
		{"non-minimal length prefix", []byte{0x81, 0x00, 0x00}},
		{"not cbor", frame([]byte{0xff, 0xff, 0xff})},
		{"cbor but not an envelope", frame(mustCBOR(t, "hello"))},
		{"wrong version", frame(mustCBOR(t, envelope{V: 99, Body: mustCBOR(t, fetchRequest{Key: "k"})}))},
		{"empty body", frame(mustCBOR(t, envelope{V: wireVersion}))},
		{"body of wrong type", frame(mustCBOR(t, envelope{V: wireVersion, Body: mustCBOR(t, []int{1, 2})}))},
		{"trailing bytes in envelope", frame(append(append([]byte{}, good...), 0x00))},
		{"indefinite length", frame([]byte{0xbf, 0x01, 0x01, 0xff})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v fetchRequest
			limit := 64
			err := ReadMsg(bufio.NewReader(bytes.NewReader(tc.in)), &v, limit)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	// Truncation is an I/O error, not a format one: the peer may just
	// have gone away.
	var v fetchRequest
	err := ReadMsg(bufio.NewReader(bytes.NewReader(frame(good)[:5])), &v, 64)
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: err = %v, want io.ErrUnexpectedEOF", err)
	}
	if err := ReadMsg(bufio.NewReader(bytes.NewReader(nil)), &v, 64); err != io.EOF {
		t.Fatalf("empty stream: err = %v, want io.EOF", err)
	}
}

func TestReadMsgReportsRemoteError(t *testing.T) {
	var buf bytes.Buffer
	if err := writeEnvelope(&buf, nil, "no such thing"); err != nil {
		t.Fatal(err)
	}
	var v fetchRequest
	var re *RemoteError
	if err := ReadMsg(bufio.NewReader(&buf), &v, 64); !errors.As(err, &re) || re.Msg != "no such thing" {
		t.Fatalf("err = %v, want RemoteError", err)
	}
}

// FuzzReadMsg feeds arbitrary bytes to the decoder for every message type
// a peer can send. It must never panic, and whatever it accepts must
// survive a re-encode.
func FuzzReadMsg(f *testing.F) {
	seed := func(v any) {
		var buf bytes.Buffer
		_ = WriteMsg(&buf, v)
		f.Add(buf.Bytes())
	}
	seed(&dsht.Request{Op: dsht.OpFindValue, Level: 1, Value: []byte("v")})
	seed(&dsht.Response{Code: dsht.CodeOK, Contacts: []dsht.Contact{{Node: dsht.NodeInfo{Addr: "a"}, AgeMs: 3}}})
	seed(&fetchHeader{Status: fetchOK, Meta: &wireMeta{Key: "k", Header: map[string][]string{"A": {"b"}}}, Size: 3, SHA256: make([]byte, 32)})
	seed(&fetchTrailer{Size: 3, SHA256: make([]byte, 32)})
	seed(&peersRequest{Peer: []byte("p")})
	f.Add([]byte{0x05, 0xa1, 0x01, 0x01, 0x02, 0x40})
	f.Add(bytes.Repeat([]byte{0x80}, 12))
	targets := []func() any{
		func() any { return new(dsht.Request) },
		func() any { return new(dsht.Response) },
		func() any { return new(fetchRequest) },
		func() any { return new(fetchHeader) },
		func() any { return new(fetchTrailer) },
		func() any { return new(peersRequest) },
		func() any { return new(peersResponse) },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range targets {
			v := mk()
			if err := ReadMsg(bufio.NewReader(bytes.NewReader(data)), v, maxFetchHeader); err != nil {
				continue
			}
			var buf bytes.Buffer
			if err := WriteMsg(&buf, v); err != nil {
				t.Fatalf("re-encode %T: %v", v, err)
			}
			w := mk()
			if err := ReadMsg(bufio.NewReader(&buf), w, 1<<30); err != nil {
				t.Fatalf("decode of re-encoded %T: %v", v, err)
			}
		}
	})
}

var _ = cbor.RawMessage(nil)

// BenchmarkMsgRoundTrip writes and reads one fetch header (the message
// every peer fetch starts with) through the framing and the decoder.
func BenchmarkMsgRoundTrip(b *testing.B) {
	msg := &fetchHeader{Status: fetchOK, Meta: &wireMeta{Key: "k", Header: map[string][]string{
		"Content-Type": {"text/html"}, "Cache-Control": {"max-age=60"}, "Etag": {`"abc"`}}}, Size: 1 << 20, SHA256: make([]byte, 32)}
	var buf bytes.Buffer
	br := bufio.NewReader(&buf)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteMsg(&buf, msg); err != nil {
			b.Fatal(err)
		}
		var got fetchHeader
		if err := ReadMsg(br, &got, maxFetchHeader); err != nil {
			b.Fatal(err)
		}
	}
}
