package node

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/p2p"
	"github.com/google/renameio/v2"
)

// groupsDir holds, per site group, the manifest in force (<id>.signed) and,
// for groups joined through the control API, the key (<id>.key).
const groupsDir = "groups"

// memberGroup is one site group the node belongs to.
type memberGroup struct {
	key ed25519.PublicKey
	id  string
	tr  *group.Tracker
	ch  *p2p.SignedTopic // nil until the host runs
	why string           // why the stored manifest was not applied, if so

	ledger *p2p.LedgerTopic
	figsMu sync.Mutex
	figs   map[string]group.Figures // latest figures per member node
}

// siteEntry is what the proxy and DNS need to know of a custom domain.
type siteEntry struct {
	origin coralurl.Origin
	peers  []string
	group  string
}

// groupSet is the node's site groups and the index of their sites.
type groupSet struct {
	// indexing orders whole index rebuilds, each with the manifest or
	// directory change it follows: an index built from older manifests
	// never replaces a newer one.
	indexing sync.Mutex
	mu       sync.Mutex
	list     []*memberGroup
	sites    map[string]siteEntry // by public host name
	// disputed is the public names two or more groups list, with those
	// groups' IDs (group order): served by none (indexPublic).
	disputed map[string][]string
	// inForce is the manifest each group's sites in the index came from,
	// by group ID: the status shows it, never a manifest the proxy and
	// DNS do not answer by yet.
	inForce map[string]group.Manifest

	figuresEvery time.Duration

	// The network-wide directory (groupdir.go): other groups' manifests,
	// by group ID, for their sites' self-certifying names.
	dir      directory
	dirSave  dirSaver // the directory's serials, to disk
	dirTopic *p2p.SignedTopic
	dirNext  int // which own group's announcement is republished next
}

// openGroups loads every group of the config and of earlier joins, and
// offers each config manifest file. A manifest file that is not the
// group's (bad signature, malformed) stops the start: it is the user's own
// input. An older one is no error (a newer one came over the network).
func (n *Node) openGroups() error {
	for _, c := range n.configGroupsThenJoined() {
		keyText, file := c.Key, c.Manifest
		g, err := n.openGroup(keyText)
		if err != nil {
			return err
		}
		if file == "" {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("node: group %s: %w", g.id, err)
		}
		if err := n.offerManifest(g, raw); err != nil && !errors.Is(err, group.ErrNotNewer) {
			return fmt.Errorf("node: group %s: manifest %s: %w", g.id, file, err)
		}
	}
	n.reindexSites()
	return nil
}

// configGroupsThenJoined is every group the node is in, each once, in a
// fixed order: the config's (in its order), then those joined through the
// control API (by ID, as their key files sort). Never map order: the
// status, the logs and the site index come out the same at every start.
func (n *Node) configGroupsThenJoined() []config.Group {
	var out []config.Group
	seen := map[string]bool{}
	for _, g := range n.cfg.Groups {
		if !seen[g.Key] {
			seen[g.Key] = true
			out = append(out, g)
		} else if i := slices.IndexFunc(out, func(o config.Group) bool { return o.Key == g.Key }); g.Manifest != "" {
			out[i].Manifest = g.Manifest // listed twice: the later manifest file, as before
		}
	}
	joined, _ := filepath.Glob(filepath.Join(n.cfg.Path(groupsDir), "*.key"))
	for _, f := range joined { // Glob sorts
		k, ok := n.readJoinedKey(f)
		if ok && !seen[k] {
			seen[k] = true
			out = append(out, config.Group{Key: k})
		}
	}
	return out
}

// readJoinedKey reads the key file of a group joined earlier. One that a
// crash or a full disk left unreadable costs that group, not the node: the
// node starts without it and the log names the file and the way back (the
// key cannot be rebuilt from the file's name, a hash of it).
func (n *Node) readJoinedKey(file string) (string, bool) {
	b, err := os.ReadFile(file)
	k := strings.TrimSpace(string(b))
	if err == nil {
		_, err = group.ParsePublicKey(k)
	}
	if err != nil {
		n.log.Error("group key file damaged: starting without that group; join the group again with its key (this replaces the file)",
			"file", file, "err", err)
		return "", false
	}
	return k, true
}

