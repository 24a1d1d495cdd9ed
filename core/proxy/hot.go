package proxy

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/httpcache"
	"github.com/coralcdn/coral/core/object"
)

// The hot cache keeps fresh objects' response headers ready to write, and
// the bodies of small ones in memory, so that a cache hit is a map lookup, a
// freshness comparison, a generation check with the store and two writes
// (a larger body goes from its file with sendfile): no meta read or decode,
// no header assembly. It is a copy: the store stays
// the authority. Every hit asks the store for the object's generation (which
// also counts the access for the store's eviction), and an entry whose
// object changed in any way (replaced, revalidated, deleted, evicted) is
// dropped. Bodies are copied in from a store read that verified them.
//
// Only plain requests take this path: no conditionals, Range,
// Cache-Control, Pragma or X-Coral-Debug; everything else goes the full way,
// which gives the same answer. Entries are found by the request's Host
// header and request-target as sent, which determine the canonical URL and
// the rewritten Location headers.

const (
	// defaultHotBytes is the hot cache's default size.
	defaultHotBytes = 32 << 20
	// hotObjectMax is the largest body kept in memory; larger ones are
	// sent from their files with sendfile, which is faster for them (their
	// entries hold only the header).
	hotObjectMax = 64 << 10
	// hotOverhead approximates an entry's memory besides its body.
	hotOverhead = 512
)

// HotStore is implemented by stores that tell when an object changed and
// open a verified body without its meta (*store.Store does); the hot cache
// needs it.
type HotStore interface {
	Generation(key string) (gen uint64, ok bool)
	OpenVerified(key string, gen uint64) (object.Body, bool)
}

type hotKey struct{ host, target string }

type hotEntry struct {
	key      hotKey
	pkey     string
	gen      uint64
	canon    string
	status   int
	header   http.Header // everything but Age
	body     []byte      // nil for a body sent from its file
	file     bool
	respTime time.Time
	initial  time.Duration // age when received (RFC 9111 §4.2.3)
	until    time.Time     // fresh before this instant
	length   int64         // of the body
	size     int64         // accounted against the budget
	used     atomic.Bool   // CLOCK reference bit
	slot     int           // index in hotCache.ring, under its lock
	age      atomic.Pointer[hotAge]
	fast     atomic.Pointer[fastHeadOf] // the fast path's response head (fastpath.go)
}

// hotAge is an entry's Age header value for one second, shared by the hits
// in that second (net/http copies header values when it writes them).
type hotAge struct {
	secs  int64
	value []string
}

// ageHeader is the entry's Age header value at now.
func (e *hotEntry) ageHeader(now time.Time) []string {
	secs := int64(e.ageAt(now) / time.Second)
	if a := e.age.Load(); a != nil && a.secs == secs {
		return a.value
	}
	a := &hotAge{secs: secs, value: []string{strconv.FormatInt(secs, 10)}}
	e.age.Store(a)
	return a.value
}

// ageAt is the entry's Age at now.
func (e *hotEntry) ageAt(now time.Time) time.Duration {
	return e.initial + max(now.Sub(e.respTime), 0)
}

// hotCache is a size-bounded map of entries with CLOCK eviction (a hit only
// sets a bit, so lookups share a read lock).
type hotCache struct {
	max int64

	mu    sync.RWMutex
	m     map[hotKey]*hotEntry
	ring  []*hotEntry
	hand  int
	bytes int64

	sites atomic.Uint64 // SitesChanged calls so far (hotsites.go)
}

func newHotCache(max int64) *hotCache {
	return &hotCache{max: max, m: map[hotKey]*hotEntry{}}
}

func (c *hotCache) get(k hotKey) *hotEntry {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e != nil {
		e.used.Store(true)
	}
	return e
}

// put adds e, replacing any entry for its key, and evicts down to the
// budget.
func (c *hotCache) put(e *hotEntry) {
	if e.size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[e.key]; old != nil {
		c.removeLocked(old)
	}
	for c.bytes+e.size > c.max && len(c.ring) > 0 {
		c.hand %= len(c.ring)
		v := c.ring[c.hand]
		if v.used.Swap(false) {
			c.hand++
			continue
		}
		c.removeLocked(v)
	}
	c.m[e.key] = e
	e.slot = len(c.ring)
	c.ring = append(c.ring, e)
	c.bytes += e.size
}

// remove drops e if it is still the entry for its key.
func (c *hotCache) remove(e *hotEntry) {
	c.mu.Lock()
	if c.m[e.key] == e {
		c.removeLocked(e)
	}
	c.mu.Unlock()
}

func (c *hotCache) removeLocked(e *hotEntry) {
	delete(c.m, e.key)
	last := len(c.ring) - 1
	moved := c.ring[last]
	c.ring[e.slot], moved.slot = moved, e.slot
	c.ring[last] = nil
	c.ring = c.ring[:last]
	c.bytes -= e.size
}

