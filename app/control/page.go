package control

import (
	"bytes"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coralcdn/coral/assets"
	"github.com/dustin/go-humanize"
)

var pageTemplate = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"mul":          func(a, b int) int { return a * b },
	"clusterLabel": ClusterLabel,
	"bytes":        func(n int64) string { return humanize.IBytes(uint64(max(n, 0))) },
	"clusterWords": ClusterWords,
	"resultWords":  resultWords,
}).ParseFS(assets.Web, "web/status.html"))

// resultWords says where a response came from, for people: the trace's
// result is the X-Coral-Cache label ("HIT", "ERROR 502").
func resultWords(result string) string {
	switch {
	case result == "HIT":
		return "from this node's cache"
	case result == "MISS":
		return "fetched from the origin"
	case result == "PEER":
		return "from another Coral node"
	case result == "STALE":
		return "stale copy (origin down)"
	case strings.HasPrefix(result, "REVALIDATED"):
		return "cached copy, checked with the origin"
	case strings.HasPrefix(result, "ERROR "):
		return "error " + strings.TrimPrefix(result, "ERROR ")
	case result == "":
		return "in progress"
	}
	return strings.ToLower(result)
}

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
	Name          string // NodeName: short, tells nodes apart
	Health        Health
	Peers         string
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
	Traffic       string        // TrafficWords; "" without a budget
	HourGraph     template.HTML // usage graphs; "" without usage buckets
	DayGraph      template.HTML
	Sites         []SiteRow
}

// addUsage fills the traffic words, the graphs and the month's sites from
// the budget and, when the node keeps them, its usage buckets.
func (d *pageData) addUsage(api API, now time.Time) {
	today := int64(-1)
	if u, ok := api.(UsageAPI); ok {
		day := u.Usage("", now.Add(-24*time.Hour))
		d.HourGraph = usageSVG("upload and download, last hour", usagePoints(day), 5*time.Minute, now.Add(-time.Hour), now)
		d.DayGraph = usageSVG("upload and download, last 24 hours", usagePoints(day), 5*time.Minute, now.Add(-24*time.Hour), now)
		today = SentSince(day, Midnight(now))
	}
	d.Traffic = TrafficWords(d.S.Budget, today)
	d.Sites = SiteRows(d.S.Budget)
}

func usagePoints(bs []UsageBucket) []usagePoint {
	out := make([]usagePoint, len(bs))
	for i, b := range bs {
		out[i] = usagePoint{Start: b.Start, Sent: b.Sent, Received: b.Received}
	}
	return out
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	st, err := s.api.Status(r.Context())
	if err != nil {
		http.Error(w, "control: status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	d := pageData{S: st, Uptime: st.Uptime.Truncate(time.Second).String(),
		Name: NodeName(st.NodeID), Health: HealthOf(st), Peers: PeersInWords(st)}
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
	d.addUsage(s.api, time.Now())
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		http.Error(w, "control: render: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}