func (n *Node) openGroup(keyText string) (*memberGroup, error) {
	key, err := group.ParsePublicKey(keyText)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	g := &memberGroup{key: key, id: group.ID(key), figs: map[string]group.Figures{}}
	if g.tr, err = group.NewTracker(filepath.Join(n.cfg.Path(groupsDir), g.id+".signed"), key); err != nil {
		g.why = err.Error()
		n.log.Warn("group manifest not applied", "group", g.id, "err", err)
	}
	n.groups.mu.Lock()
	n.groups.list = append(n.groups.list, g)
	n.groups.mu.Unlock()
	return g, nil
}

// offerManifest considers a signed manifest for g and, if accepted,
// updates the site index.
func (n *Node) offerManifest(g *memberGroup, raw []byte) error {
	n.groups.indexing.Lock()
	defer n.groups.indexing.Unlock()
	m, err := g.tr.Offer(raw)
	if err != nil {
		return err
	}
	n.groups.mu.Lock()
	g.why = ""
	n.groups.mu.Unlock()
	n.log.Info("group manifest accepted", "group", g.id, "name", m.Name, "serial", m.Serial, "sites", len(m.Sites), "members", len(m.Members))
	n.buildSiteIndex()
	return nil
}

// joinGroupTopic connects g's tracker to the group's gossip topic.
func (n *Node) joinGroupTopic(g *memberGroup) error {
	ch, err := n.host.JoinGroup(g.id, p2p.SignedTopicConfig{
		Offer:             func(raw []byte) error { return n.offerManifest(g, raw) },
		Current:           func() []byte { _, raw, _ := g.tr.Current(); return raw },
		RepublishInterval: n.runStateRepublish,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.groups.mu.Lock()
	g.ch = ch
	n.groups.mu.Unlock()
	return n.joinLedger(g)
}

func (n *Node) joinGroupTopics() error {
	n.refreshBudget() // membership is known now that the node has its peer ID
	if err := n.joinGroupDirectory(); err != nil {
		return err
	}
	for _, g := range n.groupList() {
		if err := n.joinGroupTopic(g); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) closeGroups() (errs []error) {
	if n.groups.dirTopic != nil {
		errs = append(errs, n.groups.dirTopic.Close())
		errs = append(errs, n.flushDirectorySerials())
	}
	for _, g := range n.groupList() {
		if g.ch != nil {
			errs = append(errs, g.ch.Close())
		}
		if g.ledger != nil {
			errs = append(errs, g.ledger.Close())
		}
	}
	return errs
}

func (n *Node) groupList() []*memberGroup {
	n.groups.mu.Lock()
	defer n.groups.mu.Unlock()
	return slices.Clone(n.groups.list)
}

// reindexSites rebuilds the custom-domain index from the manifests in
// force.
func (n *Node) reindexSites() {
	n.groups.indexing.Lock()
	defer n.groups.indexing.Unlock()
	n.buildSiteIndex()
}

// buildSiteIndex is reindexSites with groups.indexing held. Every member
// group's self-certifying names (<site>.<group ID>) come first: they are
// the group's by its key, and no public name another group lists can take
// one (nor one of the directory's groups': see site).
// A site whose name or origin is inside Coral's zone would loop and is left
// out (with a warning), as is a public name two groups claim (disputed).
func (n *Node) buildSiteIndex() {
	idx := map[string]siteEntry{}
	inForce := map[string]group.Manifest{}
	var live []*memberGroup // with a manifest in force, in the node's group order
	for _, g := range n.groupList() {
		if m, _, ok := g.tr.Current(); ok {
			inForce[g.id] = m
			live = append(live, g)
			n.indexQualified(idx, g.id, m, m.Peers())
		}
	}
	disputed := n.indexPublic(idx, live, inForce)
	n.groups.mu.Lock()
	old, oldDisputed := n.groups.sites, n.groups.disputed
	n.groups.sites, n.groups.inForce, n.groups.disputed = idx, inForce, disputed
	n.groups.mu.Unlock()
	n.warnDisputes(oldDisputed, disputed)
	if p := n.siteProxy.Load(); p != nil {
		p.SitesChanged(movedSites(old, idx)...)
	}
	n.refreshBudget()
}

// movedSites are the names whose origin differs between two site indexes
// (in one only, or mapped to another origin): the proxy's hot cache must
// not answer them from copies of the old origin.
func movedSites(old, now map[string]siteEntry) []string {
	var out []string
	for h, e := range old {
		if f, ok := now[h]; !ok || f.origin != e.origin {
			out = append(out, h)
		}
	}
	for h := range now {
		if _, ok := old[h]; !ok {
			out = append(out, h)
		}
	}
	return out
}

func inZone(host, zone string) bool {
	host, zone = strings.ToLower(host), strings.ToLower(zone)
	return host == zone || strings.HasSuffix(host, "."+zone)
}

func (n *Node) site(host string) (siteEntry, bool) {
	n.groups.mu.Lock()
	defer n.groups.mu.Unlock()
	e, ok := n.groups.sites[host]
	if ok && strings.HasSuffix(host, "."+e.group) {
		return e, true // a member group's self-certifying name
	}
	if d, isDir := n.groups.dir.site(host); isDir {
		return d, true // another group's self-certifying name, whatever public names list it
	}
	return e, ok
}

// siteOrigin is the proxy's custom-domain map (proxy.Options.Sites).
func (n *Node) siteOrigin(host string) (coralurl.Origin, bool) {
	e, ok := n.site(host)
	return e.origin, ok
}

// siteMembers is the DNS server's group lookup (dnsserver.WithSites). A
// disputed name is a site with no members: the server answers SERVFAIL
// (and hands out no proxy, as this node's proxy refuses the name), so the
// resolver asks another nameserver.
func (n *Node) siteMembers(host string) ([]string, bool) {
	e, ok := n.site(host)
	if !ok && n.disputedBy(host) != nil {
		return nil, true
	}
	return e.peers, ok
}

// groupsStatus is the status page's and /api/groups' view of the groups.
func (n *Node) groupsStatus() []control.Group {
	type view struct {
		g     *memberGroup
		why   string
		ch    *p2p.SignedTopic
		m     group.Manifest
		inUse bool
	}
	n.groups.mu.Lock()
	views := make([]view, 0, len(n.groups.list))
	for _, g := range n.groups.list {
		m, ok := n.groups.inForce[g.id]
		views = append(views, view{g, g.why, g.ch, m, ok})
	}
	disputed := n.groups.disputed
	n.groups.mu.Unlock()
	var out []control.Group
	for _, v := range views {
		g, m := v.g, v.m
		st := control.Group{ID: g.id, Key: group.FormatPublicKey(g.key), Why: v.why}
		if v.ch != nil {
			st.Peers = v.ch.Peers()
		}
		if v.inUse {
			st.Name, st.Serial, st.Issued = m.Name, m.Serial, m.Issued
			_, st.Member = m.Member(n.nodeID)
			for _, s := range m.Sites {
				site := control.GroupSite{Host: s.Host, Origin: s.Origin, Weight: s.Weight, CNAME: s.Host + "." + g.id + "." + n.cfg.Zone}
				if others := disputed[s.Host]; others != nil {
					site.Conflict = disputeAdvice(s.Host, others)
				}
				st.Sites = append(st.Sites, site)
			}
			for _, mb := range m.Members {
				st.Members = append(st.Members, control.GroupMember{Peer: mb.Peer, UploadMbps: mb.UploadMbps, Sites: mb.Sites})
			}
			st.Ledger = n.ledgerRows(g, m)
		}
		out = append(out, st)
	}
	return out
}

// ---- control API ----

func (n *Node) registerGroupsAPI() {
	n.control.Handle("GET /api/groups", n.getGroups)
	n.control.Handle("POST /api/groups/manifest", n.postManifest)
	n.control.Handle("POST /api/groups/join", n.postGroupJoin)
}

func (n *Node) getGroups(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"groups": n.groupsStatus()})
}

// postManifest is POST /api/groups/manifest (token): a signed manifest
// (`coral group sign -publish`) for one of the node's groups, applied here
// and sent to the group.
func (n *Node) postManifest(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, group.MaxSignedBytes+1))
	if err != nil {
		http.Error(w, "control: group manifest: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	g, err := n.groupOf(raw)
	if err != nil {
		http.Error(w, "control: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := n.offerManifest(g, raw); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, group.ErrNotNewer) {
			code = http.StatusConflict
		}
		http.Error(w, "control: "+err.Error(), code)
		return
	}
	n.announce(r.Context(), g)
	n.publishManifest(w, r, g, raw)
}

// groupOf finds the group whose key signed raw.
func (n *Node) groupOf(raw []byte) (*memberGroup, error) {
	var last error = errors.New("this node is in no site group (add [[groups]] to its config, or join one)")
	for _, g := range n.groupList() {
		if _, err := group.Open(raw, g.key); err == nil || !errors.Is(err, group.ErrBadSignature) {
			return g, nil
		} else {
			last = fmt.Errorf("the manifest is not signed by the key of any group this node is in: %w", err)
		}
	}
	return nil, last
}

func (n *Node) publishManifest(w http.ResponseWriter, r *http.Request, g *memberGroup, raw []byte) {
	peers := 0
	if g.ch != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := g.ch.Publish(ctx, raw); err != nil {
			http.Error(w, "control: accepted here, but "+err.Error(), http.StatusBadGateway)
			return
		}
		peers = g.ch.Peers()
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"accepted": true, "group": g.id, "sent_to_peers": peers})
}

