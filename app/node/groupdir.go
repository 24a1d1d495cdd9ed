package node

import (
	"context"
	"fmt"
	"strings"

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

// maxDirectoryGroups bounds the directory: a member flooding the network
// with made-up groups costs each node at most this many manifests.
const maxDirectoryGroups = 1024

// dirEntry is another group's manifest in force here.
type dirEntry struct {
	m   group.Manifest
	ann []byte // the announcement, to pass on
}

// joinGroupDirectory subscribes to the directory topic.
func (n *Node) joinGroupDirectory() error {
	t, err := n.host.JoinGroupDirectory(p2p.SignedTopicConfig{
		Offer:             n.offerAnnouncement,
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

// offerAnnouncement considers an announcement from the network: a group
// this node is in takes the manifest through its tracker (fail-same, kept
// on disk); another group's newer manifest goes into the directory.
func (n *Node) offerAnnouncement(raw []byte) error {
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
	if old, ok := n.groups.dir[id]; ok && old.m.Serial >= m.Serial {
		n.groups.mu.Unlock()
		return fmt.Errorf("%w: group %s serial %d, in force %d", signed.ErrNotNewer, id, m.Serial, old.m.Serial)
	}
	if _, known := n.groups.dir[id]; !known && len(n.groups.dir) >= maxDirectoryGroups {
		n.groups.mu.Unlock()
		return fmt.Errorf("group directory: full (%d groups); group %s not kept", maxDirectoryGroups, id)
	}
	if n.groups.dir == nil {
		n.groups.dir = map[string]dirEntry{}
	}
	n.groups.dir[id] = dirEntry{m: m, ann: append([]byte(nil), raw...)}
	n.groups.mu.Unlock()
	n.reindexSites() // before the log line: tests take it as "the node answers for the group"
	n.log.Info("group directory: manifest accepted", "group", id, "name", m.Name, "serial", m.Serial)
	return nil
}

// nextAnnouncement is what this node re-announces: its groups' manifests
// in turn (nil when it holds none).
func (n *Node) nextAnnouncement() []byte {
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
// group's sites to idx.
func (n *Node) indexQualified(idx map[string]siteEntry, id string, m group.Manifest) {
	for _, s := range m.Sites {
		o, _, _ := coralurl.ParseOrigin(s.Origin)
		if inZone(o.Host, n.cfg.Zone) {
			continue
		}
		name := strings.ToLower(s.Host) + "." + id
		if _, taken := idx[name]; !taken {
			idx[name] = siteEntry{origin: o, peers: m.Peers(), group: id}
		}
	}
}
