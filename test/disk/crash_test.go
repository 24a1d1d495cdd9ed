package disk

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/test/cluster"
)

// quotas are the two settings values the tests switch between.
var quotas = [2]string{`{"bandwidth":{"monthly_quota":"10GiB"}}`, `{"bandwidth":{"monthly_quota":"20GiB"}}`}

// spawnCoral starts `coral serve` without the cleanup that wants a clean
// exit (these tests kill it); it is killed at the end if still running.
func spawnCoral(t *testing.T, bin, cfg string, out *logBuf) *proc {
	t.Helper()
	p, err := cluster.Spawn(exec.Command(bin, "serve", "-config", cfg), out, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatalf("coral did not start: %v\n%s", err, out)
	}
	return &proc{Process: p, out: out}
}

// client is a control client with the node's token.
func (p *proc) client(t *testing.T) *control.Client {
	t.Helper()
	tok, err := os.ReadFile(p.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	c := p.Client()
	c.Token = strings.TrimSpace(string(tok))
	return c
}

// quota is the monthly quota in the node's live settings.
func (p *proc) quota(t *testing.T) string {
	t.Helper()
	raw, err := p.client(t).Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Bandwidth struct {
			MonthlyQuota json.RawMessage `json:"monthly_quota"`
		} `json:"bandwidth"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("settings %s: %v", raw, err)
	}
	return string(s.Bandwidth.MonthlyQuota)
}

// A real node killed with SIGKILL while settings changes are being saved
// (and the peers file, usage and the store are open for writing): every
// restart starts, keeps its peer ID, serves every object stored before
// whole, and holds the last acknowledged settings or the one in flight.
func TestKillDuringSettingsChangeLosesNothing(t *testing.T) {
	bin := buildCoral(t)
	origin := newObjectOrigin(t)
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"))
	const objects = 4
	out := &logBuf{}
	node := spawnCoral(t, bin, cfg, out)
	peerID := node.status(t).P2P.PeerID
	for n := range objects {
		node.visit(t, origin.host(), fmt.Sprintf("/obj/%d", n), sha256.Sum256(object(n)), objSize)
	}
	saves := 0
	for round := range 8 {
		acked := make(chan int, 1000)
		go func(c *control.Client) {
			defer close(acked)
			for i := 0; ; i++ {
				if _, err := c.UpdateSettings(context.Background(), json.RawMessage(quotas[i%2])); err != nil {
					return // killed
				}
				acked <- i
			}
		}(node.client(t))
		last := -1
		for i := range acked { // kill after a different number of saves each round
			if last = i; i == round*3 {
				break
			}
		}
		node.Kill()
		for i := range acked {
			last = i
		}
		saves += last + 1

		out = &logBuf{}
		node = spawnCoral(t, bin, cfg, out)
		if id := node.status(t).P2P.PeerID; id != peerID {
			t.Fatalf("round %d: peer ID %s after the kill, was %s: a new identity", round, id, peerID)
		}
		got, want, inFlight := node.quota(t), []string{`"10GiB"`, `"20GiB"`}[last%2], []string{`"10GiB"`, `"20GiB"`}[(last+1)%2]
		if got != want && got != inFlight {
			t.Fatalf("round %d: monthly_quota %s after the kill; last acknowledged %s", round, got, want)
		}
		for n := range objects {
			if c := node.visit(t, origin.host(), fmt.Sprintf("/obj/%d", n), sha256.Sum256(object(n)), objSize); c != "HIT" {
				t.Fatalf("round %d: object %d stored before the kill: X-Coral-Cache %q, want HIT", round, n, c)
			}
		}
		checkNoCrash(t, out)
	}
	t.Logf("8 kills, %d acknowledged settings saves in all: every restart kept the peer ID, %d objects and the settings", saves, objects)
	node.stop(t)
}

// A settings change on a full disk is refused with the reason and leaves
// the settings in force; the node keeps serving what it has; once there is
// room the same change is saved and survives a restart.
func TestSettingsChangeOnFullDisk(t *testing.T) {
	mnt := mountTmpfs(t, diskSize)
	bin := buildCoral(t)
	origin := newObjectOrigin(t)
	cfg := writeConfig(t, filepath.Join(mnt, "data"))
	out := &logBuf{}
	node := startCoral(t, bin, cfg, out)
	sum := sha256.Sum256(object(0))
	node.visit(t, origin.host(), "/obj/0", sum, objSize)
	before := node.quota(t)

	fillDisk(t, filepath.Join(mnt, "filler"))
	_, err := node.client(t).UpdateSettings(context.Background(), json.RawMessage(quotas[1]))
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("settings change on a full disk: %v; want an error saying the disk is full", err)
	}
	if got := node.quota(t); got != before {
		t.Fatalf("monthly_quota %s after a refused change, was %s", got, before)
	}
	if c := node.visit(t, origin.host(), "/obj/0", sum, objSize); c != "HIT" {
		t.Fatalf("on the full disk: X-Coral-Cache %q, want HIT", c)
	}

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	if _, err := node.client(t).UpdateSettings(context.Background(), json.RawMessage(quotas[1])); err != nil {
		t.Fatalf("settings change with room again: %v", err)
	}
	node.stop(t)
	checkNoCrash(t, out)
	out = &logBuf{}
	node = startCoral(t, bin, cfg, out)
	if got := node.quota(t); got != `"20GiB"` {
		t.Fatalf("monthly_quota %s after the restart, want the saved \"20GiB\"", got)
	}
}

// A real node killed (SIGKILL) while it stores a large object, half of
// whose body has come from the origin: after the restart the objects
// stored before are HITs, whole, and the cut object is never served short
// (its Content-Length and its bytes agree; it is fetched afresh).
func TestKillMidObjectNeverServesHalf(t *testing.T) {
	bin := buildCoral(t)
	origin := newObjectOrigin(t)
	half, release := make(chan struct{}), make(chan struct{})
	var served atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := object(99)
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if served.Add(1) == 1 { // the first fetch stalls halfway
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			close(half)
			<-release // until the node is gone
			return
		}
		w.Write(body)
	}))
	t.Cleanup(func() { slow.Close() })
	t.Cleanup(func() { close(release) })
	slowHost := strings.Replace(strings.TrimPrefix(slow.URL, "http://"), ":", ".", 1) + ".localhost"
	cfg := writeConfig(t, filepath.Join(t.TempDir(), "data"))
	out := &logBuf{}
	node := spawnCoral(t, bin, cfg, out)
	for n := range 3 {
		node.visit(t, origin.host(), fmt.Sprintf("/obj/%d", n), sha256.Sum256(object(n)), objSize)
	}
	go func(addr string) { // the visitor whose fetch the kill cuts
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/big", nil)
		req.Host = slowHost
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}(node.HTTP)
	<-half
	node.Kill()

	out = &logBuf{}
	node = spawnCoral(t, bin, cfg, out)
	for n := range 3 {
		if c := node.visit(t, origin.host(), fmt.Sprintf("/obj/%d", n), sha256.Sum256(object(n)), objSize); c != "HIT" {
			t.Fatalf("object %d stored before the kill: X-Coral-Cache %q, want HIT", n, c)
		}
	}
	// The cut URL again, now answered whole by the origin: never the half.
	req, _ := http.NewRequest(http.MethodGet, "http://"+node.HTTP+"/big", nil)
	req.Host = slowHost
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.ContentLength != int64(len(b)) || sha256.Sum256(b) != sha256.Sum256(object(99)) {
		t.Fatalf("the object cut by the kill: %s, Content-Length %d, %d bytes, read error %v, intact %v\n%s",
			resp.Header.Get("X-Coral-Cache"), resp.ContentLength, len(b), err, sha256.Sum256(b) == sha256.Sum256(object(99)), out)
	}
	if got := served.Load(); got != 2 {
		t.Errorf("the origin was asked %d times for the cut object, want 2 (the cut fetch, then afresh)", got)
	}
	checkNoCrash(t, out)
	node.stop(t)
}
