package control

import (
	"bytes"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"time"

	"github.com/coralcdn/coral/assets"
	"github.com/dustin/go-humanize"
)

var pageTemplate = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"mul": func(a, b int) int { return a * b },
}).ParseFS(assets.Web, "web/status.html"))

type bar struct {
	Label string
	Value int64
	Width int
}

// bars scales values to a 300-pixel track against the largest one.
func bars(labels []string, values []int64) []bar {
	var max int64 = 1
	for _, v := range values {
		max = maxInt(max, v)
	}
	out := make([]bar, len(values))
	for i, v := range values {
		out[i] = bar{Label: labels[i], Value: v, Width: int(v * 300 / max)}
	}
	return out
}

func maxInt(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

type pageData struct {
	S             Status
	Uptime        string
	HTTPPort      string
	Sources       []bar
	SourcesHeight int
	Levels        []bar
	LevelsHeight  int
	CacheWidth    int
	CachePercent  int64
	CacheBytes    string
	CacheMax      string
	BytesServed   string
	DiskFree      string // "" when unknown
	DiskMinFree   string
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	st, err := s.api.Status(r.Context())
	if err != nil {
		http.Error(w, "control: status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	d := pageData{S: st, Uptime: st.Uptime.Truncate(time.Second).String()}
	if _, port, err := net.SplitHostPort(st.Listen.HTTP); err == nil && port != "80" {
		d.HTTPPort = ":" + port
	}
	p := st.Proxy
	d.Sources = bars([]string{"local cache", "revalidated", "stale", "other proxies", "origin"},
		[]int64{p.Hits, p.Revalidated, p.Stale, p.Peer, p.Misses})
	d.SourcesHeight = 22 * len(d.Sources)
	if st.DSHT != nil {
		var labels []string
		var values []int64
		for _, l := range st.DSHT.Levels {
			labels = append(labels, fmt.Sprintf("level %d", l.Level))
			values = append(values, int64(l.RoutingSize))
		}
		d.Levels = bars(labels, values)
		d.LevelsHeight = 22 * len(d.Levels)
	}
	if st.Cache.MaxBytes > 0 {
		d.CachePercent = st.Cache.Bytes * 100 / st.Cache.MaxBytes
		d.CacheWidth = int(st.Cache.Bytes * 410 / st.Cache.MaxBytes)
		d.CacheMax = humanize.IBytes(uint64(st.Cache.MaxBytes))
	} else {
		d.CacheMax = "no limit"
	}
	d.CacheBytes = humanize.IBytes(uint64(st.Cache.Bytes))
	d.BytesServed = humanize.IBytes(uint64(p.BytesServed))
	if st.Cache.FreeBytes >= 0 && st.Cache.MinFreeBytes > 0 {
		d.DiskFree = humanize.IBytes(uint64(st.Cache.FreeBytes))
		d.DiskMinFree = humanize.IBytes(uint64(st.Cache.MinFreeBytes))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "control: render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
