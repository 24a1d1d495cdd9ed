// Package control is the node's local control surface: the status page a
// volunteer opens in a browser, the JSON API (`GET /api/status`), Prometheus
// metrics, and the token that guards every change. The GUI and scripts talk
// to a node only through the API interface defined here, so a desktop window
// can drive an in-process node and a headless one alike.
package control

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
)

// API is what a user interface needs from a node.
type API interface {
	Status(ctx context.Context) (Status, error)
}

// Status is a snapshot of the node for people and scripts. Every part fills
// its own section; absent parts leave theirs empty.
type Status struct {
	Version   string        `json:"version"`
	NodeID    string        `json:"node_id"`
	Zone      string        `json:"zone"`
	StartedAt time.Time     `json:"started_at"`
	Uptime    time.Duration `json:"uptime_ns"`
	Listen    Listen        `json:"listen"`
	Proxy     ProxyStatus   `json:"proxy"`
	Cache     CacheStatus   `json:"cache"`
	P2P       *P2PStatus    `json:"p2p,omitempty"`
	DSHT      *DSHTStatus   `json:"dsht,omitempty"`
	DNS       *DNSStatus    `json:"dns,omitempty"`
	Budget    *BudgetStatus `json:"budget,omitempty"`
	Recent    []Trace       `json:"recent,omitempty"`
	Events    []Event       `json:"events,omitempty"` // warnings since start, newest last
	RunState  *RunState     `json:"run_state,omitempty"`
	Groups    []Group       `json:"groups,omitempty"`
}

// RunState is the network operator's signed run-state document in force on
// this node, and what it means here.
type RunState struct {
	Operator   string     `json:"operator"` // the trusted key; empty: none
	Serial     uint64     `json:"serial,omitempty"`
	Issued     time.Time  `json:"issued,omitzero"`
	Paused     []string   `json:"paused,omitempty"`
	MinVersion string     `json:"min_version,omitempty"`
	RotateAt   *time.Time `json:"secret_rotation_at,omitempty"`
	Message    string     `json:"message,omitempty"`
	// Serving says which components serve (proxy, dns, dsht); Why says
	// why any does not.
	Serving map[string]bool `json:"serving"`
	Why     string          `json:"why,omitempty"`
}

// Listen says where the node's listeners are bound.
type Listen struct {
	HTTP    string   `json:"http"`
	Control string   `json:"control"`
	DNS     string   `json:"dns,omitempty"`
	P2P     []string `json:"p2p,omitempty"`
}

// ProxyStatus counts what the proxy did since start.
type ProxyStatus struct {
	Requests        int64 `json:"requests"`
	Hits            int64 `json:"hits"`
	Misses          int64 `json:"misses"`
	Stale           int64 `json:"stale"`
	Revalidated     int64 `json:"revalidated"`
	Peer            int64 `json:"peer"`
	OriginFetches   int64 `json:"origin_fetches"`
	NegativeHits    int64 `json:"negative_hits"`
	Errors          int64 `json:"errors"`
	BytesServed     int64 `json:"bytes_served"`
	InFlight        int64 `json:"in_flight"`
	CoalescedWaits  int64 `json:"coalesced"`
	RefusedRequests int64 `json:"refused"`
}

// CacheStatus is the store's use of its disk budget, and whether the disk
// has room for more.
type CacheStatus struct {
	Objects      int    `json:"objects"`
	Bytes        int64  `json:"bytes"`
	MaxBytes     int64  `json:"max_bytes"`
	FreeBytes    int64  `json:"free_bytes"`          // free space on the store's filesystem; -1 unknown
	MinFreeBytes int64  `json:"min_free_bytes"`      // [cache] min_free_bytes
	Storing      bool   `json:"storing"`             // false: the disk is (nearly) full and new objects pass through
	DiskNote     string `json:"disk_note,omitempty"` // why not storing, for people
}

// P2PStatus is the libp2p host's view of the network.
type P2PStatus struct {
	PeerID         string   `json:"peer_id"`
	Addrs          []string `json:"addrs"`
	Reachability   string   `json:"reachability"`
	Relayed        bool     `json:"relayed"`
	RelayAddrs     []string `json:"relay_addrs,omitempty"`
	ConnectedPeers int      `json:"connected_peers"`
	// RelayedPeers are the connected peers reached only through a relay:
	// a volunteer's upload carries their traffic.
	RelayedPeers int `json:"relayed_peers"`
	// ReachedAt are the addresses other machines reach this node at that
	// are not on its interfaces (the router's public address at home, as
	// libp2p and each peer see it): origins there are refused.
	ReachedAt []string `json:"reached_at,omitempty"`
	// JoinProblem says why the node has no peer when members answered but
	// refused it: its secret or operator key is not the network's.
	JoinProblem string `json:"join_problem,omitempty"`
}

