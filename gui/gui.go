// Package gui is Coral's desktop window: it shows a volunteer what their node
// is doing. It knows the node only through control.API, so the same window
// can watch an in-process node or a headless one over the control listener.
package gui

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/assets"
	"github.com/dustin/go-humanize"
)

// Info is what the window shows besides the live status.
type Info struct {
	ControlURL string
}

// DisplayAvailable reports whether a window can be opened: always on macOS
// and Windows, and on Linux/BSD when an X11 or Wayland display is set.
func DisplayAvailable() bool {
	switch runtime.GOOS {
	case "darwin", "windows":
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// Run opens the window and blocks until it is closed or ctx ends.
func Run(ctx context.Context, api control.API, info Info) {
	a := fyneapp.NewWithID("net.coralcdn.coral")
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	w := a.NewWindow("Coral")
	v := NewStatusView(api, info)
	if u, err := url.Parse(info.ControlURL); err == nil && info.ControlURL != "" {
		v.openPage = func() { _ = a.OpenURL(u) }
	}
	w.SetContent(v.Content())
	w.Resize(fyne.NewSize(520, 480))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go v.Follow(ctx, 2*time.Second)
	go func() {
		<-ctx.Done()
		fyne.Do(a.Quit)
	}()
	w.ShowAndRun()
}

// StatusView is the window's content: live figures from the node.
type StatusView struct {
	api      control.API
	info     Info
	openPage func()

	title, listen, reach, requests, sources, origin, cacheText, dsht, errText *widget.Label
	cacheBar                                                                  *widget.ProgressBar
	content                                                                   fyne.CanvasObject
}

// NewStatusView builds the widgets; call Refresh or Follow to fill them.
func NewStatusView(api control.API, info Info) *StatusView {
	v := &StatusView{api: api, info: info}
	lbl := func() *widget.Label { return widget.NewLabel("…") }
	v.title, v.listen, v.reach, v.requests = lbl(), lbl(), lbl(), lbl()
	v.sources, v.origin, v.cacheText, v.dsht, v.errText = lbl(), lbl(), lbl(), lbl(), widget.NewLabel("")
	v.title.TextStyle = fyne.TextStyle{Bold: true}
	v.cacheBar = widget.NewProgressBar()
	open := widget.NewButton("Open status page", func() {
		if v.openPage != nil {
			v.openPage()
		}
	})
	v.dsht.Wrapping = fyne.TextWrapWord
	v.errText.Importance = widget.DangerImportance
	heading := func(s string) *widget.Label {
		return widget.NewLabelWithStyle(s, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	}
	v.content = container.NewBorder(
		container.NewVBox(v.title, widget.NewSeparator()),
		container.NewVBox(v.errText, open),
		nil, nil,
		container.NewVScroll(container.NewVBox(
			heading("Listening"), v.listen,
			heading("Network"), v.reach, v.dsht,
			heading("Visitors"), v.requests, v.sources, v.origin,
			heading("Cache"), v.cacheBar, v.cacheText,
		)),
	)
	return v
}

// Content is the root widget.
func (v *StatusView) Content() fyne.CanvasObject { return v.content }

// Follow refreshes the view every interval until ctx ends.
func (v *StatusView) Follow(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		st, err := v.api.Status(ctx)
		fyne.Do(func() { v.show(st, err) })
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh fetches the status once and shows it (call on the UI goroutine).
func (v *StatusView) Refresh(ctx context.Context) {
	st, err := v.api.Status(ctx)
	v.show(st, err)
}

func (v *StatusView) show(st control.Status, err error) {
	if err != nil {
		v.errText.SetText("Cannot reach the node: " + err.Error())
		return
	}
	v.errText.SetText("")
	v.title.SetText(fmt.Sprintf("Coral node %s — up %s", short(st.NodeID), st.Uptime.Truncate(time.Second)))
	v.listen.SetText(fmt.Sprintf("Proxy %s · control %s · zone %s", st.Listen.HTTP, st.Listen.Control, st.Zone))
	if st.P2P != nil {
		relay := ""
		if st.P2P.Relayed {
			relay = ", reached through relays"
		}
		v.reach.SetText(fmt.Sprintf("Reachability %s%s · %d peers", st.P2P.Reachability, relay, st.P2P.ConnectedPeers))
	} else {
		v.reach.SetText("Peer-to-peer off")
	}
	if st.DSHT != nil {
		s := "DSHT:"
		for _, l := range st.DSHT.Levels {
			s += fmt.Sprintf(" level %d: %d nodes in cluster, %d routes;", l.Level, l.ClusterSize, l.RoutingSize)
		}
		v.dsht.SetText(s)
	} else {
		v.dsht.SetText("")
	}
	p := st.Proxy
	v.requests.SetText(fmt.Sprintf("%d requests, %s served", p.Requests, humanize.IBytes(uint64(p.BytesServed))))
	v.sources.SetText(fmt.Sprintf("From cache %d · revalidated %d · stale %d · from peers %d · from origin %d",
		p.Hits, p.Revalidated, p.Stale, p.Peer, p.Misses))
	v.origin.SetText(fmt.Sprintf("Origin fetches %d · dead-origin answers %d · errors %d", p.OriginFetches, p.NegativeHits, p.Errors))
	if st.Cache.MaxBytes > 0 {
		v.cacheBar.SetValue(float64(st.Cache.Bytes) / float64(st.Cache.MaxBytes))
	}
	v.cacheText.SetText(fmt.Sprintf("%d objects, %s of %s", st.Cache.Objects,
		humanize.IBytes(uint64(st.Cache.Bytes)), humanize.IBytes(uint64(st.Cache.MaxBytes))))
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
