package p2p

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/store"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/coralcdn/coral/test/testkit"
)

type sourceFunc func(ctx context.Context, key string) (store.Meta, io.ReadCloser, error)

func (f sourceFunc) OpenForPeer(ctx context.Context, key string) (store.Meta, io.ReadCloser, error) {
	return f(ctx, key)
}

// storeSource serves a real on-disk store, as the proxy does for stored copies.
type storeSource struct{ s *store.Store }

func (s storeSource) OpenForPeer(_ context.Context, key string) (store.Meta, io.ReadCloser, error) {
	m, b, err := s.s.Get(key)
	if err != nil {
		return store.Meta{}, nil, err
	}
	return m, b, nil
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t testing.TB, st *store.Store, key string, body []byte) store.Meta {
	t.Helper()
	w := st.Create(key, 0)
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	m, err := w.Commit(store.Meta{
		URL: "http://example.com/" + key, Status: 200,
		Header:       http.Header{"Content-Type": {"text/plain"}, "Etag": {`"v1"`}},
		RequestTime:  time.Now().Add(-time.Second),
		ResponseTime: time.Now(),
		Size:         int64(len(body)),
		Extra:        map[string]string{"vary": ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fetchPair(t *testing.T, src object.Source) (sender, receiver *Host) {
	psk := testSecret(t)
	sender, receiver = newTestHost(t, psk), newTestHost(t, psk)
	sender.ServeObjects(src)
	mustConnect(t, receiver, sender)
	return sender, receiver
}

func TestFetchStoredObject(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sender, receiver := fetchPair(t, storeSource{st})
	for _, size := range []int{0, 1, fetchChunkSize + 1, 3 << 20} {
		key := fmt.Sprintf("obj-%d", size)
		body := randomBytes(t, size)
		want := putObject(t, st, key, body)

		meta, rc, err := receiver.FetchObject(testCtx(t), sender.ID().String(), key)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("size %d: read: %v", size, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("size %d: body differs", size)
		}
		if meta.Key != key || meta.URL != want.URL || meta.Status != 200 || meta.Header.Get("Etag") != `"v1"` ||
			!meta.RequestTime.Equal(want.RequestTime) || !meta.ResponseTime.Equal(want.ResponseTime) ||
			meta.Size != int64(size) || meta.SHA256 != sha256.Sum256(body) || meta.Extra["vary"] != "" {
			t.Fatalf("size %d: meta = %+v, want %+v", size, meta, want)
		}
	}
}

func TestFetchInFlightStreamsAsBytesArrive(t *testing.T) {
	pr, pw := io.Pipe()
	sender, receiver := fetchPair(t, sourceFunc(func(context.Context, string) (store.Meta, io.ReadCloser, error) {
		// Still downloading: no size or hash yet.
		return store.Meta{URL: "http://example.com/big", Status: 200, Header: http.Header{}}, pr, nil
	}))
	meta, rc, err := receiver.FetchObject(testCtx(t), sender.ID().String(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if meta.Size != -1 || meta.SHA256 != ([32]byte{}) {
		t.Fatalf("in-flight meta states size %d / hash %x", meta.Size, meta.SHA256)
	}
	first := []byte("first bytes from the origin")
	go func() { _, _ = pw.Write(first) }()
	buf := make([]byte, len(first))
	// The sender has not finished: these bytes can only arrive if they
	// are streamed as they come.
	if _, err := io.ReadFull(rc, buf); err != nil || !bytes.Equal(buf, first) {
		t.Fatalf("first part: %q, %v", buf, err)
	}
	rest := randomBytes(t, 200<<10)
	go func() { _, _ = pw.Write(rest); _ = pw.Close() }()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("rest: %v", err)
	}
	if !bytes.Equal(got, rest) {
		t.Fatal("rest of body differs")
	}
}

func TestFetchInFlightFailureIsNotMisbehaviour(t *testing.T) {
	pr, pw := io.Pipe()
	sender, receiver := fetchPair(t, sourceFunc(func(context.Context, string) (store.Meta, io.ReadCloser, error) {
		return store.Meta{Status: 200}, pr, nil
	}))
	_, rc, err := receiver.FetchObject(testCtx(t), sender.ID().String(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	go func() {
		_, _ = pw.Write([]byte("partial"))
		_ = pw.CloseWithError(errors.New("origin reset the connection"))
	}()
	_, err = io.ReadAll(rc)
	var re *RemoteError
	if !errors.As(err, &re) || errors.Is(err, ErrBadObject) {
		t.Fatalf("err = %v, want a RemoteError", err)
	}
	if receiver.scorer.score(sender.ID()) != 0 {
		t.Fatal("a sender whose origin failed was penalised")
	}
}

func TestFetchNotFound(t *testing.T) {
	sender, receiver := fetchPair(t, sourceFunc(func(context.Context, string) (store.Meta, io.ReadCloser, error) {
		return store.Meta{}, nil, store.ErrNotFound
	}))
	_, _, err := receiver.FetchObject(testCtx(t), sender.ID().String(), "missing")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want store.ErrNotFound", err)
	}
	// A host that serves no objects at all is an error too, not a hang.
	psk := testSecret(t)
	bare, other := newTestHost(t, psk), newTestHost(t, psk)
	mustConnect(t, other, bare)
	if _, _, err := other.FetchObject(testCtx(t), bare.ID().String(), "x"); err == nil {
		t.Fatal("fetch from a node without objects succeeded")
	}
}

// lyingSource states a size and hash that the body does not match.
func lyingSource(body []byte, size int64, sum [32]byte) object.Source {
	return sourceFunc(func(context.Context, string) (store.Meta, io.ReadCloser, error) {
		return store.Meta{Status: 200, Size: size, SHA256: sum}, io.NopCloser(bytes.NewReader(body)), nil
	})
}

// rawFetchHandler answers fetch streams with hand-made bytes.
func rawFetchHandler(h *Host, reply func(w io.Writer)) {
	h.host.SetStreamHandler(h.protos.fetch, func(s network.Stream) {
		var req fetchRequest
		_ = ReadMsg(bufio.NewReader(s), &req, maxFetchRequest)
		reply(s)
		_ = s.Close()
	})
}

func TestFetchGarbageIsRejectedAndSenderDropped(t *testing.T) {
	body := []byte("the real object")
	sum := sha256.Sum256(body)
	chunk := func(w io.Writer, b []byte) { _ = writeFrame(w, b) }
	for _, tc := range []struct {
		name string
		set  func(h *Host)
	}{
		{"hash differs", func(h *Host) { h.ServeObjects(lyingSource(body, int64(len(body)), sha256.Sum256([]byte("x")))) }},
		{"shorter than stated", func(h *Host) { h.ServeObjects(lyingSource(body[:3], int64(len(body)), sum)) }},
		{"longer than stated", func(h *Host) { h.ServeObjects(lyingSource(append(body, '!'), int64(len(body)), sum)) }},
		{"trailer lies", func(h *Host) {
			rawFetchHandler(h, func(w io.Writer) {
				_ = WriteMsg(w, &fetchHeader{Status: fetchOK, Meta: &wireMeta{}, Size: -1})
				chunk(w, body)
				chunk(w, nil)
				_ = WriteMsg(w, &fetchTrailer{Size: int64(len(body)), SHA256: make([]byte, 32)})
			})
		}},
		{"answers with another key", func(h *Host) {
			rawFetchHandler(h, func(w io.Writer) {
				_ = WriteMsg(w, &fetchHeader{Status: fetchOK, Meta: &wireMeta{Key: "other"}, Size: -1})
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			psk := testSecret(t)
			liar, honest, receiver := newTestHost(t, psk), newTestHost(t, psk), newTestHost(t, psk)
			tc.set(liar)
			honest.ServeObjects(lyingSource(body, int64(len(body)), sum))
			mustConnect(t, receiver, liar)
			mustConnect(t, receiver, honest)

			_, rc, err := receiver.FetchObject(testCtx(t), liar.ID().String(), "k")
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if !errors.Is(err, ErrBadObject) {
				t.Fatalf("err = %v, want ErrBadObject", err)
			}
			if !receiver.scorer.isBanned(liar.ID()) {
				t.Fatal("a sender of garbage was not blocked")
			}
			testkit.Eventually(t, 5*time.Second, "liar disconnected", func() bool {
				return !slices.Contains(receiver.ConnectedPeers(), liar.ID())
			})
			if _, _, err := receiver.FetchObject(testCtx(t), liar.ID().String(), "k"); err == nil {
				t.Fatal("fetched again from a blocked peer")
			}
			// The caller falls back to another holder.
			_, rc, err = receiver.FetchObject(testCtx(t), honest.ID().String(), "k")
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got, err := io.ReadAll(rc); err != nil || !bytes.Equal(got, body) {
				t.Fatalf("fallback fetch: %q, %v", got, err)
			}
		})
	}
}

func TestFetchMalformedHeaderCounts(t *testing.T) {
	psk := testSecret(t)
	sender, receiver := newTestHost(t, psk), newTestHost(t, psk)
	rawFetchHandler(sender, func(w io.Writer) { _ = writeFrame(w, []byte{0xde, 0xad}) })
	mustConnect(t, receiver, sender)
	if _, _, err := receiver.FetchObject(testCtx(t), sender.ID().String(), "k"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
	if receiver.scorer.score(sender.ID()) < penaltyMalformed-1 {
		t.Fatal("malformed header not scored")
	}
}

func TestFetchCancelStopsTransfer(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	sender, receiver := fetchPair(t, sourceFunc(func(context.Context, string) (store.Meta, io.ReadCloser, error) {
		return store.Meta{Status: 200}, pr, nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	_, rc, err := receiver.FetchObject(ctx, sender.ID().String(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	errc := make(chan error, 1)
	go func() { _, err := io.ReadAll(rc); errc <- err }()
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("cancelled transfer ended cleanly")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled transfer kept blocking")
	}
	if receiver.scorer.score(sender.ID()) != 0 {
		t.Fatal("cancelling was held against the sender")
	}
}

type nopStream struct{}

func (nopStream) SetReadDeadline(time.Time) error { return nil }
func (nopStream) Reset() error                    { return nil }
func (nopStream) Close() error                    { return nil }

// FuzzFetchBody feeds arbitrary bytes to the receiver's body parser (chunk
// framing, trailer, verification). It must never panic, and it may only
// report success for bytes that match the stated size and hash.
func FuzzFetchBody(f *testing.F) {
	good := func(body []byte) []byte {
		var buf bytes.Buffer
		_ = writeFrame(&buf, body)
		buf.WriteByte(0)
		sum := sha256.Sum256(body)
		_ = WriteMsg(&buf, &fetchTrailer{Size: int64(len(body)), SHA256: sum[:]})
		return buf.Bytes()
	}
	f.Add(good([]byte("hello")), int64(5))
	f.Add(good(nil), int64(-1))
	f.Add([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, int64(-1))
	f.Add([]byte{0x03, 'a', 'b'}, int64(2))
	f.Fuzz(func(t *testing.T, data []byte, stated int64) {
		if stated < -1 {
			stated = -1
		}
		h := &Host{log: testLogger(), scorer: newScorer(testLogger(), time.Minute, nil)}
		b := &fetchBody{h: h, s: nopStream{}, br: bufio.NewReader(bytes.NewReader(data)),
			from: "fuzz", stop: func() bool { return true }, statedSize: stated, sum: sha256.New()}
		got, err := io.ReadAll(b)
		_ = b.Close()
		if err != nil {
			return
		}
		if stated >= 0 && int64(len(got)) != stated {
			t.Fatalf("accepted %d bytes, stated %d", len(got), stated)
		}
		if int64(len(got)) != b.total {
			t.Fatalf("returned %d bytes, counted %d", len(got), b.total)
		}
	})
}

// An object transfer protects its connections from the connection
// manager's trim at both ends while it runs, and only while it runs: in a
// crowd a node passes its high watermark, and a trim used to cut transfers
// mid-body (GoAway 0x1005). The hosts run no relays, which protect their
// connections too.
func TestFetchProtectsItsConnections(t *testing.T) {
	pr, pw := io.Pipe()
	psk := testSecret(t)
	noRelay := func(c *Config) { c.DisableRelayService, c.RelayReservations = true, -1 }
	sender, receiver := newTestHost(t, psk, noRelay), newTestHost(t, psk, noRelay)
	sender.ServeObjects(sourceFunc(func(context.Context, string) (store.Meta, io.ReadCloser, error) {
		return store.Meta{URL: "http://example.com/big", Status: 200, Header: http.Header{}}, pr, nil
	}))
	mustConnect(t, receiver, sender)
	protected := func(h, other *Host) bool { return h.host.ConnManager().IsProtected(other.ID(), "") }
	if protected(sender, receiver) || protected(receiver, sender) {
		t.Fatal("connections protected before any transfer")
	}
	_, rc, err := receiver.FetchObject(testCtx(t), sender.ID().String(), "big")
	if err != nil {
		t.Fatal(err)
	}
	first := []byte("first bytes")
	go func() { _, _ = pw.Write(first) }()
	if _, err := io.ReadFull(rc, make([]byte, len(first))); err != nil {
		t.Fatal(err)
	}
	if !protected(receiver, sender) || !protected(sender, receiver) {
		t.Fatalf("mid-transfer: receiver protects the sender %v, sender the receiver %v; want both",
			protected(receiver, sender), protected(sender, receiver))
	}
	_ = pw.Close()
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	testkit.Eventually(t, 5*time.Second, "both ends to drop the protection", func() bool {
		return !protected(receiver, sender) && !protected(sender, receiver)
	})
}
