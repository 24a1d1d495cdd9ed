// Package cluster starts real `coral serve` processes on loopback for
// multi-node tests and benchmarks: it writes each node's config, shares one
// network secret, joins every node to the first, waits until they have found
// each other, and always cleans up (children die with the parent process).
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coralcdn/coral/app/control"
)

// Options describe the cluster.
type Options struct {
	Nodes  int
	Binary string // path to bin/coral
	Dir    string // where configs and data go (a temp dir)
	// Extra is appended to every node's config (TOML), e.g. cache settings.
	Extra func(i int) string
	// HTTP is the body of node i's [http] table (default
	// `listen = "127.0.0.1:0"`): TOML cannot reopen a table in Extra. Tests
	// give each proxy its own loopback address (127.0.0.N) to tell them apart
	// in DNS answers.
	HTTP func(i int) string
	// IP is node i's loopback address for libp2p (default 127.0.0.1):
	// benchmarks that plant latency between address ranges
	// ([p2p] emulate_rtt) put each region on its own 127.0.R.0/24.
	IP func(i int) string
	// MinPeers is how many connected peers each node must report before Start
	// returns (default: min(Nodes-1, 3)).
	MinPeers int
	// Log receives the nodes' output (nil discards it).
	Log io.Writer
}

// Node is one running coral process of the cluster.
type Node struct {
	*Process
	Index  int
	PeerID string
	P2P    []string
	Config string
}

// Cluster is a set of running nodes.
type Cluster struct {
	Nodes []*Node
	opts  Options
	mu    sync.Mutex
}

// Start launches the nodes and waits until each reports MinPeers connected
// peers, or ctx ends. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Nodes < 1 {
		return nil, errors.New("cluster: need at least one node")
	}
	if opts.MinPeers == 0 {
		opts.MinPeers = min(opts.Nodes-1, 3)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	c := &Cluster{opts: opts}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	secret := filepath.Join(opts.Dir, "network.key")
	if err := WriteSecret(secret); err != nil {
		return nil, err
	}
	var bootstrap []string
	for i := 0; i < opts.Nodes; i++ {
		n, err := c.startNode(ctx, i, secret, bootstrap)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			st, err := n.waitStatus(ctx, func(st control.Status) bool { return st.P2P != nil && len(st.P2P.Addrs) > 0 })
			if err != nil {
				return nil, err
			}
			for _, a := range st.P2P.Addrs {
				if strings.Contains(a, "/"+c.ip(0)+"/") {
					bootstrap = append(bootstrap, a+"/p2p/"+st.P2P.PeerID)
				}
			}
		}
	}
	for _, n := range c.Nodes {
		st, err := n.waitStatus(ctx, func(st control.Status) bool {
			return st.P2P != nil && st.P2P.ConnectedPeers >= opts.MinPeers
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: node %d did not find its peers: %w", n.Index, err)
		}
		n.PeerID, n.P2P = st.P2P.PeerID, st.P2P.Addrs
	}
	return c, nil
}

// ip is node i's libp2p address.
func (c *Cluster) ip(i int) string {
	if c.opts.IP == nil {
		return "127.0.0.1"
	}
	return c.opts.IP(i)
}

// WriteSecret writes a new random network secret in libp2p's PSK v1 format.
func WriteSecret(path string) error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	body := "/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(raw) + "\n"
	return os.WriteFile(path, []byte(body), 0o600)
}

func (c *Cluster) startNode(ctx context.Context, i int, secret string, bootstrap []string) (*Node, error) {
	dir := filepath.Join(c.opts.Dir, fmt.Sprintf("node%02d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\n", filepath.Join(dir, "data"))
	httpTable := `listen = "127.0.0.1:0"`
	if c.opts.HTTP != nil {
		httpTable = c.opts.HTTP(i)
	}
	fmt.Fprintf(&b, "[http]\n%s\n[control]\nlisten = \"127.0.0.1:0\"\n[dns]\nlisten = \"127.0.0.1:0\"\n", httpTable)
	fmt.Fprintf(&b, "[p2p]\nlisten = [\"/ip4/%s/tcp/0\"]\nsecret_file = %q\nmdns = false\nnat_port_map = false\nreachability = \"public\"\n", c.ip(i), secret)
	fmt.Fprintf(&b, "bootstrap = [%s]\n", quoteList(bootstrap))
	if c.opts.Extra != nil {
		b.WriteString(c.opts.Extra(i))
	}
	cfgPath := filepath.Join(dir, "coral.toml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(c.opts.Binary, "serve", "-config", cfgPath)
	proc, err := Launch(ctx, cmd, c.opts.Log, fmt.Sprintf("node%02d: ", i))
	if err != nil {
		return nil, err
	}
	n := &Node{Process: proc, Index: i, Config: cfgPath}
	c.mu.Lock()
	c.Nodes = append(c.Nodes, n)
	c.mu.Unlock()
	return n, nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// waitStatus polls the node's status until ok holds or ctx ends.
func (n *Node) waitStatus(ctx context.Context, ok func(control.Status) bool) (control.Status, error) {
	st, err := n.WaitStatus(ctx, ok)
	if err != nil {
		return st, fmt.Errorf("node %d: %w", n.Index, err)
	}
	return st, nil
}

// Stop ends every node: SIGTERM, then SIGKILL after a grace period.
func (c *Cluster) Stop() {
	c.mu.Lock()
	nodes := append([]*Node(nil), c.Nodes...)
	c.mu.Unlock()
	for _, n := range nodes {
		_ = syscall.Kill(-n.Pid(), syscall.SIGTERM)
	}
	grace := time.After(10 * time.Second)
	for _, n := range nodes {
		select {
		case <-n.Done():
		case <-grace:
			n.Kill()
		}
	}
}

type linePrefixer struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	buf    []byte
}

func prefixWriter(w io.Writer, prefix string) io.Writer { return &linePrefixer{w: w, prefix: prefix} }

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
