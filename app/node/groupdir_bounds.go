package node

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/signed"
	"golang.org/x/time/rate"
)

// What one member of the network can make every node keep. Any member may
// announce made-up groups (a key costs nothing), so the directory is
// bounded in groups and in bytes, one sender's groups take at most a share
// of it, groups nobody re-announces leave it, and a sender is heard at a
// bounded rate. A group is "one sender's" while a single peer is heard
// announcing it; a real group's members all announce it, and such a group
// is never pushed out for a newcomer.
const (
	// maxDirectoryGroups and maxDirectoryBytes (announcement bytes) bound
	// the directory.
	maxDirectoryGroups = 1024
	maxDirectoryBytes  = 8 << 20
	// dirSenderShare: the groups only one sender announces take at most
	// 1/dirSenderShare of either bound (128 groups, 1 MiB).
	dirSenderShare = 8
	// dirExpiryIntervals: a group not announced for this many republish
	// intervals leaves the directory (members re-announce their groups in
	// turn, one per interval, so this leaves room for a node in several).
	dirExpiryIntervals = 10
	// maxDirAuthors is how many distinct announcers of a group are told
	// apart; more make no difference.
	maxDirAuthors = 4
	// dirSenderBurst is how many announcements a sender may send at once;
	// then one per dirSenderEvery (see senderEvery).
	dirSenderBurst = 20
	dirSenderEvery = 2 * time.Second
	// maxDirSenders and maxDirFloors bound the per-sender limiters and the
	// remembered serials.
	maxDirSenders = 4096
	maxDirFloors  = 4 * maxDirectoryGroups
)

// dirEntry is another group's manifest in force here.
type dirEntry struct {
	m       group.Manifest
	ann     []byte                     // the announcement, to pass on
	peers   []string                   // the member nodes, one list for all sites
	sites   map[string]coralurl.Origin // by lower-case public name
	seen    time.Time                  // last announced
	authors []string                   // distinct peers heard announcing it
}

// serialFloor is the highest serial seen of a group (kept across restarts).
type serialFloor struct {
	Serial uint64    `json:"serial"`
	Seen   time.Time `json:"seen"`
}

// directory is the network-wide group directory: other groups' manifests
// by group ID. Its methods are called with groupSet.mu held.
type directory struct {
	entries map[string]*dirEntry
	bytes   int
	floors  map[string]serialFloor
	senders map[string]*rate.Limiter
	// every is the per-sender rate (0: dirSenderEvery); tests lift it.
	every rate.Limit
}

func newDirEntry(m group.Manifest, raw []byte, zone string, now time.Time) *dirEntry {
	e := &dirEntry{m: m, ann: append([]byte(nil), raw...), peers: m.Peers(), sites: map[string]coralurl.Origin{}, seen: now}
	for _, s := range m.Sites {
		o, _, _ := coralurl.ParseOrigin(s.Origin)
		if !inZone(o.Host, zone) { // an origin inside the zone would loop
			e.sites[strings.ToLower(s.Host)] = o
		}
	}
	return e
}

// heard records an announcement of the entry by author.
func (e *dirEntry) heard(author string, now time.Time) {
	e.seen = now
	if author != "" && !slices.Contains(e.authors, author) && len(e.authors) < maxDirAuthors {
		e.authors = append(e.authors, author)
	}
}

// soleAuthor is the one peer heard announcing the entry, if only one.
func (e *dirEntry) soleAuthor() (string, bool) {
	if len(e.authors) == 1 {
		return e.authors[0], true
	}
	return "", false
}

// names are the entry's self-certifying names (<site>.<group ID>).
func (e *dirEntry) names(id string) []string {
	out := make([]string, 0, len(e.sites))
	for h := range e.sites {
		out = append(out, h+"."+id)
	}
	return out
}