// groupJoinRequest is POST /api/groups/join's body: the group's key and,
// optionally, a signed manifest (else it arrives from the group's members).
type groupJoinRequest struct {
	Key      string          `json:"key"`
	Manifest json.RawMessage `json:"manifest,omitempty"`
}

// postGroupJoin is POST /api/groups/join (token): the settings' way to
// join a group, at once and for later starts.
func (n *Node) postGroupJoin(w http.ResponseWriter, r *http.Request) {
	var req groupJoinRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, group.MaxSignedBytes+1024)).Decode(&req); err != nil {
		http.Error(w, "control: bad request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	key, err := group.ParsePublicKey(req.Key)
	if err != nil {
		http.Error(w, "control: "+err.Error(), http.StatusBadRequest)
		return
	}
	if len(req.Manifest) > 0 {
		if _, err := group.Open(req.Manifest, key); err != nil {
			http.Error(w, "control: manifest: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	g, err := n.joinGroup(key)
	if err != nil {
		http.Error(w, "control: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if len(req.Manifest) > 0 {
		if err := n.offerManifest(g, req.Manifest); err != nil && !errors.Is(err, group.ErrNotNewer) {
			http.Error(w, "control: manifest: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"joined": true, "group": g.id})
}

// joinGroup makes the node a member of the group with key now and at
// later starts (its key is kept in the groups directory).
func (n *Node) joinGroup(key ed25519.PublicKey) (*memberGroup, error) {
	id := group.ID(key)
	for _, g := range n.groupList() {
		if g.id == id {
			return g, nil
		}
	}
	keyFile := filepath.Join(n.cfg.Path(groupsDir), id+".key")
	if err := os.MkdirAll(filepath.Dir(keyFile), 0o700); err != nil {
		return nil, err
	}
	// Atomic: a full disk or a crash mid-write leaves no half key file.
	if err := renameio.WriteFile(keyFile, []byte(group.FormatPublicKey(key)+"\n"), 0o600); err != nil {
		return nil, err
	}
	g, err := n.openGroup(group.FormatPublicKey(key))
	if err != nil {
		return nil, err
	}
	n.reindexSites()
	return g, n.joinGroupTopic(g)
}
