package control

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Invite fetches GET /api/invite (token): the node's invite code, for a
// settings screen to show or copy.
func (c *Client) Invite(ctx context.Context) (string, error) {
	b, err := c.call(ctx, http.MethodGet, "/api/invite", "")
	return strings.TrimSpace(b), err
}

// Join sends POST /api/join (token): the node records the code's network
// and joins it at its next start; the answer says so.
func (c *Client) Join(ctx context.Context, code string) (string, error) {
	b, err := c.call(ctx, http.MethodPost, "/api/join", code)
	return strings.TrimSpace(b), err
}

func (c *Client) call(ctx context.Context, method, path, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("control: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("control: %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("control: %s: %s", path, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
