package control

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The status page shows each site group: its sites with the name their DNS
// record points at, and the ledger of member nodes.
func TestStatusPageShowsGroups(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := Status{NodeID: "node-x", Groups: []Group{{
		ID: "gabc", Name: "small blogs", Serial: 3, Member: true,
		Sites:  []GroupSite{{Host: "www.alice.org", Origin: "http://origin.alice.org", Weight: 2, CNAME: "www.alice.org.nyud.net"}},
		Ledger: []LedgerRow{{Peer: "12D3KooWAlice", P95Day: 3 << 20, P95Month: 1 << 20, Contributed: 5 << 30, Received: 7 << 20}},
	}}}
	srv := &http.Server{Handler: NewServer(fixedAPI{st}, "0123456789abcdef0123", nil, nil), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, w := range []string{"small blogs", "serial 3", "member node", "www.alice.org.nyud.net", "http://origin.alice.org",
		"group-ledger", "12D3KooWAlice", "3.0 MiB/s", "1.0 MiB/s", "5.0 GiB", "7.0 MiB"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("page lacks %q", w)
		}
	}
}
