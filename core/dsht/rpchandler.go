package dsht

import "context"

// Handler is the receiving side of Network: a transport hands it each RPC
// another node sent (p2p's /coral/dsht streams, the simulator's messages).
// *Node implements it; wrappers (a node's admission gate) may stand
// between.
type Handler interface {
	HandleRPC(ctx context.Context, from NodeInfo, req *Request) (*Response, error)
}

var _ Handler = (*Node)(nil)
