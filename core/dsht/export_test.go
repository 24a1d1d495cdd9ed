package dsht

// NearRoots is the list a near put+get at level would walk, for tests.
func (n *Node) NearRoots(level int, key ID) []NodeInfo {
	var out []NodeInfo
	n.locked(func() { out = n.nearRoots(level, kadOf(key)) })
	return out
}

// ForgetPeer drops id from this node's peer cache, as if it had never
// heard of it: tests give two nodes different views of who is closest.
func (n *Node) ForgetPeer(id ID) {
	n.locked(func() { delete(n.peers.m, id) })
}
