package locality

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"
)

type sample struct {
	visitor netip.Addr
	rtt     time.Duration
}

// A real HTTP server behind the measuring listener reports each visitor
// connection's kernel RTT when the connection closes.
func TestMeasureListenerReportsKernelRTT(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan sample, 4)
	mln := MeasureListener(ln, func(v netip.Addr, rtt time.Duration) { got <- sample{v, rtt} })
	body := strings.Repeat("x", 256<<10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	})}
	go srv.Serve(mln)
	defer srv.Close()

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(b) != len(body) {
		t.Fatalf("body %d bytes through the wrapped listener, want %d", len(b), len(body))
	}
	select {
	case s := <-got:
		if s.visitor != netip.MustParseAddr("127.0.0.1") || s.rtt <= 0 || s.rtt > time.Second {
			t.Errorf("sample %+v: want visitor 127.0.0.1 and a loopback RTT", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no RTT reported after the connection closed")
	}
}

// Closing twice reports once; non-TCP listeners pass through untouched.
func TestMeasureListenerOncePerConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	mln := MeasureListener(ln, func(netip.Addr, time.Duration) { n++ })
	defer mln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := mln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(c)
	c.Close()
	c.Close()
	if n != 1 {
		t.Errorf("%d reports for one connection", n)
	}
	if _, ok := c.(io.ReaderFrom); !ok {
		t.Error("wrapped connection lost ReadFrom (sendfile)")
	}

	uln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Skip(err)
	}
	defer uln.Close()
	go func() {
		if c, err := net.Dial("unix", uln.Addr().String()); err == nil {
			c.Close()
		}
	}()
	uc, err := MeasureListener(uln, func(netip.Addr, time.Duration) { t.Error("unix socket measured") }).Accept()
	if err != nil {
		t.Fatal(err)
	}
	uc.Close()
}
