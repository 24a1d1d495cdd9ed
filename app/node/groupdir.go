package node

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/signed"
	"github.com/coralcdn/coral/p2p"
)

// The group directory. A site owner's CNAME points at <site>.<group ID>.
// <zone>, and the resolver may ask any Coral nameserver, member of the
// group or not; the proxies DNS hands out are members. So every node keeps
// every group's manifest, as announced on one network-wide topic with the
// group's key: the name carries the key's ID, so a node checks the
// manifest against the key the name stands for and trusts no sender (a
// group cannot claim another group's names). Member nodes re-announce
// their groups' manifests every republish interval.

// The directory's bounds are in groupdir_bounds.go, its serials on disk in
// groupdir_store.go.

// joinGroupDirectory loads the serials seen before and subscribes to the
// directory topic.
func (n *Node) joinGroupDirectory() error {
	n.loadDirectorySerials()
	t, err := n.host.JoinGroupDirectory(p2p.SignedTopicConfig{
		OfferFrom:         n.offerAnnouncement,
		Current:           n.nextAnnouncement,
		RepublishInterval: n.runStateRepublish,
	})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.groups.mu.Lock()
	n.groups.dirTopic = t
	n.groups.mu.Unlock()
	return nil
}

// republishInterval is how often members re-announce their groups.
func (n *Node) republishInterval() time.Duration {
	if n.runStateRepublish > 0 {
		return n.runStateRepublish
	}
	return p2p.DefaultRunStateRepublish
}

// offerAnnouncement considers an announcement from the network, published
// by author: a group this node is in takes the manifest through its
// tracker (fail-same, kept on disk); another group's newer manifest goes
// into the directory, within its bounds. A bound reached wraps
// signed.ErrNotKept: gossip ignores the announcement, it does not reject
// it, so other groups' announcements keep flowing.
func (n *Node) offerAnnouncement(author string, raw []byte) error {
	every := min(dirSenderEvery, n.republishInterval()/4)
	n.groups.mu.Lock()
	heard := n.groups.dir.hears(author, every, time.Now())
	n.groups.mu.Unlock()
	if !heard {
		return fmt.Errorf("%w: group directory: %s announces more often than one per %v", signed.ErrNotKept, author, every)
	}
	id, _, m, signedM, err := group.OpenAnnouncement(raw)
	if err != nil {
		return err
	}
	for _, g := range n.groupList() {
		if g.id == id {
			return n.offerManifest(g, signedM)
		}
	}
	n.groups.mu.Lock()
	moved, err := n.groups.dir.offer(id, m, raw, author, n.cfg.Zone, time.Now(), dirExpiryIntervals*n.republishInterval())
	n.groups.mu.Unlock()
	if err != nil {
		return err
	}
	n.dirSitesMoved(moved) // before the log line: tests take it as "the node answers for the group"
	n.saveDirectorySerialsSoon()
	n.log.Info("group directory: manifest accepted", "group", id, "name", m.Name, "serial", m.Serial, "from", author)
	return nil
}

// dirSitesMoved tells the proxy which self-certifying names changed
// origin or left: its hot cache must not answer them from the old origin.
func (n *Node) dirSitesMoved(names []string) {
	if p := n.siteProxy.Load(); p != nil && len(names) > 0 {
		p.SitesChanged(names...)
	}
}

// expireDirectory drops the groups nobody re-announced in time.
func (n *Node) expireDirectory() {
	n.groups.mu.Lock()
	moved := n.groups.dir.expire(time.Now(), dirExpiryIntervals*n.republishInterval())
	n.groups.mu.Unlock()
	n.dirSitesMoved(moved)
}

// nextAnnouncement is what this node re-announces: its groups' manifests
// in turn (nil when it holds none). Called every republish interval, it
// also expires the directory.
func (n *Node) nextAnnouncement() []byte {
	n.expireDirectory()
	var anns [][]byte
	for _, g := range n.groupList() {
		if _, raw, ok := g.tr.Current(); ok {
			anns = append(anns, group.Announce(group.FormatPublicKey(g.key), raw))
		}
	}
	if len(anns) == 0 {
		return nil
	}
	n.groups.mu.Lock()
	defer n.groups.mu.Unlock()
	n.groups.dirNext++
	return anns[n.groups.dirNext%len(anns)]
}

// announce sends g's manifest in force to the whole network at once.
func (n *Node) announce(ctx context.Context, g *memberGroup) {
	_, raw, ok := g.tr.Current()
	n.groups.mu.Lock()
	t := n.groups.dirTopic
	n.groups.mu.Unlock()
	if !ok || t == nil {
		return
	}
	if err := t.Publish(ctx, group.Announce(group.FormatPublicKey(g.key), raw)); err != nil {
		n.log.Debug("group directory: announce failed", "group", g.id, "err", err)
	}
}

// indexQualified adds the self-certifying names (<site>.<id>) of a
// member group's sites to idx; peers is the group's one members list.
func (n *Node) indexQualified(idx map[string]siteEntry, id string, m group.Manifest, peers []string) {
	for _, s := range m.Sites {
		o, _, _ := coralurl.ParseOrigin(s.Origin)
		if inZone(o.Host, n.cfg.Zone) {
			continue
		}
		name := strings.ToLower(s.Host) + "." + id
		if _, taken := idx[name]; !taken {
			idx[name] = siteEntry{origin: o, peers: peers, group: id}
		}
	}
}
