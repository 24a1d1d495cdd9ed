// Package crowd holds the parts the flash-crowd benchmark and the demo
// share: an origin server behind a home-DSL-like upload limit that counts
// every request, visitors that check every body they receive, building the
// coral binary, and reading the nodes' status and memory.
package crowd

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// File is one object the origin serves.
type File struct {
	Path   string // URL path, e.g. /file03-35840.bin
	Body   []byte
	SHA256 [32]byte
}

// MakeFiles returns n files whose sizes grow geometrically from minSize to
// maxSize bytes. Bodies are pseudo-random (fixed seed), so they do not
// compress and a wrong or truncated body cannot pass for a right one.
func MakeFiles(n, minSize, maxSize int) []File {
	rng := rand.New(rand.NewPCG(4, 12))
	files := make([]File, n)
	for i := range files {
		size := minSize
		if n > 1 {
			size = int(math.Round(float64(minSize) * math.Pow(float64(maxSize)/float64(minSize), float64(i)/float64(n-1))))
		}
		body := make([]byte, size)
		for j := 0; j < size; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < size; k++ {
				body[j+k] = byte(v >> (8 * k))
			}
		}
		files[i] = File{Path: fmt.Sprintf("/file%02d-%d.bin", i+1, size), Body: body, SHA256: sha256.Sum256(body)}
	}
	return files
}

// TotalBytes is the sum of the files' sizes.
func TotalBytes(files []File) int64 {
	var t int64
	for _, f := range files {
		t += int64(len(f.Body))
	}
	return t
}

// chunk is how many bytes the origin writes per limiter grant: small, so
// that many concurrent responses share the line in fine turns, as TCP flows
// on a saturated uplink do.
const chunk = 1024

// Origin is an HTTP server on 127.0.0.1 serving Files. Every response body
// goes through one shared byte-rate limiter, the way every download from a
// home server shares its DSL uplink. Headers go out at once: only the body
// is limited.
type Origin struct {
	URL   string // http://127.0.0.1:port
	Files []File

	srv      *http.Server
	lim      *rate.Limiter
	maxAge   time.Duration
	byPath   map[string]int
	requests []atomic.Int64
	active   atomic.Int64
	sent     atomic.Int64

	logMu sync.Mutex
	log   []Request
}

// Request is one request the origin received, for diagnostics.
type Request struct {
	At    time.Time
	Path  string
	Range string // the Range header, if any
	Via   string // the Via header: the asking proxy's token
}

// RequestLog is every request received so far, in order of arrival.
func (o *Origin) RequestLog() []Request {
	o.logMu.Lock()
	defer o.logMu.Unlock()
	return append([]Request(nil), o.log...)
}

// StartOrigin serves files on a new loopback port with an upload limit of
// bitsPerSecond (<= 0: unlimited) and Cache-Control max-age maxAge.
func StartOrigin(files []File, bitsPerSecond float64, maxAge time.Duration) (*Origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("crowd: origin listen: %w", err)
	}
	o := &Origin{
		URL: "http://" + ln.Addr().String(), Files: files, maxAge: maxAge,
		byPath: make(map[string]int, len(files)), requests: make([]atomic.Int64, len(files)),
		lim: rate.NewLimiter(rate.Inf, chunk),
	}
	if bitsPerSecond > 0 {
		o.lim = rate.NewLimiter(rate.Limit(bitsPerSecond/8), chunk)
	}
	for i, f := range files {
		o.byPath[f.Path] = i
	}
	o.srv = &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	go o.srv.Serve(ln)
	return o, nil
}

// Close stops the server and cuts responses still running.
func (o *Origin) Close() error { return o.srv.Close() }

// Requests is how many requests file i received.
func (o *Origin) Requests(i int) int64 { return o.requests[i].Load() }

// TotalRequests is how many requests for any file arrived.
func (o *Origin) TotalRequests() int64 {
	var t int64
	for i := range o.requests {
		t += o.requests[i].Load()
	}
	return t
}

// Active is how many responses are being sent right now.
func (o *Origin) Active() int64 { return o.active.Load() }