// hears reports whether author may be heard now (the per-sender rate).
func (d *directory) hears(author string, every time.Duration, now time.Time) bool {
	if d.senders == nil {
		d.senders = map[string]*rate.Limiter{}
	}
	l := d.senders[author]
	if l == nil {
		if len(d.senders) >= maxDirSenders {
			d.forgetIdleSenders(now)
		}
		limit := d.every
		if limit == 0 {
			limit = rate.Every(every)
		}
		l = rate.NewLimiter(limit, dirSenderBurst)
		d.senders[author] = l
	}
	return l.AllowN(now, 1)
}

// forgetIdleSenders drops the limiters of senders back at a full burst
// (forgetting them changes nothing), or all if none is.
func (d *directory) forgetIdleSenders(now time.Time) {
	for a, l := range d.senders {
		if l.TokensAt(now) >= dirSenderBurst {
			delete(d.senders, a)
		}
	}
	if len(d.senders) >= maxDirSenders {
		clear(d.senders)
	}
}

// offer considers a verified manifest of group id announced by author. It
// returns the names whose mapping changed; an error wraps
// signed.ErrNotNewer (stale: ignored) or signed.ErrNotKept (a bound).
func (d *directory) offer(id string, m group.Manifest, raw []byte, author, zone string, now time.Time, expiry time.Duration) ([]string, error) {
	old := d.entries[id]
	switch {
	case old != nil && m.Serial == old.m.Serial:
		old.heard(author, now)
		return nil, fmt.Errorf("%w: group %s serial %d already in force", signed.ErrNotNewer, id, m.Serial)
	case old != nil && m.Serial < old.m.Serial:
		return nil, fmt.Errorf("%w: group %s serial %d, in force %d", signed.ErrNotNewer, id, m.Serial, old.m.Serial)
	case old == nil && m.Serial < d.floors[id].Serial:
		return nil, fmt.Errorf("%w: group %s serial %d, serial %d was seen before", signed.ErrNotNewer, id, m.Serial, d.floors[id].Serial)
	}
	e := newDirEntry(m, raw, zone, now)
	if old != nil {
		e.authors = slices.Clone(old.authors)
	}
	e.heard(author, now)
	moved, err := d.makeRoom(id, e, old, now, expiry)
	if err != nil {
		return nil, err
	}
	d.put(id, e)
	d.remember(id, m.Serial, now)
	return append(moved, changedNames(id, old, e)...), nil
}

// makeRoom checks e against the sender's share and, if the directory is
// full, drops expired groups, then one sender's groups of whoever holds
// the most; never a group several peers announce. It returns the names of
// the groups dropped.
func (d *directory) makeRoom(id string, e, old *dirEntry, now time.Time, expiry time.Duration) ([]string, error) {
	groups, size := 1, len(e.ann)
	if old != nil {
		groups, size = 0, len(e.ann)-len(old.ann)
	}
	if a, sole := e.soleAuthor(); sole {
		n, b := d.heldBy(a, id)
		if n+1 > maxDirectoryGroups/dirSenderShare || b+len(e.ann) > maxDirectoryBytes/dirSenderShare {
			return nil, fmt.Errorf("%w: group directory: %s alone announces %d groups (%d bytes), its share is full; group %s not kept", signed.ErrNotKept, a, n, b, id)
		}
	}
	full := func() bool {
		return len(d.entries)+groups > maxDirectoryGroups || d.bytes+size > maxDirectoryBytes
	}
	var moved []string
	if full() {
		moved = d.expire(now, expiry)
	}
	for full() {
		victim := d.victim(id, e)
		if victim == "" {
			return moved, fmt.Errorf("%w: group directory: full (%d groups, %d bytes); group %s not kept", signed.ErrNotKept, len(d.entries), d.bytes, id)
		}
		moved = append(moved, d.drop(victim)...)
	}
	return moved, nil
}

