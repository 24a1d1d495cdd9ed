package node

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coralcdn/coral/test/testkit"
)

// A handler's panic closes the visitor's connection without an answer
// (the visitor sees EOF); the node's log says so at error level, while
// net/http's routine complaints stay at debug.
func TestHandlerPanicIsLoggedAsAnError(t *testing.T) {
	var logs testkit.LogBuffer
	l := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ErrorLog: serverErrorLog(l), Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("a bug in a handler")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Fatal("the panicking handler answered")
	}
	testkit.Eventually(t, 5*time.Second, "the panic logged at error level", func() bool {
		return strings.Contains(logs.String(), "level=ERROR") && strings.Contains(logs.String(), "a bug in a handler")
	})
	serverErrorLog(l).Print("http: TLS handshake error from 192.0.2.1:1234: EOF")
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "TLS handshake") && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a routine complaint not at debug: %s", line)
		}
	}
}
