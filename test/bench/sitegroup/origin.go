package main

import (
	"net"
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/time/rate"
)

// origin is a site's own server: every object is cacheable for an hour,
// and it sends at most its rate (a small site's uplink), so a crowd that
// reaches it stalls.
type origin struct {
	*http.Server
	addr string
	lim  *rate.Limiter

	mu   sync.Mutex
	hits map[string]int // path -> requests
}

func startOrigin(ip string, bytesPerSecond int) (*origin, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return nil, err
	}
	o := &origin{addr: ln.Addr().String(), lim: rate.NewLimiter(rate.Limit(bytesPerSecond), objectSize), hits: map[string]int{}}
	o.Server = &http.Server{Handler: o}
	go o.Serve(ln)
	return o, nil
}

func (o *origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.hits[r.URL.Path]++
	o.mu.Unlock()
	if err := o.lim.WaitN(r.Context(), objectSize); err != nil {
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Length", strconv.Itoa(objectSize))
	w.Write(make([]byte, objectSize))
}

// perObject is the origin's requests per distinct path under prefix.
func (o *origin) perObject(prefix string) float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	paths, reqs := 0, 0
	for p, n := range o.hits {
		if len(p) >= len(prefix) && p[:len(prefix)] == prefix {
			paths++
			reqs += n
		}
	}
	if paths == 0 {
		return 0
	}
	return float64(reqs) / float64(paths)
}
