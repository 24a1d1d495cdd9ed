package p2p

import (
	"context"
	"errors"
	"fmt"

	"github.com/coralcdn/coral/core/group"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// A site group's ledger travels on its own gossip topic: each member node
// publishes its figures (group.Figures) now and then. Gossipsub signs every
// message with its author's node key and verifies it on receipt (its
// default StrictSign policy), so the author is known for certain; the
// node's Accept checks that the figures are the author's own and that the
// author is a member node of the group before they count or travel on.

// LedgerTopic is this node's membership of a group's ledger topic.
type LedgerTopic struct {
	h      *Host
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	name   string
	cancel context.CancelFunc
	done   chan struct{}
}

// JoinGroupLedger subscribes to the ledger topic of group id. accept gets
// each message's verified author and data (this node's own included); an
// error drops the message and counts against the peer that sent it.
func (h *Host) JoinGroupLedger(id string, accept func(author string, data []byte) error) (*LedgerTopic, error) {
	if accept == nil {
		return nil, errors.New("p2p: group ledger: accept is required")
	}
	ps, err := h.pubsub()
	if err != nil {
		return nil, fmt.Errorf("p2p: group ledger: %w", err)
	}
	name := "/coral/group/" + id + "/ledger"
	validate := func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		author, err := peer.IDFromBytes(m.From)
		if err != nil {
			return pubsub.ValidationReject
		}
		if err := accept(author.String(), m.Data); err != nil {
			h.log.Debug("group ledger: refused figures", "group", id, "author", author, "err", err)
			return pubsub.ValidationReject
		}
		return pubsub.ValidationAccept
	}
	if err := ps.RegisterTopicValidator(name, validate); err != nil {
		return nil, fmt.Errorf("p2p: group ledger: %w", err)
	}
	l := &LedgerTopic{h: h, name: name, done: make(chan struct{})}
	if l.topic, err = ps.Join(name); err == nil {
		l.sub, err = l.topic.Subscribe()
	}
	if err != nil {
		ps.UnregisterTopicValidator(name)
		return nil, fmt.Errorf("p2p: group ledger: %w", err)
	}
	var ctx context.Context
	ctx, l.cancel = context.WithCancel(h.ctx)
	go func() {
		defer close(l.done)
		for {
			if _, err := l.sub.Next(ctx); err != nil {
				return
			}
		}
	}()
	return l, nil
}

// Publish sends this node's figures to the group (validated here first).
func (l *LedgerTopic) Publish(ctx context.Context, data []byte) error {
	if len(data) > group.MaxFiguresBytes {
		return fmt.Errorf("p2p: group ledger: figures of %d bytes", len(data))
	}
	if err := l.topic.Publish(ctx, data); err != nil {
		return fmt.Errorf("p2p: group ledger: publish: %w", err)
	}
	return nil
}

// Peers is how many members this node hears the ledger topic from.
func (l *LedgerTopic) Peers() int { return len(l.topic.ListPeers()) }

// Close leaves the topic.
func (l *LedgerTopic) Close() error {
	l.cancel()
	l.sub.Cancel()
	<-l.done
	return l.h.ps.UnregisterTopicValidator(l.name)
}

// JoinGroupDirectory subscribes to the network-wide topic where every
// group's manifest is announced with its key (group.Announcement), so that
// any node can answer for a group site's self-certifying name.
func (h *Host) JoinGroupDirectory(cfg SignedTopicConfig) (*SignedTopic, error) {
	return h.joinSignedTopic("/coral/groups/"+h.cfg.ProtocolVersion, "group directory", cfg)
}
