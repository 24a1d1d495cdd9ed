package node

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/coralcdn/coral/core/dsht"
	"github.com/coralcdn/coral/core/object"
)

// registerControlAPI adds the token-guarded operator endpoints. The DSHT
// endpoints let an operator (and the multi-host tests) check that the
// network works end to end: a put on one node, a get on another.
func (n *Node) registerControlAPI() {
	n.control.Handle("POST /api/dsht/put", n.dshtPut)
	n.control.Handle("GET /api/dsht/get", n.dshtGet)
	n.control.Handle("POST /api/runstate", n.postRunState)
	n.control.Handle("GET /api/invite", n.getInvite)
	n.control.Handle("POST /api/join", n.postJoin)
	n.registerGroupsAPI()
}

type dshtPutRequest struct {
	Key   string `json:"key"`   // any string; the DSHT key is its SHA-256
	Value string `json:"value"` // stored as bytes
	TTL   string `json:"ttl"`   // Go duration, default 5m
}

type dshtValue struct {
	Value     string    `json:"value"`
	Level     int       `json:"level"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (n *Node) dshtPut(w http.ResponseWriter, r *http.Request) {
	var req dshtPutRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "control: bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	ttl := 5 * time.Minute
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			http.Error(w, "control: bad ttl "+req.TTL, http.StatusBadRequest)
			return
		}
		ttl = d
	}
	if req.Key == "" {
		http.Error(w, "control: key is required", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := n.dht.Put(ctx, dsht.ID(object.KeyOf(req.Key)), []byte(req.Value), ttl); err != nil {
		http.Error(w, "control: dsht put: "+err.Error(), http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) dshtGet(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" {
		http.Error(w, "control: key is required", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	vals, err := n.dht.Get(ctx, dsht.ID(object.KeyOf(key)))
	if err != nil {
		http.Error(w, "control: dsht get: "+err.Error(), http.StatusBadGateway)
		return
	}
	out := []dshtValue{}
	for _, v := range vals {
		out = append(out, dshtValue{Value: string(v.Data), Level: v.Level, ExpiresAt: v.Expires})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
