package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// objectsPerSite is how many distinct objects a site's visitors ask for.
const objectsPerSite = 40

// latencies collects request durations (ms) and failures.
type latencies struct {
	mu       sync.Mutex
	ms       []float64
	failures int
}

func (l *latencies) add(d time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.failures++
		return
	}
	l.ms = append(l.ms, float64(d)/float64(time.Millisecond))
}

func (l *latencies) pct(p float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ms) == 0 {
		return 0
	}
	s := slices.Clone(l.ms)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func (l *latencies) p95() float64 { return l.pct(0.95) }

// result is one run's figures.
type result struct {
	name            string
	spike           *latencies // site 0 during the spike
	othersBefore    *latencies // sites 1-3 in the steady phase
	othersDuring    *latencies // sites 1-3 during the spike
	nodeBytes       [][]int64  // node -> bytes delivered per second
	originPerObject float64    // site 0's origin requests per object
}

// run measures one mode: "alone" or "group".
func (b *bench) run(mode string, steady, spike time.Duration, rate float64) *result {
	r := &result{name: mode, spike: &latencies{}, othersBefore: &latencies{}, othersDuring: &latencies{}}
	secs := int((steady + spike) / time.Second)
	r.nodeBytes = make([][]int64, sites)
	for i := range r.nodeBytes {
		r.nodeBytes[i] = make([]int64, secs)
	}
	var mu sync.Mutex // guards nodeBytes
	start := time.Now()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, DialContext: dialer.DialContext}}
	var wg sync.WaitGroup
	visit := func(site int, during bool) {
		defer wg.Done()
		node := site
		if mode == "group" {
			node = b.resolve(site, r)
		}
		path := fmt.Sprintf("/%s/%d", mode, rand.N(objectsPerSite))
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d%s", nodeIP(node), proxyPort, path), nil)
		req.Host = siteHost(site)
		t0 := time.Now()
		resp, err := client.Do(req)
		ok := err == nil && resp.StatusCode == 200
		if err == nil {
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = ok && n == objectSize
			sec := int(time.Since(start) / time.Second)
			mu.Lock()
			if sec < len(r.nodeBytes[node]) {
				r.nodeBytes[node][sec] += n
			}
			mu.Unlock()
		}
		d := time.Since(t0)
		switch {
		case site == 0 && during:
			r.spike.add(d, ok)
		case site != 0 && during:
			r.othersDuring.add(d, ok)
		case site != 0:
			r.othersBefore.add(d, ok)
		}
	}
	b.warm(client, mode)
	start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), steady+spike)
	defer cancel()
	var gens sync.WaitGroup
	for site := range sites {
		gens.Add(1)
		go func() {
			defer gens.Done()
			for ctx.Err() == nil {
				during := time.Since(start) >= steady
				rt := rate
				if site == 0 && during {
					rt *= 20
				}
				wg.Add(1)
				go visit(site, during)
				time.Sleep(time.Duration(rand.ExpFloat64() / rt * float64(time.Second)))
			}
		}()
	}
	gens.Wait()
	wg.Wait()
	r.originPerObject = b.origins[0].perObject("/" + mode + "/")
	return r
}

// warm brings the caches to the state a site's everyday visitors leave
// them in, so the steady phase measures a steady state: alone, each site's
// own node holds the run's objects; in the group, where DNS spreads every
// site's visitors over all members, every member holds every site's
// objects (the site's own node fetches them from the origin first, the
// others then from it, as peers).
func (b *bench) warm(client *http.Client, mode string) {
	var wg sync.WaitGroup
	for site := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.fetchAll(client, mode, site, site)
			for node := range sites {
				if mode == "group" && node != site {
					b.fetchAll(client, mode, site, node)
				}
			}
		}()
	}
	wg.Wait()
}

// fetchAll has node fetch each of the run's objects of site once.
func (b *bench) fetchAll(client *http.Client, mode string, site, node int) {
	for k := range objectsPerSite {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s:%d/%s/%d", nodeIP(node), proxyPort, mode, k), nil)
		req.Host = siteHost(site)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

// resolve picks one of the nodes that the site's own node's DNS hands
// out for the site's CNAME target, as one of many resolvers would: the
// answer set is asked again every second (the rate limiter would drop a
// query per visit; resolvers cache answers for their TTL).
func (b *bench) resolve(site int, _ *result) int {
	b.dnsMu.Lock()
	defer b.dnsMu.Unlock()
	if c := b.dnsCache[site]; time.Since(c.at) < time.Second && len(c.nodes) > 0 {
		return c.nodes[rand.N(len(c.nodes))]
	}
	m := new(dns.Msg)
	m.SetQuestion(siteHost(site)+"."+b.gid+".localhost.", dns.TypeA)
	in, _, err := new(dns.Client).Exchange(m, b.c.Nodes[site].DNS)
	if err != nil {
		dnsFailures.Add(1)
		return site
	}
	var nodes []int
	for _, rr := range in.Answer {
		for i := range sites {
			if a, ok := rr.(*dns.A); ok && a.A.Equal(net.ParseIP(nodeIP(i))) {
				nodes = append(nodes, i)
			}
		}
	}
	if site == 0 {
		answerSizes[min(len(nodes), 4)].Add(1)
	}
	if len(nodes) == 0 {
		return site
	}
	b.dnsCache[site] = dnsEntry{at: time.Now(), nodes: nodes}
	return nodes[rand.N(len(nodes))]
}

type dnsEntry struct {
	at    time.Time
	nodes []int
}

var dnsFailures atomic.Int64

// answerSizes counts the spiking site's DNS answers by number of records.
var answerSizes [5]atomic.Int64

// p95 of a node's per-second upload, in bytes/s.
func p95Rate(perSecond []int64) float64 {
	s := slices.Clone(perSecond)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(0.95*float64(len(s))))])
}

func (r *result) peakP95() float64 {
	peak := 0.0
	for _, nb := range r.nodeBytes {
		peak = max(peak, p95Rate(nb))
	}
	return peak
}

// noiseFloorMs is the smallest p95 that othersChange divides by. Hits on
// loopback take about 1 ms, and on this shared 2-core machine their p95
// moves by a few ms between phases whatever the nodes do: in the alone run,
// where the other sites' nodes carry none of the spike, it moves as much
// (printed as the control). A ratio of two such figures measures the
// machine's scheduling; the spike hurting the others — a member's upload
// cap saturated — costs them hundreds of ms, which the floor still shows.
const noiseFloorMs = 10

// othersChange is the other sites' visitor p95 during the spike over their
// steady p95 (at least noiseFloorMs).
func (r *result) othersChange() float64 {
	return r.othersDuring.p95() / max(r.othersBefore.p95(), noiseFloorMs)
}

func (r *result) print() {
	fmt.Printf("%s: spiking site p50=%.1fms p95=%.1fms failures=%d; others p95 %.1fms before, %.1fms during the spike (failures %d)\n",
		r.name, r.spike.pct(0.5), r.spike.p95(), r.spike.failures, r.othersBefore.p95(), r.othersDuring.p95(), r.othersBefore.failures+r.othersDuring.failures)
	for i, nb := range r.nodeBytes {
		if *series {
			kib := make([]int64, len(nb))
			for k, n := range nb {
				kib[k] = n >> 10
			}
			fmt.Printf("%s: node %d upload per second (KiB) %v\n", r.name, i, kib)
		}
		fmt.Printf("%s: node %d upload p95 %.0f KiB/s (1-s buckets)\n", r.name, i, p95Rate(nb)/1024)
	}
	fmt.Printf("%s: origin requests per object of the spiking site %.2f\n", r.name, r.originPerObject)
}
