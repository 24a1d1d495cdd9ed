package store

import (
	"io"
	"testing"
)

func BenchmarkGet1KiB(b *testing.B) {
	s := openStore(b, b.TempDir(), Options{})
	data := body("k", 1, 1<<10)
	put(b, s, "k", data, Meta{Status: 200, URL: "http://example.com/k"})
	buf := make([]byte, 32<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_, body, err := s.Get("k")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, body, buf); err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

func BenchmarkCommit1KiB(b *testing.B) { benchmarkCommit(b, 1<<10) }
func BenchmarkCommit1MiB(b *testing.B) { benchmarkCommit(b, 1<<20) }

func benchmarkCommit(b *testing.B, size int) {
	s := openStore(b, b.TempDir(), Options{})
	data := body("k", 1, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		w := s.Create("k", 0)
		for p := data; len(p) > 0; p = p[min(len(p), 32<<10):] {
			if _, err := w.Write(p[:min(len(p), 32<<10)]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Commit(Meta{Status: 200, Size: int64(size)}); err != nil {
			b.Fatal(err)
		}
	}
}