// heldBy counts the groups (other than except) only author announces, and
// their bytes.
func (d *directory) heldBy(author, except string) (n, bytes int) {
	for id, e := range d.entries {
		if a, sole := e.soleAuthor(); sole && a == author && id != except {
			n, bytes = n+1, bytes+len(e.ann)
		}
	}
	return n, bytes
}

// victim is the group to drop for newcomer e: the least recently announced
// of the sender holding the most one-sender groups, if that sender holds
// more than e's sender would; "" if none. Group id itself is not one.
func (d *directory) victim(id string, e *dirEntry) string {
	held := map[string]int{}
	for _, x := range d.entries {
		if a, sole := x.soleAuthor(); sole {
			held[a]++
		}
	}
	top, most := "", 0
	for a, n := range held {
		if n > most || (n == most && a < top) {
			top, most = a, n
		}
	}
	if mine, sole := e.soleAuthor(); most == 0 || (sole && (mine == top || most <= held[mine]+1)) {
		return ""
	}
	victim, oldest := "", time.Time{}
	for g, x := range d.entries {
		if a, sole := x.soleAuthor(); sole && a == top && g != id && (victim == "" || x.seen.Before(oldest)) {
			victim, oldest = g, x.seen
		}
	}
	return victim
}

// expire drops the groups not announced within expiry.
func (d *directory) expire(now time.Time, expiry time.Duration) []string {
	var moved []string
	for id, e := range d.entries {
		if now.Sub(e.seen) > expiry {
			moved = append(moved, d.drop(id)...)
		}
	}
	return moved
}

func (d *directory) put(id string, e *dirEntry) {
	if d.entries == nil {
		d.entries = map[string]*dirEntry{}
	}
	if old := d.entries[id]; old != nil {
		d.bytes -= len(old.ann)
	}
	d.entries[id] = e
	d.bytes += len(e.ann)
}

func (d *directory) drop(id string) []string {
	e := d.entries[id]
	delete(d.entries, id)
	d.bytes -= len(e.ann)
	return e.names(id)
}

// remember raises group id's serial floor; the floors of groups no longer
// in the directory are forgotten oldest first past maxDirFloors.
func (d *directory) remember(id string, serial uint64, now time.Time) {
	if d.floors == nil {
		d.floors = map[string]serialFloor{}
	}
	if serial >= d.floors[id].Serial {
		d.floors[id] = serialFloor{Serial: serial, Seen: now}
	}
	if len(d.floors) <= maxDirFloors {
		return
	}
	var gone []string
	for g := range d.floors {
		if d.entries[g] == nil {
			gone = append(gone, g)
		}
	}
	slices.SortFunc(gone, func(a, b string) int { return d.floors[a].Seen.Compare(d.floors[b].Seen) })
	for _, g := range gone[:min(len(gone), len(d.floors)-maxDirFloors*3/4)] {
		delete(d.floors, g)
	}
}

// site looks up a self-certifying name <site>.<group ID>.
func (d *directory) site(name string) (siteEntry, bool) {
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return siteEntry{}, false
	}
	id := name[i+1:]
	e := d.entries[id]
	if e == nil {
		return siteEntry{}, false
	}
	o, ok := e.sites[name[:i]]
	return siteEntry{origin: o, peers: e.peers, group: id}, ok
}

// changedNames are the names whose origin differs between two versions of
// a group's entry (old may be nil).
func changedNames(id string, old, now *dirEntry) []string {
	var out []string
	if old != nil {
		for h, o := range old.sites {
			if p, ok := now.sites[h]; !ok || p != o {
				out = append(out, h+"."+id)
			}
		}
	}
	for h := range now.sites {
		if _, ok := old.siteOf(h); !ok {
			out = append(out, h+"."+id)
		}
	}
	return out
}

func (e *dirEntry) siteOf(host string) (coralurl.Origin, bool) {
	if e == nil {
		return coralurl.Origin{}, false
	}
	o, ok := e.sites[host]
	return o, ok
}