// BytesSent is the body bytes sent so far.
func (o *Origin) BytesSent() int64 { return o.sent.Load() }

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	i, ok := o.byPath[r.URL.Path]
	if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	o.requests[i].Add(1)
	o.logMu.Lock()
	o.log = append(o.log, Request{At: time.Now(), Path: r.URL.Path, Range: r.Header.Get("Range"), Via: r.Header.Get("Via")})
	o.logMu.Unlock()
	o.active.Add(1)
	defer o.active.Add(-1)
	f := o.Files[i]
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.Itoa(len(f.Body)))
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(o.maxAge.Seconds())))
	h.Set("ETag", fmt.Sprintf(`"%x"`, f.SHA256[:8]))
	h.Set("Last-Modified", time.Unix(1_700_000_000, 0).UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for off := 0; off < len(f.Body); off += chunk {
		end := min(off+chunk, len(f.Body))
		if err := o.lim.WaitN(r.Context(), end-off); err != nil {
			return
		}
		n, err := w.Write(f.Body[off:end])
		o.sent.Add(int64(n))
		if err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// Outcome is one visitor's request.
type Outcome struct {
	Cache   string // X-Coral-Cache of the response
	Trace   string // X-Coral-Trace (the proxy's account of the request's path), if sent
	Latency time.Duration
	Err     error // nil only for a 200 with the complete, correct body
}

// ErrBadBody is a response whose body is not the file's.
var ErrBadBody = errors.New("crowd: body differs from the origin's file")

// Visit fetches want.Path from addr (host:port) with the Host header host,
// asking for the proxy's trace, and checks the body against want. Latency
// runs from the call to the last byte.
func Visit(ctx context.Context, client *http.Client, addr, host string, want File) (out Outcome) {
	start := time.Now()
	defer func() { out.Latency = time.Since(start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+want.Path, nil)
	if err != nil {
		out.Err = err
		return out
	}
	if host != "" {
		req.Host = host
		req.Header.Set("X-Coral-Debug", "1")
	}
	resp, err := client.Do(req)
	if err != nil {
		out.Err = err
		return out
	}
	defer resp.Body.Close()
	out.Cache, out.Trace = resp.Header.Get("X-Coral-Cache"), resp.Header.Get("X-Coral-Trace")
	sum := sha256.New()
	n, err := io.Copy(sum, resp.Body)
	switch {
	case resp.StatusCode != http.StatusOK:
		out.Err = fmt.Errorf("crowd: status %d", resp.StatusCode)
	case err != nil:
		out.Err = fmt.Errorf("crowd: body after %d bytes: %w", n, err)
	case n != int64(len(want.Body)) || [32]byte(sum.Sum(nil)) != want.SHA256:
		out.Err = fmt.Errorf("%w: got %d bytes, want %d", ErrBadBody, n, len(want.Body))
	}
	return out
}

var peerLevel = regexp.MustCompile(`from peer \S+ L(\d)`)

// PeerLevel is the DSHT level of the referral a PEER response came through,
// read from its trace; -1 when the trace does not say.
func PeerLevel(trace string) int {
	m := peerLevel.FindAllStringSubmatch(trace, -1)
	if len(m) == 0 {
		return -1
	}
	return int(m[len(m)-1][1][0] - '0')
}

// OriginCause reads a MISS response's trace and says why the proxy went to
// the origin, in the words of coop's steps ("lookup …", "put+get …",
// "try <peer> …: <outcome>").
func OriginCause(trace string) string {
	steps := strings.Split(trace, "; ")
	var lookup, putget string
	triedFailed, tried := 0, 0
	for _, s := range steps {
		switch {
		case strings.HasPrefix(s, "lookup"):
			lookup = s
		case strings.HasPrefix(s, "put+get"):
			putget = s
		case strings.HasPrefix(s, "try "):
			tried++
			if !strings.HasSuffix(s, ": ok") && !strings.HasSuffix(s, ": cancelled") {
				triedFailed++
			}
		}
	}
	switch {
	case trace == "":
		return "no trace"
	case tried > 0 && triedFailed == tried:
		return "every referral failed"
	case putget != "" && strings.HasSuffix(putget, ": failed"):
		return "put+get failed or timed out"
	case putget != "":
		return "first in the put+get (met nobody)"
	case strings.HasSuffix(lookup, ": failed"):
		return "lookup failed or timed out"
	case lookup != "":
		return "lookup found nothing"
	}
	return "other"
}
