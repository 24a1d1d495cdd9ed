package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

// Get fetches path through the process's proxy as a visitor of host would
// (Host header host) and returns the response with its whole body read.
func (p *Process) Get(ctx context.Context, host, path string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTP+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// ControlDo sends a token-guarded request to the control API (the token
// read from TokenFile) and returns the status code and body; a status other
// than 200 is an error naming it.
func (p *Process) ControlDo(ctx context.Context, method, path string, body io.Reader) ([]byte, error) {
	tok, err := os.ReadFile(p.TokenFile)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.Control+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: %s %s", method, path, resp.Status, out)
	}
	return out, err
}

// Addresses is the sorted set of A records the process's DNS server hands
// out for name over queries queries (answers rotate among equally good
// proxies), asked over TCP.
func (p *Process) Addresses(name string, queries int) ([]string, error) {
	var out []string
	for range queries {
		m := new(mdns.Msg)
		m.SetQuestion(mdns.Fqdn(name), mdns.TypeA)
		r, _, err := (&mdns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, p.DNS)
		if err != nil {
			return nil, fmt.Errorf("query %s at %s: %w", name, p.DNS, err)
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*mdns.A); ok && !slices.Contains(out, a.A.String()) {
				out = append(out, a.A.String())
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
