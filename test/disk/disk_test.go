package disk

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/coralcdn/coral/app/control"
)

const (
	diskSize   = 224 << 20 // the tmpfs
	minFree    = 128 << 20 // [cache] min_free_bytes
	badgerRoom = 64 << 20  // store.BadgerRoom: the node must never eat into it
	objSize    = 4 << 20   // each object: well past the spool's 256 KiB in memory
	maxObjects = 60        // more than the disk can take above the watermark
)

// objectOrigin serves /obj/N: objSize deterministic bytes per N, cacheable
// for an hour, and counts requests per path.
type objectOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func object(n int) []byte {
	b := make([]byte, objSize)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8)})
	_, _ = r.Read(b)
	return b
}

func newObjectOrigin(t *testing.T) *objectOrigin {
	o := &objectOrigin{hits: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.hits[r.URL.Path]++
		o.mu.Unlock()
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/obj/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Length", strconv.Itoa(objSize))
		_, _ = w.Write(object(n))
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *objectOrigin) hitsOf(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// host is the origin's Coralized name in the default zone.
func (o *objectOrigin) host() string {
	return strings.Replace(strings.TrimPrefix(o.URL, "http://"), ":", ".", 1) + ".localhost"
}

func writeConfig(t *testing.T, dataDir string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "coral.toml")
	body := fmt.Sprintf(`data_dir = %q
[http]
listen = "127.0.0.1:0"
[control]
listen = "127.0.0.1:0"
[dns]
listen = ""
[cache]
allow_private_origins = true
min_free_bytes = "%dMiB"
[p2p]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
nat_port_map = false
reachability = "public"
`, dataDir, minFree>>20)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The node on a small disk: fills it to the watermark through real
// requests, then passes objects through; survives the disk being filled to
// the last byte by someone else, a shutdown and a restart on it; and once
// there is room again, every object it stored is still there.
func TestFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, diskSize)
	bin := buildCoral(t)
	origin := newObjectOrigin(t)
	cfg := writeConfig(t, filepath.Join(mnt, "data"))
	host := origin.host()
	sums := map[int][32]byte{}
	visit := func(p *proc, n int) string {
		t.Helper()
		if _, ok := sums[n]; !ok {
			sums[n] = sha256.Sum256(object(n))
		}
		return p.visit(t, host, fmt.Sprintf("/obj/%d", n), sums[n], objSize)
	}

	out := &logBuf{}
	node := startCoral(t, bin, cfg, out)
	node.waitStatus(t, "the cache to store", func(st control.Status) bool { return st.Cache.Storing })

	// Fill the disk through the proxy until the node stops storing.
	stored := 0
	for n := 0; n < maxObjects && node.status(t).Cache.Storing; n++ {
		if got := visit(node, n); got != "MISS" {
			t.Fatalf("object %d: X-Coral-Cache %q, want MISS", n, got)
		}
		stored = n + 1
	}
	st := node.status(t)
	free := freeBytes(t, mnt)
	t.Logf("stored up to %d objects of %d MiB; %d MiB free at the watermark; status: %+v", stored, objSize>>20, free>>20, st.Cache)
	if st.Cache.Storing || !strings.Contains(st.Cache.DiskNote, "passed through") {
		t.Fatalf("after %d objects the node still stores: %+v", stored, st.Cache)
	}
	if free < badgerRoom {
		t.Fatalf("only %d MiB free: the node ate into the room Badger needs (%d MiB)", free>>20, badgerRoom>>20)
	}
	if !strings.Contains(out.String(), "level=WARN") || !strings.Contains(out.String(), "disk nearly full") {
		t.Fatalf("no WARN about the full disk in the log:\n%s", out)
	}
	if page := node.page(t); !strings.Contains(page, "disk-warning") || !strings.Contains(page, "passed through, not stored") {
		t.Fatalf("the status page does not say the disk is full:\n%s", page)
	}

	// Past the watermark, objects pass through whole and are not stored.
	next := stored + 1
	for range 2 {
		if got := visit(node, next); got != "MISS" {
			t.Fatalf("pass-through object: X-Coral-Cache %q, want MISS", got)
		}
	}
	if h := origin.hitsOf(fmt.Sprintf("/obj/%d", next)); h != 2 {
		t.Fatalf("origin saw %d requests for a passed-through object, want 2 (not stored)", h)
	}
	if got := visit(node, 0); got != "HIT" {
		t.Fatalf("a stored object: X-Coral-Cache %q, want HIT", got)
	}

	// Someone else fills the disk to the last byte: still serving.
	filled := fillDisk(t, filepath.Join(mnt, "filler"))
	t.Logf("filler took the last %d MiB; %d bytes free", filled>>20, freeBytes(t, mnt))
	node.waitStatus(t, "the status to say the disk is full", func(st control.Status) bool {
		return strings.Contains(st.Cache.DiskNote, "disk full")
	})
	for _, n := range []int{next + 1, next + 2} {
		if got := visit(node, n); got != "MISS" {
			t.Fatalf("on a full disk: X-Coral-Cache %q, want MISS", got)
		}
	}
	if got := visit(node, 1); got != "HIT" {
		t.Fatalf("a stored object on a full disk: X-Coral-Cache %q, want HIT", got)
	}
	node.stop(t)
	checkNoCrash(t, out)

	// A restart on the full disk serves everything by passing it through.
	out2 := &logBuf{}
	node = startCoral(t, bin, cfg, out2)
	st = node.status(t)
	if st.Cache.Storing || !strings.Contains(st.Cache.DiskNote, "started on a full disk") {
		t.Fatalf("restarted on a full disk, status: %+v", st.Cache)
	}
	if !strings.Contains(out2.String(), "level=WARN") || !strings.Contains(out2.String(), "disk full at start") {
		t.Fatalf("no WARN about starting on a full disk:\n%s", out2)
	}
	for _, n := range []int{0, next + 3} {
		if got := visit(node, n); got != "MISS" {
			t.Fatalf("object %d after a restart on a full disk: X-Coral-Cache %q, want MISS", n, got)
		}
	}
	node.stop(t)
	checkNoCrash(t, out2)

	// With room again, nothing was lost.
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	out3 := &logBuf{}
	node = startCoral(t, bin, cfg, out3)
	node.waitStatus(t, "the cache to store again", func(st control.Status) bool { return st.Cache.Storing })
	kept := 0
	for n := range stored {
		if visit(node, n) == "HIT" {
			kept++
		}
	}
	// The last object may have been cut off by the watermark mid-body.
	if kept < stored-1 {
		t.Fatalf("after the full disk, %d of the %d objects stored are still there", kept, stored)
	}
	t.Logf("after the full disk and two restarts, %d of %d stored objects are HITs", kept, stored)
	node.stop(t)
	checkNoCrash(t, out3)
}

// checkNoCrash fails on the signs of a Go runtime crash in a node's output.
func checkNoCrash(t *testing.T, out *logBuf) {
	t.Helper()
	for _, sign := range []string{"SIGBUS", "fatal error", "panic:", "level=ERROR", "spool write"} {
		if strings.Contains(out.String(), sign) {
			t.Fatalf("node output contains %q:\n%s", sign, out)
		}
	}
}
