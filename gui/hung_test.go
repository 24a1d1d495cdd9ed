package gui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
)

// hungNode is a node over real HTTP that answers reads at once and holds
// the one call a test names until released (or until the client gives up).
type hungNode struct {
	srv     *httptest.Server
	hang    string        // "METHOD /path" held
	arrived chan struct{} // the held call reached the node
	release chan struct{}
	mu      sync.Mutex
	paused  bool
}

func newHungNode(t *testing.T, hang string) *hungNode {
	h := &hungNode{hang: hang, arrived: make(chan struct{}, 8), release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
		h.srv.Close()
	})
	return h
}

func (h *hungNode) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method+" "+r.URL.Path == h.hang {
		h.arrived <- struct{}{}
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch r.URL.Path {
	case "/api/status":
		json.NewEncoder(w).Encode(control.Status{Zone: "localhost", NodeID: "12D3KooWHung"})
	case "/api/settings":
		if r.Method == http.MethodPut {
			var p struct{ Paused *bool }
			json.NewDecoder(r.Body).Decode(&p)
			if p.Paused != nil {
				h.paused = *p.Paused
			}
		}
		doc := newFakeNode().settings
		doc["paused"] = h.paused
		json.NewEncoder(w).Encode(doc)
	case "/api/invite":
		w.Write([]byte("coral1-HUNG"))
	case "/api/join":
		w.Write([]byte("joined: restart the node"))
	case "/api/groups/join":
		w.Write([]byte("{}"))
	default:
		http.NotFound(w, r)
	}
}

func (h *hungNode) client(timeout time.Duration) *control.Client {
	return &control.Client{BaseURL: h.srv.URL, Token: "t", HTTP: &http.Client{Timeout: timeout}}
}

// Every button that asks the node returns at once: the button is disabled
// and says it is busy while the call is on its way, the UI goroutine stays
// free, and the answer shows when it comes.
func TestActionsDoNotFreezeTheWindow(t *testing.T) {
	for _, c := range []struct {
		name, hang string
		start      func(d *shell) *widget.Button // taps; the button that waits
		done       func(d *shell) string         // what the answer shows
		want       string
	}{
		{"apply", "PUT /api/settings", func(d *shell) *widget.Button {
			d.view.budget.upload.entry.SetText("2MiB/s")
			test.Tap(d.view.budget.applyB)
			return d.view.budget.applyB
		}, func(d *shell) string { return d.view.budget.result.Text }, "Applied and saved."},
		{"show invite", "GET /api/invite", func(d *shell) *widget.Button {
			test.Tap(d.view.network.show)
			return d.view.network.show
		}, func(d *shell) string { return d.view.network.code.Text }, "coral1-HUNG"},
		{"join network", "POST /api/join", func(d *shell) *widget.Button {
			d.view.network.paste.SetText("coral1-X")
			test.Tap(d.view.network.join)
			return d.view.network.join
		}, func(d *shell) string { return d.view.network.msg.Text }, "joined"},
		{"join group", "POST /api/groups/join", func(d *shell) *widget.Button {
			d.view.groups.key.SetText("ed25519:AbCd")
			test.Tap(d.view.groups.join)
			return d.view.groups.join
		}, func(d *shell) string { return d.view.groups.msg.Text }, "Joined"},
		{"tray pause", "PUT /api/settings", func(d *shell) *widget.Button {
			d.pause.Action()
			return nil
		}, func(d *shell) string { return d.pause.Label }, "Resume serving"},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := newHungNode(t, c.hang)
			a := test.NewTempApp(t)
			ui := newUILoop(t)
			d := newShell(a, node.client(time.Minute), Info{}, true)
			d.trayMenu()
			d.view.Refresh(t.Context())
			began := time.Now()
			btn := c.start(d) // returned: the UI goroutine was not held
			t.Logf("%s: the tap returned in %v with the node holding the call", c.name, time.Since(began))
			select {
			case <-node.arrived:
			case <-time.After(20 * time.Second):
				t.Fatal("the call never reached the node")
			}
			if btn != nil && !btn.Disabled() {
				t.Errorf("%s: the button stays enabled while the node is asked", c.name)
			}
			ran := false
			onUI(func() { ran = true })
			ui.until(t, "the UI goroutine to run something else", func() bool { return ran })
			if got := c.done(d); strings.Contains(got, c.want) {
				t.Fatalf("answer %q shown before the node answered", got)
			}
			close(node.release)
			ui.until(t, "the answer", func() bool { return strings.Contains(c.done(d), c.want) })
			if btn != nil {
				ui.until(t, "the button back", func() bool { return !btn.Disabled() })
			}
		})
	}
}

// A node that does not answer in time may still apply the change: the
// window says so instead of "Not applied".
func TestApplyTimeoutSaysMaybeApplied(t *testing.T) {
	node := newHungNode(t, "PUT /api/settings")
	test.NewTempApp(t)
	ui := newUILoop(t)
	v := NewView(node.client(500*time.Millisecond), Info{})
	v.SetWindow(test.NewTempWindow(t, v.Content()))
	v.Refresh(t.Context())
	b := v.budget
	b.upload.entry.SetText("2MiB/s")
	test.Tap(b.applyB)
	if b.result.Text != "Applying…" {
		t.Errorf("while asking: %q", b.result.Text)
	}
	ui.until(t, "the timeout", func() bool { return !b.applyB.Disabled() })
	if !strings.HasPrefix(b.general.Text, "No answer from the node: the change may or may not be applied") || strings.Contains(b.general.Text, "Not applied") {
		t.Errorf("after a timeout: %q / %q", b.general.Text, b.result.Text)
	}
}
