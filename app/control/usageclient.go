package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Usage fetches GET /api/usage: the 5-minute buckets of one site ("" for
// the total) since a time, for the window's graphs.
func (c *Client) Usage(ctx context.Context, site string, since time.Time) ([]UsageBucket, error) {
	q := url.Values{"since": {since.UTC().Format(time.RFC3339)}}
	if site != "" {
		q.Set("site", site)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/api/usage?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control: usage: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("control: usage: %s", resp.Status)
	}
	var body struct {
		Buckets []UsageBucket `json:"buckets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("control: decode usage: %w", err)
	}
	return body.Buckets, nil
}
