package p2p

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/core/object"
	"github.com/coralcdn/coral/core/proxy"
	"github.com/coralcdn/coral/core/store"
)

// peersVia is the smallest proxy.Peers: every miss is fetched from one
// peer over a real p2p host (what core/coop does after its DSHT lookup).
type peersVia struct {
	h    *Host
	from string
}

func (p peersVia) Fetch(ctx context.Context, key object.Key, _ string, _ func(object.Meta) error) (object.Meta, io.ReadCloser, error) {
	return p.h.FetchObject(ctx, p.from, key.String())
}
func (peersVia) Downloading(object.Key, string) func() { return func() {} }
func (peersVia) Cached(object.Key, object.Meta)        {}
func (peersVia) Removed(string)                        {}

// hashNode is a proxy on a real on-disk store, served over real HTTP.
func hashNode(t *testing.T, peers proxy.Peers) (*proxy.Proxy, *store.Store, *httptest.Server) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	st, err := store.Open(t.TempDir(), store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(proxy.Options{
		Zone: "coral.test", AllowPrivateOrigins: true, Logger: quiet, SpoolDir: t.TempDir(), Peers: peers,
	}, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(func() { _ = st.Close() })
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = p.Close() })
	return p, st, srv
}

// getVia asks a proxy for path at origin o as a visitor does.
func getVia(t *testing.T, srv *httptest.Server, o *httptest.Server, path string) (*http.Response, []byte) {
	t.Helper()
	u, _ := url.Parse(o.URL)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	req.Host = u.Hostname() + "." + u.Port() + ".coral.test" // the Coralized name
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// A body that goes from one proxy to another over p2p is SHA-256'd once on
// the receiving node (as it streams in, checked against the sender's
// digest, then kept for the store) and not at all on the sender, which
// sends its stored, already verified copy. Before, the receiver hashed it
// three times: in the p2p body, in the proxy's transfer, in the store's
// writer. A body small enough to live inside the store's database (up to
// 16 KiB) is checked by the store on every read, so the sender hashes it
// once more.
func TestPeerTransferHashesBodyOnce(t *testing.T) {
	for _, tc := range []struct {
		size   int
		passes int64 // over the body, both nodes together
	}{
		{1 << 20, 1},
		{64<<10 + 1, 1},
		{4 << 10, 2}, // inline: the sender's store checks it as it is read
	} {
		t.Run(fmt.Sprintf("%d bytes", tc.size), func(t *testing.T) {
			hashesOnce(t, tc.size, tc.passes)
		})
	}
}

func hashesOnce(t *testing.T, size int, passes int64) {
	body := randomBytes(t, size)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Date", time.Now().UTC().Format(http.TimeFormat))
		_, _ = w.Write(body)
	}))
	defer origin.Close()

	psk := testSecret(t)
	sender, receiver := newTestHost(t, psk), newTestHost(t, psk)
	pa, _, srvA := hashNode(t, nil)
	sender.ServeObjects(pa)
	mustConnect(t, receiver, sender)
	_, stB, srvB := hashNode(t, peersVia{h: receiver, from: sender.ID().String()})

	if resp, got := getVia(t, srvA, origin, "/big"); resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("first node from the origin: %d, %d bytes", resp.StatusCode, len(got))
	}
	before := object.BodyBytesHashed()
	resp, got := getVia(t, srvB, origin, "/big")
	hashed := object.BodyBytesHashed() - before
	if resp.StatusCode != 200 || resp.Header.Get("X-Coral-Cache") != proxy.CachePeer || !bytes.Equal(got, body) {
		t.Fatalf("second node: %d, X-Coral-Cache %q, %d bytes; want 200 from the peer, the whole body",
			resp.StatusCode, resp.Header.Get("X-Coral-Cache"), len(got))
	}
	t.Logf("peer transfer of %d bytes: %.2f SHA-256 passes over the body across both nodes", len(body), float64(hashed)/float64(len(body)))
	if hashed != passes*int64(len(body)) {
		t.Errorf("a peer transfer hashed %d body bytes, want %d (%d passes)", hashed, passes*int64(len(body)), passes)
	}
	canon := strings.TrimSuffix(origin.URL, "/") + "/big"
	m, b, err := stB.Get(object.KeyOf(canon).String())
	if err != nil {
		t.Fatalf("receiver's store: %v", err)
	}
	stored, err := io.ReadAll(b)
	b.Close()
	if err != nil || m.SHA256 != sha256.Sum256(body) || !bytes.Equal(stored, body) {
		t.Fatalf("receiver's stored copy: err %v, hash recorded %x, %d bytes", err, m.SHA256[:4], len(stored))
	}
}
