package node

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/shaping"
)

// DefaultGroupFigures is how often a member node publishes its figures.
const DefaultGroupFigures = time.Minute

// joinLedger subscribes g's ledger topic and, on a member node, publishes
// this node's figures every groups.figuresEvery.
func (n *Node) joinLedger(g *memberGroup) error {
	l, err := n.host.JoinGroupLedger(g.id, func(author string, data []byte) error { return n.acceptFigures(g, author, data) })
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.groups.mu.Lock()
	g.ledger = l
	n.groups.mu.Unlock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(n.groups.figuresEvery)
		defer t.Stop()
		for {
			n.publishFigures(g)
			select {
			case <-n.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// acceptFigures takes figures from the group: well-formed, of a member
// node, published by that node itself, and not older than what we hold.
func (n *Node) acceptFigures(g *memberGroup, author string, data []byte) error {
	m, _, ok := g.tr.Current()
	if !ok {
		return fmt.Errorf("group %s: no manifest in force yet", g.id)
	}
	f, err := group.ParseFigures(data, m)
	if err != nil {
		return err
	}
	if f.Peer != author {
		return fmt.Errorf("group %s: figures of %s published by %s", g.id, f.Peer, author)
	}
	g.figsMu.Lock()
	defer g.figsMu.Unlock()
	if old, ok := g.figs[f.Peer]; ok && f.At.Before(old.At) {
		return fmt.Errorf("group %s: figures of %s older than those held", g.id, f.Peer)
	}
	g.figs[f.Peer] = f
	return nil
}

// publishFigures sends this node's figures, if it is one of g's member nodes.
func (n *Node) publishFigures(g *memberGroup) {
	m, _, ok := g.tr.Current()
	if _, member := m.Member(n.nodeID); !ok || !member || n.budget == nil {
		return
	}
	data, _ := json.Marshal(n.figures(m, time.Now().UTC()))
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	if err := g.ledger.Publish(ctx, data); err != nil && n.ctx.Err() == nil {
		n.log.Debug("group figures not published", "group", g.id, "err", err)
	}
}

// figures are this node's figures for the group of manifest m at now
// (UTC): from the usage record's buckets of the day and the month so far.
func (n *Node) figures(m group.Manifest, now time.Time) group.Figures {
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	u := n.budget.Usage()
	f := group.Figures{Peer: n.nodeID, At: now, Day: day.Format("2006-01-02"), Month: month.Format("2006-01"),
		P95Day: p95Since(u, day, now), P95Month: p95Since(u, month, now), Sites: map[string]int64{}}
	totals := u.SiteTotals(month)
	for _, s := range m.Sites {
		keys := []string{s.Host}
		if e, ok := n.site(s.Host); ok && e.origin.Host != s.Host {
			keys = append(keys, e.origin.Host) // peer transfers count under the origin's host
		}
		for _, k := range keys {
			if c := totals[k].Sent; c > 0 {
				f.Sites[s.Host] += c
			}
		}
	}
	return f
}

// p95Since is the upload's 95th percentile over the buckets from since to now.
func p95Since(u *shaping.Usage, since, now time.Time) int64 {
	var sent []int64
	for _, b := range u.Series("", since) {
		sent = append(sent, b.Sent)
	}
	buckets := int(now.Sub(since)/shaping.BucketSize) + 1
	return group.Percentile95(sent, buckets, shaping.BucketSize)
}

// ledgerRows is g's ledger as the status shows it.
func (n *Node) ledgerRows(g *memberGroup, m group.Manifest) []control.LedgerRow {
	g.figsMu.Lock()
	figs := maps.Clone(g.figs)
	g.figsMu.Unlock()
	var out []control.LedgerRow
	for _, r := range group.Ledger(m, figs) {
		out = append(out, control.LedgerRow{Peer: r.Peer, At: r.At, P95Day: r.P95Day, P95Month: r.P95Month,
			Sites: r.Sites, Contributed: r.Contributed, Received: r.Received})
	}
	return out
}
