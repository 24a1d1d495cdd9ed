package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
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
