package p2p

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// streamCounts counts stream writes and reads by protocol, as the swarm reports
// them to the bandwidth reporter (recvClock): a small RPC message is one
// write, so writes approximate messages sent. It tells which protocol keeps
// an idle node busy; p2p/internal/memfig prints it per second (traffic.go
// counts bytes, for the volunteer's budget). Every stream read and write
// passes here, so a known protocol costs a read lock and an
// atomic add.
type streamCounts struct {
	mu sync.RWMutex
	by map[protocol.ID]*[2]atomic.Uint64 // [0] writes, [1] reads
}

func newStreamCounts() *streamCounts { return &streamCounts{by: map[protocol.ID]*[2]atomic.Uint64{}} }

// wrote and read count one stream write or read; a nil streamCounts counts
// nothing.
func (t *streamCounts) wrote(p protocol.ID) { t.add(p, 0) }
func (t *streamCounts) read(p protocol.ID)  { t.add(p, 1) }

func (t *streamCounts) add(p protocol.ID, i int) {
	if t == nil {
		return
	}
	if p == "" {
		p = "(negotiating)"
	}
	t.mu.RLock()
	c := t.by[p]
	t.mu.RUnlock()
	if c == nil {
		t.mu.Lock()
		if c = t.by[p]; c == nil {
			c = new([2]atomic.Uint64)
			t.by[p] = c
		}
		t.mu.Unlock()
	}
	c[i].Add(1)
}

// ProtocolStreams is the stream writes and reads of one protocol since the
// host started.
type ProtocolStreams struct {
	Protocol      string
	Writes, Reads uint64
}

// StreamCounts returns the host's stream writes and reads by protocol since it
// started, ordered by protocol.
func (h *Host) StreamCounts() []ProtocolStreams {
	t := h.links.recv.tally
	if t == nil {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]ProtocolStreams, 0, len(t.by))
	for p, c := range t.by {
		out = append(out, ProtocolStreams{Protocol: string(p), Writes: c[0].Load(), Reads: c[1].Load()})
	}
	slices.SortFunc(out, func(a, b ProtocolStreams) int { return strings.Compare(a.Protocol, b.Protocol) })
	return out
}
