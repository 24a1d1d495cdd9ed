package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"
	lru "github.com/hashicorp/golang-lru/v2"
)

// homeOriginsFile keeps, in the data directory, the origins that asked for
// redirect-home, so a node restarted while paused still sends their
// visitors home (no response passes to remind it while it is paused).
const homeOriginsFile = "home-origins.json"

// homeOrigins is the remembered set, saved whenever an origin joins it.
type homeOrigins struct {
	cache *lru.Cache[string, struct{}]
	path  string
	save  sync.Mutex // one save at a time
}

// loadHomeOrigins reads the saved set; a missing or damaged file starts
// an empty one (the set is a convenience, relearnt from responses).
func loadHomeOrigins(path string) *homeOrigins {
	c, _ := lru.New[string, struct{}](homeOriginsMax)
	h := &homeOrigins{cache: c, path: path}
	var list []string
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &list) == nil {
		for _, o := range list[:min(len(list), homeOriginsMax)] {
			c.Add(o, struct{}{})
		}
	}
	return h
}

func (h *homeOrigins) has(origin string) bool {
	_, ok := h.cache.Get(origin)
	return ok
}

// add remembers origin; a new one is saved in the background.
func (h *homeOrigins) add(origin string) {
	if h.cache.Contains(origin) {
		return
	}
	h.cache.Add(origin, struct{}{})
	if h.path != "" {
		go h.write()
	}
}

func (h *homeOrigins) write() error {
	h.save.Lock()
	defer h.save.Unlock()
	b, _ := json.Marshal(h.cache.Keys())
	// Synced before the rename (renameio): a power cut leaves the old set.
	return renameio.WriteFile(filepath.Clean(h.path), b, 0o600)
}
