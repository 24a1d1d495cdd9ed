package p2p

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/coralcdn/coral/core/group"
	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/core/signed"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Signed documents (run state, group manifests: core/signed) travel by
// gossipsub (go-libp2p-pubsub), one topic per kind and scope: run state per
// protocol version, a manifest per group. A document is one small message for every member:
// a broadcast, which is what gossip does in O(log n) hops with duplicate
// suppression, where the DSHT is made for many keys each wanted by a few
// (a key everyone polls would land on the same few nodes). Each node's
// validator verifies a document before it is passed on, so a forged or
// stale one dies at the first honest hop.
//
// Gossip does not replay old messages to newcomers, so every node that
// holds a document publishes it again every RepublishInterval. A member
// that has it already ignores the copy (not newer) and does not pass it on,
// so a republish costs one small message per neighbour; a newcomer accepts
// it and passes it on.

// DefaultRunStateRepublish is how often a node re-publishes the document in
// force, for members that joined since.
const DefaultRunStateRepublish = time.Minute

// maxSignedMessage bounds a gossip message: the largest signed document.
const maxSignedMessage = max(runstate.MaxSignedBytes, group.MaxSignedBytes) + 1024

// SignedTopicConfig wires a SignedTopic to the node's tracker.
type SignedTopicConfig struct {
	// Offer considers a document received from a peer (signed.Tracker.
	// Offer): nil accepts it and lets it spread, an error wrapping
	// signed.ErrNotNewer ignores it quietly, any other drops it and
	// counts against the peer that sent it.
	Offer func(raw []byte) error
	// OfferFrom, when set, is called instead of Offer with the peer that
	// published the document (its author, which gossip's message
	// signatures vouch for; not the neighbour that relayed it), for
	// topics whose receiver bounds what one sender can make it keep. An
	// error wrapping signed.ErrNotKept is ignored quietly too.
	OfferFrom func(author string, raw []byte) error
	// Current is the signed document in force, nil if none: what this node
	// re-publishes.
	Current func() []byte
	// RepublishInterval defaults to DefaultRunStateRepublish.
	RepublishInterval time.Duration
}

// RunStateConfig wires the run-state topic to the node's tracker.
type RunStateConfig = SignedTopicConfig

// RunStateChannel is this node's membership of the run-state topic.
type RunStateChannel = SignedTopic

// SignedTopic is this node's membership of one signed-document topic.
type SignedTopic struct {
	h      *Host
	cfg    SignedTopicConfig
	name   string // for logs: "run state", "group g…"
	ps     *pubsub.PubSub
	topic  *pubsub.Topic
	sub    *pubsub.Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (h *Host) runStateTopic() string { return "/coral/runstate/" + h.cfg.ProtocolVersion }

// JoinRunState subscribes to the network's run-state topic.
func (h *Host) JoinRunState(cfg RunStateConfig) (*RunStateChannel, error) {
	return h.joinSignedTopic(h.runStateTopic(), "run state", cfg)
}

// JoinGroup subscribes to the topic of the site group with ID id
// (group.ID), where its manifests travel.
func (h *Host) JoinGroup(id string, cfg SignedTopicConfig) (*SignedTopic, error) {
	return h.joinSignedTopic("/coral/group/"+id, "group "+id, cfg)
}

// pubsub is the node's one gossipsub router, shared by its topics (a host
// can run only one).
func (h *Host) pubsub() (*pubsub.PubSub, error) {
	h.psOnce.Do(func() {
		h.ps, h.psErr = pubsub.NewGossipSub(h.ctx, h.host, pubsub.WithMaxMessageSize(maxSignedMessage),
			pubsub.WithGossipSubParams(gossipParams()))
	})
	return h.ps, h.psErr
}

// gossipHeartbeat is how often gossipsub mends its meshes and gossips the
// IDs of recent messages. Its default, 1 s, is for topics busy with
// messages; ours carry a signed document every few minutes, re-sent every
// minute and when a member joins, so a slower heartbeat only delays the
// repair of a mesh a peer left, the grafting of a member that subscribed
// after this node joined (publishing goes to the mesh: pubsub v0.19 does
// not flood its own messages by default), and the gossip that recovers a
// lost forward. Each beat wakes two goroutines of an otherwise idle node
// (issue 17).
const gossipHeartbeat = 5 * time.Second

func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.HeartbeatInterval = gossipHeartbeat
	return p
}

