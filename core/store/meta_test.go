package store

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func slogText(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func TestMetaRoundTrip(t *testing.T) {
	c, err := newCodec()
	if err != nil {
		t.Fatal(err)
	}
	metas := []Meta{
		{},
		{Key: "k", Size: 0},
		{
			Key: "http://example.com/\x00odd key", URL: "http://example.com/", Status: 304,
			Header:       http.Header{"Etag": {`"x"`}, "Set-Cookie": {"a=1", "b=2"}},
			RequestTime:  time.Unix(1700000000, 5),
			ResponseTime: time.Unix(1700000001, 7),
			Size:         1 << 40, SHA256: [32]byte{1, 2, 3},
			Extra: map[string]string{"vary": "accept-encoding"},
		},
	}
	for _, m := range metas {
		b, err := c.encode(m, 42, m.Size <= inlineMax)
		if err != nil {
			t.Fatal(err)
		}
		got, rec, err := c.decode(b)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", m, err)
		}
		if rec.Version != 42 || rec.Inline != (m.Size <= inlineMax) {
			t.Fatalf("record %+v", rec)
		}
		if !got.RequestTime.Equal(m.RequestTime) || !got.ResponseTime.Equal(m.ResponseTime) {
			t.Fatalf("times changed: %+v", got)
		}
		got.RequestTime, got.ResponseTime = m.RequestTime, m.ResponseTime
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip\n got %+v\nwant %+v", got, m)
		}
	}
}

// FuzzDecodeMeta feeds arbitrary bytes (a damaged disk) to the meta decoder:
// it must reject or accept them, never panic, and what it accepts must
// re-encode to a record that decodes the same.
func FuzzDecodeMeta(f *testing.F) {
	c, err := newCodec()
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := c.encode(Meta{Key: "k", URL: "u", Status: 200, Header: http.Header{"A": {"b"}}, Size: 3}, 7, true)
	f.Add(seed)
	f.Add([]byte{})
	f.Add([]byte{recordFormat})
	f.Add([]byte{recordFormat, 0xbf, 0xff})
	f.Add(bytes.Repeat([]byte{recordFormat, 0x9f}, 100))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, rec, err := c.decode(b)
		if err != nil {
			return
		}
		again, err := c.encode(m, rec.Version, rec.Inline)
		if err != nil {
			t.Fatalf("re-encoding accepted meta: %v", err)
		}
		m2, rec2, err := c.decode(again)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if rec2.Version != rec.Version || rec2.Inline != rec.Inline || m2.Size != m.Size || m2.SHA256 != m.SHA256 || m2.Key != m.Key {
			t.Fatalf("round trip changed the record: %+v vs %+v", m2, m)
		}
	})
}