// DSHTStatus is the DSHT's routing state per level (index 0 = global).
type DSHTStatus struct {
	Levels       []LevelStatus `json:"levels"`
	StoredKeys   int           `json:"stored_keys"`
	StoredValues int           `json:"stored_values"`
	RPCsSent     int64         `json:"rpcs_sent"`
	RPCsReceived int64         `json:"rpcs_received"`
	// RPCs that timed out or failed, and the peers this node heard from
	// lately or failed to reach: why a node stays out of its cluster.
	RPCTimeouts      int64 `json:"rpc_timeouts"`
	RPCFailures      int64 `json:"rpc_failures"`
	PeersLive        int   `json:"peers_live"`
	PeersUnreachable int   `json:"peers_unreachable"`
}

// LevelStatus is one DSHT level.
type LevelStatus struct {
	Level       int    `json:"level"`
	ClusterID   string `json:"cluster_id"`
	ClusterSize int    `json:"cluster_size"`
	RoutingSize int    `json:"routing_size"`
	// ClustersSeen are the other clusters this node's peers claim at this
	// level, as its membership rule judges them (levels above 0).
	ClustersSeen []ClusterSeen `json:"clusters_seen,omitempty"`
}

// ClusterSeen is one cluster a node's peers claim: its size estimate, how
// many of its members the node measured and how many of those are within
// the level's RTT threshold; preferred: the node would move there once it
// is acceptable.
type ClusterSeen struct {
	ClusterID  string `json:"cluster_id"`
	Size       int    `json:"size"`
	Sampled    int    `json:"sampled"`
	Within     int    `json:"within"`
	Acceptable bool   `json:"acceptable"`
	Preferred  bool   `json:"preferred"`
}

// DNSStatus counts the DNS server's answers.
type DNSStatus struct {
	Queries int64 `json:"queries"`
	Answers int64 `json:"answers"`
	Refused int64 `json:"refused"`
	Limited int64 `json:"rate_limited"`
}

// Trace is one recent request's path through the node.
type Trace struct {
	Time   time.Time `json:"time"`
	URL    string    `json:"url"`
	Result string    `json:"result"`
	Path   string    `json:"path"`
}

// Server serves the control listener.
type Server struct {
	api   API
	token string
	log   *slog.Logger
	mux   *http.ServeMux
	hosts hostGuard
}

// NewServer builds the control handler. token guards every request that
// changes something; metrics serves GET /metrics (nil: no metrics). The
// handler comes from the caller so that the control package, and the GUI
// that uses its client, link no metrics library.
func NewServer(api API, token string, metrics http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{api: api, token: token, log: log.With("component", "control"), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.page)
	s.mux.HandleFunc("GET /api/status", s.status)
	if metrics != nil {
		s.mux.Handle("GET /metrics", metrics)
	}
	return s
}

// Handle registers a handler that changes the node: it runs only for
// requests that carry the control token.
func (s *Server) Handle(pattern string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, s.requireToken(h))
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The control API is for this machine's user: refuse pages framed or
	// fetched by other sites' scripts.
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !s.hosts.allowed(r.Host) {
		refuseHost(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) requireToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="coral control"`)
			http.Error(w, "control: a valid token is required (Authorization: Bearer <token from token_file>)", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	st, err := s.api.Status(r.Context())
	if err != nil {
		http.Error(w, "control: status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		s.log.Debug("write status", "err", err)
	}
}

// LoadOrCreateToken returns the token in path, creating the file with a new
// random token (mode 0600) when it does not exist, or holds no token at all
// (empty, or bytes no one types: a damaged file). The token is only a local
// credential that the GUI and the CLI read from this file, so a new one
// loses nothing, where refusing would stop the node.
func LoadOrCreateToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && !damagedToken(b) {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("control: token file %s: token too short (want at least 16 characters; delete the file and a new token is made at the next start)", path)
		}
		return tok, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("control: read token: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("control: generate token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("control: token dir: %w", err)
	}
	// Atomically: a power cut during the first start must not leave an
	// empty token file, which every later start would refuse.
	if err := renameio.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("control: write token: %w", err)
	}
	return tok, nil
}

// damagedToken reports whether a token file holds nothing a person or this
// package would have written: empty, or with control or non-ASCII bytes
// (which could not travel in an HTTP header either).
func damagedToken(b []byte) bool {
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return true
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < ' ' || c > '~' {
			return true
		}
	}
	return false
}

// Client drives a node's control API over HTTP; it implements API so the GUI
// can attach to a headless node.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8081
	Token   string
	HTTP    *http.Client
}

var _ API = (*Client)(nil)

// Status fetches GET /api/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/api/status", nil)
	if err != nil {
		return st, fmt.Errorf("control: %w", err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("control: status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("control: status: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("control: decode status: %w", err)
	}
	return st, nil
}
