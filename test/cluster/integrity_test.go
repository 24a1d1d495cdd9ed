package cluster

import (
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A real coral process killed with SIGKILL, whose stored body is then
// damaged on disk (same size, last byte flipped), never serves it after the
// restart, whole or in part: the first read hashes the body, drops it, and
// the visitor gets the origin's bytes (hits skip the hash only for bodies
// this process has verified).
func TestDamagedBodyAfterCrashNeverServed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coral processes")
	}
	body := make([]byte, 100<<10)
	_, _ = rand.Read(body)
	var originHits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Etag", `"v1"`)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(body)))
	}))
	defer origin.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	var log LogBuffer
	c, err := Start(ctx, Options{
		Nodes: 1, Binary: buildCoral(t), Dir: dir, Log: &log,
		Extra: func(int) string { return "[cache]\nallow_private_origins = true\n" },
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	defer c.Stop()
	host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"
	for _, want := range []string{"MISS", "HIT"} {
		resp, b := get(t, c.Nodes[0].HTTP, host, "/big")
		if got := resp.Header.Get("X-Coral-Cache"); got != want || string(b) != string(body) {
			t.Fatalf("before the crash: X-Coral-Cache %q (want %s), body intact %v", got, want, string(b) == string(body))
		}
	}

	c.Nodes[0].Kill()
	damageOnlyBodyFile(t, filepath.Join(dir, "node00", "data", "store", "bodies"))
	n, err := c.startNode(ctx, 0, filepath.Join(dir, "network.key"), nil)
	if err != nil {
		t.Fatalf("restart: %v\n%s", err, log.String())
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+n.HTTP+"/big", nil)
	req.Host = host
	req.Header.Set("Range", "bytes=0-99") // the damage is at the end, outside the range
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusPartialContent || string(b) != string(body[:100]) ||
		resp.Header.Get("X-Coral-Cache") != "MISS" {
		t.Fatalf("range after the crash: %d %s, err %v, bytes intact %v; want 206 MISS (the damaged copy dropped)\n%s",
			resp.StatusCode, resp.Header.Get("X-Coral-Cache"), err, string(b) == string(body[:100]), log.String())
	}
	resp, b = get(t, n.HTTP, host, "/big")
	if string(b) != string(body) {
		t.Fatalf("after the crash: %s, body intact %v", resp.Header.Get("X-Coral-Cache"), string(b) == string(body))
	}
	if got := originHits.Load(); got != 2 {
		t.Errorf("origin hits = %d, want 2 (the fill, and the refetch of the dropped copy)", got)
	}
}

// damageOnlyBodyFile flips the last byte of the one body file under dir.
func damageOnlyBodyFile(t *testing.T, dir string) {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("want one body file under %s, found %v", dir, files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(files[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Two real coral processes over libp2p: a range asked of the second while
// the first holds the object comes from the first proxy's copy (206, PEER),
// the second keeps the whole object, and the origin is asked once.
func TestRangeOfPeerCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts coral processes")
	}
	body := make([]byte, 200<<10)
	_, _ = rand.Read(body)
	var originHits atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		originHits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Etag", `"p1"`)
		http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(body)))
	}))
	defer origin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var log LogBuffer
	c, err := Start(ctx, Options{
		Nodes: 2, Binary: buildCoral(t), Dir: t.TempDir(), Log: &log,
		Extra: func(int) string { return "[cache]\nallow_private_origins = true\n" },
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	defer c.Stop()
	host := strings.Replace(strings.TrimPrefix(origin.URL, "http://"), ":", ".", 1) + ".localhost"
	if resp, b := get(t, c.Nodes[0].HTTP, host, "/video"); resp.Header.Get("X-Coral-Cache") != "MISS" || string(b) != string(body) {
		t.Fatalf("first node: %s, body intact %v", resp.Header.Get("X-Coral-Cache"), string(b) == string(body))
	}
	rangeGet := func(rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+c.Nodes[1].HTTP+"/video", nil)
		req.Host = host
		req.Header.Set("Range", rng)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, b := rangeGet("bytes=1000-1999")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("X-Coral-Cache") != "PEER" || string(b) != string(body[1000:2000]) {
		t.Fatalf("range from a peer copy: %d %s, bytes intact %v\n%s", resp.StatusCode, resp.Header.Get("X-Coral-Cache"),
			string(b) == string(body[1000:2000]), log.String())
	}
	// The second node fetched the whole object for its own cache.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, b = rangeGet("bytes=-1000")
		if resp.Header.Get("X-Coral-Cache") == "HIT" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second node never held the whole object (last: %s)", resp.Header.Get("X-Coral-Cache"))
		}
		time.Sleep(20 * time.Millisecond) // polling for the copy to be stored
	}
	if resp.StatusCode != http.StatusPartialContent || string(b) != string(body[len(body)-1000:]) {
		t.Fatalf("range from the stored copy: %d, bytes intact %v", resp.StatusCode, string(b) == string(body[len(body)-1000:]))
	}
	if n := originHits.Load(); n != 1 {
		t.Errorf("origin saw %d requests, want 1", n)
	}
}
