package dsht

import (
	"errors"
	"fmt"
)

// Op names a DSHT RPC.
type Op uint8

// The RPCs. Probe is the forward phase of a put: it reports whether the node
// is full and loaded for the key and returns closer nodes, without storing.
const (
	OpPing      Op = 1
	OpFindNode  Op = 2
	OpFindValue Op = 3
	OpProbe     Op = 4
	OpStore     Op = 5
)

func (o Op) String() string {
	switch o {
	case OpPing:
		return "ping"
	case OpFindNode:
		return "find_node"
	case OpFindValue:
		return "find_value"
	case OpProbe:
		return "probe"
	case OpStore:
		return "store"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Code is the outcome of an RPC that was well-formed. Malformed requests are
// answered with an error instead (the transport resets the stream).
type Code uint8

const (
	// CodeOK: the request was served.
	CodeOK Code = 0
	// CodeRefused: a store was refused because the node is full and loaded
	// for the key, or out of room. The putter pops its stack.
	CodeRefused Code = 1
	// CodeWrongCluster: the node is not in the cluster the request named.
	CodeWrongCluster Code = 2
	// CodeUnreachable: a relay could not reach the node it was asked to
	// forward to.
	CodeUnreachable Code = 3
	// CodeBusy: a relay has too many forwards in flight.
	CodeBusy Code = 4
)

// Request is one DSHT RPC. It is plain data so that any transport can encode
// it (package p2p uses CBOR with these integer keys).
//
// Target is a position in the routing space, which is SHA-256 of a node ID
// or of a key ID (see kadOf): every node derives the same position, so the
// wire carries it ready-made and random refresh targets need no preimage.
type Request struct {
	Op    Op    `cbor:"1,keyasint"`
	Level uint8 `cbor:"2,keyasint"`
	// Cluster is the level-Level cluster the sender expects the receiver to be
	// in; zero means "whatever yours is" (only for ping and find_node, used to
	// sample and join other clusters).
	Cluster ID `cbor:"3,keyasint"`
	Target  ID `cbor:"4,keyasint"`
	// Value and TTLMs: the value a store carries and its lifetime; a probe
	// carries TTLMs so the receiver can say whether it is full for it.
	Value []byte `cbor:"5,keyasint,omitempty"`
	TTLMs int64  `cbor:"6,keyasint,omitempty"`
	// WantValues asks a probe or store to return the values already held
	// (the "get" half of put+get).
	WantValues bool `cbor:"7,keyasint,omitempty"`
	// ForwardTo asks the receiver to relay this request to another node and
	// return that node's response (indirect routing around non-transitive
	// links). The relay uses its own address for the node, never this one's.
	ForwardTo *NodeInfo `cbor:"8,keyasint,omitempty"`
	// Clusters are the sender's cluster memberships, so clusters can merge.
	Clusters []ClusterInfo `cbor:"9,keyasint,omitempty"`
}

// Response answers a Request.
type Response struct {
	Code     Code          `cbor:"1,keyasint"`
	Contacts []Contact     `cbor:"2,keyasint,omitempty"`
	Values   []WireValue   `cbor:"3,keyasint,omitempty"`
	Full     bool          `cbor:"4,keyasint,omitempty"`
	Loaded   bool          `cbor:"5,keyasint,omitempty"`
	Clusters []ClusterInfo `cbor:"6,keyasint,omitempty"`
}

// Contact is a node a responder knows, tagged with how long ago the responder
// last heard from it directly (MIT Chord's liveness tag): a receiver that saw
// the node fail more recently than that ignores the claim. AgeMs < 0 means
// the responder never heard from it directly.
type Contact struct {
	Node  NodeInfo `cbor:"1,keyasint"`
	AgeMs int64    `cbor:"2,keyasint"`
}

// WireValue is a stored value with its remaining lifetime (relative, so
// clocks need not agree).
type WireValue struct {
	Data  []byte `cbor:"1,keyasint"`
	TTLMs int64  `cbor:"2,keyasint"`
}

// ClusterInfo is one of a node's cluster memberships with its size estimate.
type ClusterInfo struct {
	Level uint8 `cbor:"1,keyasint"`
	ID    ID    `cbor:"2,keyasint"`
	Size  int64 `cbor:"3,keyasint"`
}

// Hard limits on anything a peer sends, whatever the local configuration.
const (
	MaxLevels       = 8
	MaxAddrLen      = 512
	MaxWireValue    = 64 << 10
	MaxWireContacts = 64
	MaxWireValues   = 64
	MaxWireTTL      = 7 * 24 * 3600 * 1000 // ms
)

// ErrBadMessage is wrapped by every validation failure.
var ErrBadMessage = errors.New("dsht: bad message")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

func validNodeInfo(ni NodeInfo) error {
	if ni.ID == (ID{}) {
		return badf("zero node ID")
	}
	if len(ni.Addr) > MaxAddrLen {
		return badf("address of %d bytes", len(ni.Addr))
	}
	return nil
}

// validClusters checks claims; claims for levels this node does not have
// are allowed (and ignored), so nodes with fewer levels can still talk.
func validClusters(cs []ClusterInfo) error {
	if len(cs) > MaxLevels {
		return badf("%d cluster claims", len(cs))
	}
	for _, c := range cs {
		if int(c.Level) >= MaxLevels || c.Level == 0 {
			return badf("cluster level %d", c.Level)
		}
		if c.Size < 0 {
			return badf("negative cluster size")
		}
	}
	return nil
}

// validateRequest checks a request against the wire limits and this node's
// configuration; anything it accepts the handler can serve without panicking.
func validateRequest(req *Request, levels int, maxValue int, maxTTLMs int64) error {
	if req == nil {
		return badf("nil request")
	}
	if int(req.Level) >= levels {
		return badf("level %d of %d", req.Level, levels)
	}
	if err := validClusters(req.Clusters); err != nil {
		return err
	}
	if req.ForwardTo != nil {
		if err := validNodeInfo(*req.ForwardTo); err != nil {
			return fmt.Errorf("forward: %w", err)
		}
	}
	needCluster := func() error {
		if req.Level > 0 && req.Cluster == (ID{}) {
			return badf("%v at level %d without a cluster", req.Op, req.Level)
		}
		return nil
	}
	switch req.Op {
	case OpPing, OpFindNode:
		if len(req.Value) != 0 {
			return badf("%v with a value", req.Op)
		}
	case OpFindValue:
		if len(req.Value) != 0 {
			return badf("find_value with a value")
		}
		return needCluster()
	case OpProbe:
		if req.TTLMs <= 0 || req.TTLMs > maxTTLMs {
			return badf("probe ttl %dms", req.TTLMs)
		}
		return needCluster()
	case OpStore:
		if len(req.Value) == 0 || len(req.Value) > maxValue {
			return badf("store value of %d bytes (limit %d)", len(req.Value), maxValue)
		}
		if req.TTLMs <= 0 || req.TTLMs > maxTTLMs {
			return badf("store ttl %dms", req.TTLMs)
		}
		return needCluster()
	default:
		return badf("unknown op %d", uint8(req.Op))
	}
	return nil
}

// validateResponse checks what a peer answered; a bad answer counts as a
// failed RPC.
func validateResponse(resp *Response) error {
	if resp == nil {
		return badf("nil response")
	}
	if resp.Code > CodeBusy {
		return badf("unknown code %d", resp.Code)
	}
	if len(resp.Contacts) > MaxWireContacts {
		return badf("%d contacts", len(resp.Contacts))
	}
	for _, c := range resp.Contacts {
		if err := validNodeInfo(c.Node); err != nil {
			return fmt.Errorf("contact: %w", err)
		}
	}
	if len(resp.Values) > MaxWireValues {
		return badf("%d values", len(resp.Values))
	}
	for _, v := range resp.Values {
		if len(v.Data) == 0 || len(v.Data) > MaxWireValue {
			return badf("value of %d bytes", len(v.Data))
		}
		if v.TTLMs <= 0 || v.TTLMs > MaxWireTTL {
			return badf("value ttl %dms", v.TTLMs)
		}
	}
	return validClusters(resp.Clusters)
}
