package node

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/coralcdn/coral/core/shaping"
)

// BenchmarkVisitorGate is the budget's cost on a cached 1 KiB response
// with no cap in force (counting only), beside the bare handler.
func BenchmarkVisitorGate(b *testing.B) {
	body := make([]byte, 1024)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	budget, err := shaping.New(shaping.Policy{}, shaping.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer budget.Close()
	req := httptest.NewRequest("GET", "http://www.example.com.localhost/x", nil)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", h}, {"gate", newVisitorGate(h, budget, "localhost", "")}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tc.h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		})
	}
}
