package gui

import (
	"context"
	"errors"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/coralcdn/coral/app/control"
)

type fakeAPI struct {
	st  control.Status
	err error
}

func (f *fakeAPI) Status(context.Context) (control.Status, error) { return f.st, f.err }

func TestStatusViewShowsNodeFigures(t *testing.T) {
	test.NewTempApp(t)
	api := &fakeAPI{st: control.Status{
		NodeID: "0123456789abcdef", Zone: "nyud.net", Uptime: 90 * time.Second,
		Listen: control.Listen{HTTP: "[::]:8080", Control: "127.0.0.1:8081"},
		Proxy:  control.ProxyStatus{Requests: 42, Hits: 30, Misses: 2, Stale: 1, OriginFetches: 2, BytesServed: 4096},
		Cache:  control.CacheStatus{Objects: 7, Bytes: 1 << 30, MaxBytes: 4 << 30},
		P2P:    &control.P2PStatus{Reachability: "private", Relayed: true, ConnectedPeers: 5},
	}}
	v := NewStatusView(api, Info{})
	w := test.NewWindow(v.Content())
	defer w.Close()
	v.Refresh(context.Background())

	for _, want := range []struct{ label, text string }{
		{v.title.Text, "0123456789ab"},
		{v.requests.Text, "42 requests"},
		{v.sources.Text, "From cache 30"},
		{v.origin.Text, "Origin fetches 2"},
		{v.reach.Text, "reached through relays"},
		{v.cacheText.Text, "7 objects, 1.0 GiB of 4.0 GiB"},
	} {
		if !strings.Contains(want.label, want.text) {
			t.Errorf("label %q does not show %q", want.label, want.text)
		}
	}
	if got := v.cacheBar.Value; got < 0.24 || got > 0.26 {
		t.Errorf("cache bar = %v, want 0.25", got)
	}

	// What a volunteer sees: render the window and keep the picture when
	// CORAL_GUI_SHOT names a file.
	w.Resize(fyne.NewSize(520, 480))
	img := w.Canvas().Capture()
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Fatalf("window renders as %v", b)
	}
	if path := os.Getenv("CORAL_GUI_SHOT"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		png.Encode(f, img)
		f.Close()
	}

	api.err = errors.New("connection refused")
	v.Refresh(context.Background())
	if !strings.Contains(v.errText.Text, "connection refused") {
		t.Errorf("error not shown: %q", v.errText.Text)
	}
}
