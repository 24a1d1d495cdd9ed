package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/coralcdn/coral/core/store"
)

// A copy stored under the key the proxy has always used, the hex SHA-256
// of the canonical URL (computed here without object.Key), is served as a
// hit: caches written before the key type existed need no migration.
func TestStoredUnderTheOldKeyIsAHit(t *testing.T) {
	e := newEnv(t, nil)
	o := newOrigin(t, e.clock, static("from the origin"))
	canon := o.canon("/old-key")
	sum := sha256.Sum256([]byte(canon))
	w := e.st.Create(hex.EncodeToString(sum[:]), 0)
	body := "from an old cache"
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	h := http.Header{"Cache-Control": {"max-age=3600"}, "Date": {now.Format(http.TimeFormat)}}
	if _, err := w.Commit(store.Meta{URL: canon, Status: 200, Header: h, RequestTime: now, ResponseTime: now, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	expect(t, "copy under the old key", e.get(o, "/old-key"), 200, CacheHit, body)
	if n := o.hits.Load(); n != 0 {
		t.Errorf("origin asked %d times for a stored copy", n)
	}
}
