package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// SettingsAPI is what a user interface needs to read and change the live
// settings (pause, bandwidth caps, schedule, quota, site weights). The
// settings travel as JSON so this package, and the GUI, link nothing of
// the config's parsers; README "Settings" lists the keys.
type SettingsAPI interface {
	Settings(ctx context.Context) (json.RawMessage, error)
	// UpdateSettings applies a partial change (only the keys to change; a
	// JSON merge patch) and returns the settings now in force. A refused
	// change returns a *FieldError.
	UpdateSettings(ctx context.Context, patch json.RawMessage) (json.RawMessage, error)
}

// FieldError is a refused settings change; Field names the key
// ("bandwidth.upload").
type FieldError struct {
	Field string `json:"field"`
	Msg   string `json:"error"`
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

// maxSettingsBody bounds a settings change: a week of windows and a few
// hundred sites fit with room to spare.
const maxSettingsBody = 256 << 10

// EnableSettings serves GET /api/settings (open, like /api/status) and
// PUT /api/settings (with the token).
func (s *Server) EnableSettings(api SettingsAPI) {
	s.mux.HandleFunc("GET /api/settings", func(w http.ResponseWriter, r *http.Request) {
		cur, err := api.Settings(r.Context())
		if err != nil {
			http.Error(w, "control: settings: "+err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, cur)
	})
	s.Handle("PUT /api/settings", func(w http.ResponseWriter, r *http.Request) {
		patch, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSettingsBody))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, &FieldError{Msg: "settings change too large"})
			return
		}
		cur, err := api.UpdateSettings(r.Context(), patch)
		var fe *FieldError
		switch {
		case errors.As(err, &fe):
			writeJSON(w, http.StatusBadRequest, fe)
		case err != nil:
			writeJSON(w, http.StatusBadRequest, &FieldError{Msg: err.Error()})
		default:
			writeJSON(w, http.StatusOK, cur)
		}
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

var _ SettingsAPI = (*Client)(nil)

// Settings fetches GET /api/settings.
func (c *Client) Settings(ctx context.Context) (json.RawMessage, error) {
	return c.settingsCall(ctx, http.MethodGet, nil)
}

// UpdateSettings sends PUT /api/settings with the token.
func (c *Client) UpdateSettings(ctx context.Context, patch json.RawMessage) (json.RawMessage, error) {
	return c.settingsCall(ctx, http.MethodPut, patch)
}

func (c *Client) settingsCall(ctx context.Context, method string, body []byte) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+"/api/settings", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control: settings: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("control: settings: %w", err)
	}
	if resp.StatusCode == http.StatusBadRequest {
		var fe FieldError
		if json.Unmarshal(b, &fe) == nil && fe.Msg != "" {
			return nil, &fe
		}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("control: settings: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