// hotUnplainFields are the request fields that change the answer of a
// fresh stored response; a request with one goes the full way.
var hotUnplainFields = [...]string{"Cache-Control", "Pragma", "If-None-Match", "If-Modified-Since", "Range", DebugHeader}

// plainRequest reports whether r may be answered by the hot cache: a GET or
// HEAD with nothing that changes the answer of a fresh stored response.
func plainRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	for _, f := range hotUnplainFields {
		if _, ok := h[f]; ok {
			return false
		}
	}
	return true
}

// serveHot answers r from the hot cache; false (nothing written) when it
// cannot.
func (p *Proxy) serveHot(w http.ResponseWriter, r *http.Request) bool {
	e := p.hot.get(hotKey{r.Host, r.RequestURI})
	if e == nil {
		return false
	}
	now := p.now()
	if !now.Before(e.until) {
		return false
	}
	if e.file {
		// Opening checks the generation; the file was verified.
		b, ok := p.hs.OpenVerified(e.pkey, e.gen)
		if !ok {
			p.hot.remove(e)
			return false
		}
		defer b.Close()
		sec, err := b.Section(0, e.length)
		if err != nil {
			p.hot.remove(e)
			return false
		}
		p.writeHot(w, r, e, now, sec)
	} else {
		if gen, ok := p.hs.Generation(e.pkey); !ok || gen != e.gen {
			p.hot.remove(e)
			return false
		}
		p.writeHot(w, r, e, now, nil)
	}
	p.traceHot(e, now)
	return true
}

// traceHot records a hit answered from the hot cache.
func (p *Proxy) traceHot(e *hotEntry, now time.Time) {
	p.traces.add(TraceSummary{Time: now, URL: e.canon, Result: CacheHit, Path: "source=cache (hot)"})
}

// writeHot answers r from e: its body, or sec for a body in a file.
func (p *Proxy) writeHot(w http.ResponseWriter, r *http.Request, e *hotEntry, now time.Time, sec io.Reader) {
	p.stats.hits.Add(1)
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h["Age"] = e.ageHeader(now)
	w.WriteHeader(e.status)
	if r.Method != http.MethodGet || !bodyAllowed(e.status) {
		return
	}
	if sec != nil {
		p.sendSection(w, sec, e.length)
		return
	}
	if len(e.body) > 0 {
		n, _ := w.Write(e.body)
		p.stats.bytes.Add(uint64(n))
	}
}

// fillHot answers r from a fresh stored object and keeps the object's
// header (and a small body) in the hot cache; false, having written and
// read nothing, when the object is not one for the hot cache. gen is the
// object's generation read before m and body were. When it returns true,
// body is closed.
func (p *Proxy) fillHot(w http.ResponseWriter, r *http.Request, o coralurl.Origin, pkey string, gen uint64,
	m object.Meta, body object.Body) bool {
	inFile := m.Size > hotObjectMax
	// Only identity-coded bodies: the hot path does not look at
	// Accept-Encoding (encoded responses are stored as variants anyway).
	if p.hot == nil || len(m.Extra[extraVary]) > 0 || !plainRequest(r) ||
		!httpcache.EncodingAcceptable(m.Header, "") || (inFile && !body.InFile()) {
		return false
	}
	e := entryOf(m)
	lifetime, _ := p.policy.Lifetime(e)
	initial := httpcache.Age(e, m.ResponseTime)
	if httpcache.CoralDirectives(m.Header).NoCache || initial >= lifetime {
		return false
	}
	sec, err := body.Section(0, m.Size) // verifies a body not verified yet
	if err != nil {
		return false
	}
	defer body.Close()
	he := &hotEntry{
		key: hotKey{r.Host, r.RequestURI}, pkey: pkey, gen: gen, canon: m.URL, status: m.Status,
		file: inFile, respTime: m.ResponseTime, initial: initial, until: m.ResponseTime.Add(lifetime - initial),
		header: p.hotHeader(r, o, m), length: m.Size, size: hotOverhead,
	}
	if !inFile {
		he.body = make([]byte, m.Size)
		if _, err := io.ReadFull(sec, he.body); err != nil {
			panic(http.ErrAbortHandler) // nothing written yet, but the body is unusable
		}
		he.size += m.Size
		sec = nil
	}
	if now, ok := p.hs.Generation(pkey); ok && now == gen {
		p.putHot(he, r.Host, o) // else it changed while it was read: served, not kept
	}
	p.writeHot(w, r, he, p.now(), sec)
	return true
}

// hotHeader is the header of every hit on m, but Age.
func (p *Proxy) hotHeader(r *http.Request, o coralurl.Origin, m object.Meta) http.Header {
	h := m.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	p.decorate(h, r, o, CacheHit)
	h.Del(TraceHeader)
	if bodyAllowed(m.Status) {
		h.Set("Content-Length", strconv.FormatInt(m.Size, 10))
		if m.Status == http.StatusOK {
			h.Set("Accept-Ranges", "bytes")
		}
	}
	return h
}
