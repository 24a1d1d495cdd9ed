package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Group is a site group this node is a member of: the manifest in force
// (empty when none has arrived yet) and where the site owners' CNAMEs
// point.
type Group struct {
	ID     string    `json:"id"`  // group.ID of the key
	Key    string    `json:"key"` // the group's public key, "ed25519:..."
	Name   string    `json:"name,omitempty"`
	Serial uint64    `json:"serial,omitempty"`
	Issued time.Time `json:"issued,omitzero"`
	// Member says whether this node is one of the manifest's member nodes.
	Member  bool          `json:"member"`
	Sites   []GroupSite   `json:"sites,omitempty"`
	Members []GroupMember `json:"members,omitempty"`
	// Peers is how many group members this node hears the group's topic from.
	Peers int    `json:"peers"`
	Why   string `json:"why,omitempty"` // why no manifest is in force, if known
	// Ledger is every member node's latest published figures: upload 95th
	// percentile (bytes/s) of the day and month, bytes per group site this
	// month, bytes contributed to other members' sites and received.
	Ledger []LedgerRow `json:"ledger,omitempty"`
}

// LedgerRow is one member node's line of its group's ledger.
type LedgerRow struct {
	Peer        string           `json:"peer"`
	At          time.Time        `json:"at,omitzero"`
	P95Day      int64            `json:"p95_day"`
	P95Month    int64            `json:"p95_month"`
	Sites       map[string]int64 `json:"sites,omitempty"`
	Contributed int64            `json:"contributed"`
	Received    int64            `json:"received"`
}

// GroupSite is a member site.
type GroupSite struct {
	Host   string `json:"host"`
	Origin string `json:"origin"`
	Weight int    `json:"weight"`
	// CNAME is the name the site's DNS record points at.
	CNAME string `json:"cname"`
	// Conflict says, when another of the node's groups lists the same
	// public name, that the node serves it for neither and what to do.
	Conflict string `json:"conflict,omitempty"`
}

// GroupMember is a member node.
type GroupMember struct {
	Peer       string   `json:"peer"`
	UploadMbps float64  `json:"upload_mbps"`
	Sites      []string `json:"sites,omitempty"`
}

// Groups fetches GET /api/groups (token): the node's site groups with
// their manifests and ledgers, for a settings or status screen.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	b, err := c.call(ctx, http.MethodGet, "/api/groups", "")
	if err != nil {
		return nil, err
	}
	var resp struct {
		Groups []Group `json:"groups"`
	}
	if err := json.Unmarshal([]byte(b), &resp); err != nil {
		return nil, fmt.Errorf("control: /api/groups: %w", err)
	}
	return resp.Groups, nil
}

// JoinGroup sends POST /api/groups/join (token): the node joins the group
// with key (ed25519:…) at once and at later starts; manifest (a signed
// manifest, as `coral group init` writes it) may be empty, then it comes
// from the group's members.
func (c *Client) JoinGroup(ctx context.Context, key string, manifest []byte) error {
	req := map[string]any{"key": key}
	if len(manifest) > 0 {
		req["manifest"] = json.RawMessage(manifest)
	}
	body, _ := json.Marshal(req)
	_, err := c.call(ctx, http.MethodPost, "/api/groups/join", string(body))
	return err
}