func (h *Host) joinSignedTopic(topic, name string, cfg SignedTopicConfig) (*SignedTopic, error) {
	if (cfg.Offer == nil && cfg.OfferFrom == nil) || cfg.Current == nil {
		return nil, fmt.Errorf("p2p: %s: Offer (or OfferFrom) and Current are required", name)
	}
	if cfg.RepublishInterval <= 0 {
		cfg.RepublishInterval = DefaultRunStateRepublish
	}
	ps, err := h.pubsub()
	if err != nil {
		return nil, fmt.Errorf("p2p: %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	c := &SignedTopic{h: h, cfg: cfg, name: name, ps: ps, cancel: cancel}
	fail := func(err error) (*SignedTopic, error) {
		cancel()
		ps.UnregisterTopicValidator(topic)
		return nil, fmt.Errorf("p2p: %s: %w", name, err)
	}
	if err := ps.RegisterTopicValidator(topic, c.validate); err != nil {
		return fail(err)
	}
	if c.topic, err = ps.Join(topic); err != nil {
		return fail(err)
	}
	if c.sub, err = c.topic.Subscribe(); err != nil {
		return fail(err)
	}
	events, err := c.topic.EventHandler()
	if err != nil {
		c.sub.Cancel()
		return fail(err)
	}
	c.wg.Add(2)
	go c.drain(ctx)
	go c.republish(ctx, events)
	return c, nil
}

// validate applies a peer's document before gossip passes it on; this
// node's own publications (already accepted) pass.
func (c *SignedTopic) validate(_ context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if from == c.h.host.ID() {
		return pubsub.ValidationAccept
	}
	var err error
	if c.cfg.OfferFrom != nil {
		err = c.cfg.OfferFrom(m.GetFrom().String(), m.Data)
	} else {
		err = c.cfg.Offer(m.Data)
	}
	switch {
	case err == nil:
		return pubsub.ValidationAccept // Offer logged it
	case errors.Is(err, signed.ErrNotNewer):
		return pubsub.ValidationIgnore
	case errors.Is(err, signed.ErrNotKept):
		c.h.log.Debug(c.name+": a document not kept", "from", from, "err", err)
		return pubsub.ValidationIgnore
	default:
		c.h.log.Warn(c.name+": refused a document", "from", from, "err", err)
		return pubsub.ValidationReject
	}
}

// drain reads the subscription; documents were applied in validate.
func (c *SignedTopic) drain(ctx context.Context) {
	defer c.wg.Done()
	for {
		if _, err := c.sub.Next(ctx); err != nil {
			return
		}
	}
}

// republish sends the document in force every RepublishInterval (with
// jitter, so members do not republish in step), and soon after a member
// joins the topic: gossip does not replay what it missed.
func (c *SignedTopic) republish(ctx context.Context, events *pubsub.TopicEventHandler) {
	defer c.wg.Done()
	joined := make(chan struct{}, 1)
	go func() {
		defer events.Cancel()
		for {
			ev, err := events.NextPeerEvent(ctx)
			if err != nil {
				return
			}
			if ev.Type == pubsub.PeerJoin {
				select {
				case joined <- struct{}{}:
				default:
				}
			}
		}
	}()
	timer := time.NewTimer(c.cfg.RepublishInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-joined:
			// Give the newcomer's side of the topic a moment to settle;
			// a message sent in the same instant can be lost.
			timer.Reset(newPeerDelay)
			continue
		case <-timer.C:
		}
		timer.Reset(c.cfg.RepublishInterval/2 + rand.N(c.cfg.RepublishInterval))
		if raw := c.cfg.Current(); raw != nil {
			if err := c.topic.Publish(ctx, raw); err != nil && ctx.Err() == nil {
				c.h.log.Debug(c.name+": republish failed", "err", err)
			}
		}
	}
}

// newPeerDelay is how soon after a member joins the topic the document in
// force is sent again.
const newPeerDelay = 2 * time.Second

// Publish sends a document (accepted by this node already) to the network.
func (c *SignedTopic) Publish(ctx context.Context, raw []byte) error {
	if err := c.topic.Publish(ctx, raw); err != nil {
		return fmt.Errorf("p2p: %s: publish: %w", c.name, err)
	}
	return nil
}

// Peers is how many members this node hears the topic from.
func (c *SignedTopic) Peers() int { return len(c.topic.ListPeers()) }

// Close leaves the topic. Call before the Host's Close.
func (c *SignedTopic) Close() error {
	c.cancel()
	c.sub.Cancel()
	c.wg.Wait()
	// The topic's name is free again once its validator is gone; the topic
	// itself goes with the PubSub (Close on it would only race the
	// subscription's asynchronous cancel).
	return c.ps.UnregisterTopicValidator(c.topic.String())
}
