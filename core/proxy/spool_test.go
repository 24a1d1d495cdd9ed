package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestSpoolRetainsAndSpills(t *testing.T) {
	dir := t.TempDir()
	s := newSpool(dir, 16, 8, time.Second)
	ctx := context.Background()
	early, err := s.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := 0; i < 10; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i)}, 7)
		want.Write(chunk)
		if err := s.Write(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	// A reader attached after the spill to disk still starts at byte 0.
	late, err := s.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Finish(nil)
	for name, r := range map[string]*spoolReader{"early": early, "late": late} {
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s reader: %q, %v; want %q", name, got, err, want.Bytes())
		}
		r.Close()
	}
	if s.file != nil {
		t.Error("spool file still open after every reader closed")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("spool left files behind: %v", entries)
	}
	if _, err := s.NewReader(ctx); !errors.Is(err, errSpoolGone) {
		t.Errorf("reader on a cleaned spool: %v", err)
	}
}

func TestSpoolReaderSeesFailureAfterData(t *testing.T) {
	s := newSpool(t.TempDir(), 1024, 1024, time.Second)
	r, _ := s.NewReader(context.Background())
	defer r.Close()
	_ = s.Write(context.Background(), []byte("partial"))
	boom := errors.New("origin went away")
	s.Finish(boom)
	got, err := io.ReadAll(r)
	if string(got) != "partial" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v; want the bytes and then the error", got, err)
	}
}

func TestSpoolReaderWaitsForData(t *testing.T) {
	s := newSpool(t.TempDir(), 1024, 1024, time.Second)
	r, _ := s.NewReader(context.Background())
	defer r.Close()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 10)
		n, _ := r.Read(buf)
		got <- string(buf[:n])
	}()
	_ = s.Write(context.Background(), []byte("late"))
	if v := recv(t, "reader", got); v != "late" {
		t.Fatalf("read %q", v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r2, _ := s.NewReader(ctx)
	defer r2.Close()
	_, _ = io.ReadFull(r2, make([]byte, 4))
	cancel()
	if _, err := r2.Read(make([]byte, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
}

func TestSpoolPipeBackPressure(t *testing.T) {
	s := newSpool(t.TempDir(), 1024, 4, 10*time.Second)
	ctx := context.Background()
	r, _ := s.NewReader(ctx)
	_ = s.Write(ctx, []byte("ab"))
	s.StopRetaining()
	if _, err := s.NewReader(ctx); !errors.Is(err, errSpoolGone) {
		t.Fatalf("new reader on a pipe: %v", err)
	}
	if err := s.Write(ctx, []byte("cdef")); err != nil { // fills the window
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() { wrote <- s.Write(ctx, []byte("gh")) }()
	// The writer can only proceed once the reader consumed the window.
	got, err := io.ReadAll(io.LimitReader(r, 6))
	if err != nil || string(got) != "abcdef" {
		t.Fatalf("read %q %v", got, err)
	}
	if err := recv(t, "blocked write", wrote); err != nil {
		t.Fatal(err)
	}
	s.Finish(nil)
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "gh" {
		t.Fatalf("rest %q %v", rest, err)
	}
	if len(s.win) > 4 {
		t.Errorf("window grew to %d bytes", len(s.win))
	}
	r.Close()
}

func TestSpoolPipeStopsWithoutReaders(t *testing.T) {
	s := newSpool(t.TempDir(), 1024, 4, time.Second)
	ctx := context.Background()
	r, _ := s.NewReader(ctx)
	s.StopRetaining()
	if err := s.Write(ctx, []byte("abcd")); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if err := s.Write(ctx, []byte("e")); !errors.Is(err, errNoReaders) {
		t.Fatalf("write with nobody reading: %v", err)
	}
}

func TestSpoolPipeSlowReader(t *testing.T) {
	s := newSpool(t.TempDir(), 1024, 2, 20*time.Millisecond)
	ctx := context.Background()
	r, _ := s.NewReader(ctx)
	defer r.Close()
	s.StopRetaining()
	_ = s.Write(ctx, []byte("ab"))
	if err := s.Write(ctx, []byte("c")); !errors.Is(err, errSlowReaders) {
		t.Fatalf("write to a reader that never reads: %v", err)
	}
}

// pipeOf is a spool in pipe mode with window bytes of room, n readers
// attached, and stall as its stall timeout.
func pipeOf(t *testing.T, window, n int, stall time.Duration) (*spool, []*spoolReader) {
	t.Helper()
	s := newSpool(t.TempDir(), 1024, window, stall)
	var rs []*spoolReader
	for i := 0; i < n; i++ {
		r, err := s.NewReader(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		rs = append(rs, r)
	}
	s.StopRetaining()
	return s, rs
}

// writeAll writes body to s in chunks of size, then finishes it; the
// first write error (nil when none) is sent on the returned channel.
func writeAll(s *spool, body []byte, size int) <-chan error {
	done := make(chan error, 1)
	go func() {
		for len(body) > 0 {
			n := min(size, len(body))
			if err := s.Write(context.Background(), body[:n]); err != nil {
				s.Finish(err)
				done <- err
				return
			}
			body = body[n:]
		}
		s.Finish(nil)
		done <- nil
	}()
	return done
}

// A reader that stops reading is cut off when it holds the window back;
// the others get the whole body (the reviewer's repro: two readers, one
// idle, 20 bytes through a 4-byte window).
func TestSpoolPipeCutsOnlyTheStalledReader(t *testing.T) {
	body := []byte("abcdefghijklmnopqrst")
	cases := []struct {
		name     string
		idle     int // readers that never read
		idleRead int // bytes each idle reader reads before it stops
	}{
		{"one idle from the start", 1, 0},
		{"one idle after some bytes", 1, 3},
		{"two idle", 2, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, rs := pipeOf(t, 4, 1+c.idle, 50*time.Millisecond)
			wrote := writeAll(s, body, 2)
			for _, idle := range rs[1:] {
				if c.idleRead > 0 {
					if _, err := io.ReadFull(idle, make([]byte, c.idleRead)); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := io.ReadAll(rs[0])
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("active reader: %q, %v; want the whole body", got, err)
			}
			if err := recv(t, "writer", wrote); err != nil {
				t.Fatalf("writer: %v; want the body finished", err)
			}
			for i, idle := range rs[1:] {
				if _, err := idle.Read(make([]byte, 64)); !errors.Is(err, errSlowReaders) {
					t.Errorf("idle reader %d: %v; want errSlowReaders", i, err)
				}
			}
		})
	}
}

// A reader holding the window back that keeps consuming, however slowly
// (within the stall timeout per read), is never cut off.
func TestSpoolPipeSlowButReadingReaderStays(t *testing.T) {
	const stall = time.Second
	body := bytes.Repeat([]byte("0123456789"), 4) // 40 one-byte reads
	s, rs := pipeOf(t, 4, 2, stall)
	wrote := writeAll(s, body, 2)
	fast := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(rs[0])
		fast <- got
	}()
	var got []byte
	tick := time.NewTicker(stall / 20)
	defer tick.Stop()
	for {
		b := make([]byte, 1)
		n, err := rs[1].Read(b)
		got = append(got, b[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("slow reader cut off after %d bytes: %v", len(got), err)
		}
		<-tick.C // the pace of a slow reader, not a synchronisation
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("slow reader: %q", got)
	}
	if f := recv(t, "fast reader", fast); !bytes.Equal(f, body) {
		t.Fatalf("fast reader: %q", f)
	}
	if err := recv(t, "writer", wrote); err != nil {
		t.Fatal(err)
	}
}

// A reader still reading the retained bytes when the spool turned into a
// pipe holds the window back too, and is cut off alike when it stalls.
func TestSpoolPipeCutsStalledRetainedReader(t *testing.T) {
	s := newSpool(t.TempDir(), 1024, 4, 50*time.Millisecond)
	ctx := context.Background()
	active, _ := s.NewReader(ctx)
	defer active.Close()
	idle, _ := s.NewReader(ctx)
	defer idle.Close()
	head := []byte("retained")
	if err := s.Write(ctx, head); err != nil {
		t.Fatal(err)
	}
	s.StopRetaining()
	rest := []byte("then piped through a small window")
	wrote := writeAll(s, rest, 3)
	got, err := io.ReadAll(active)
	if want := append(head, rest...); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("active reader: %q, %v; want %q", got, err, want)
	}
	if err := recv(t, "writer", wrote); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Read(make([]byte, 1)); !errors.Is(err, errSlowReaders) {
		t.Errorf("idle reader: %v; want errSlowReaders", err)
	}
}

// Through the proxy over real HTTP: two visitors of a body piped past
// max_object_bytes, one of whom stops reading after the head. The
// stalled one is cut off when it holds the pipe's window back for the
// stall timeout (OriginTimeout); the other gets the complete response.
func TestPipedBodyOutlivesAStalledVisitor(t *testing.T) {
	joined := make(chan struct{})
	e := newBoundEnv(t, time.Minute, func(o *Options) {
		o.MaxObjectBytes = 1 << 20
		o.OriginTimeout = 2 * time.Second // the pipe's stall timeout
	})
	body := append(append([]byte{}, e.body...), e.body...) // far past every buffer on the way
	e.origin.set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600") // storable until it grows too large
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body[:1000])
		w.(http.Flusher).Flush()
		select {
		case <-joined:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(body[1000:])
	})
	active := e.dial(e.request("GET", "/piped"))
	deadline := time.Now().Add(20 * time.Second)
	for e.origin.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling for the fetch to begin
	}
	stalled := e.dial(e.request("GET", "/piped"))
	for e.p.stats.coalesced.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // polling for the second visitor to join
	}
	if e.p.stats.coalesced.Load() == 0 {
		t.Fatal("the second visitor never joined the fetch")
	}
	close(joined)
	sresp, err := http.ReadResponse(bufio.NewReader(stalled), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The stalled visitor reads nothing more for now.
	resp, err := http.ReadResponse(bufio.NewReader(active), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("active visitor: %d bytes, %v; want all %d", len(got), err, len(body))
	}
	// Reading again, it finds its response cut off.
	if n, err := io.Copy(io.Discard, sresp.Body); err == nil {
		t.Fatalf("the stalled visitor got a complete response of %d bytes", n)
	}
}
