package node

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/runstate"
	"github.com/coralcdn/coral/p2p"
	"github.com/google/renameio/v2"
	"github.com/multiformats/go-multiaddr"
)

// An invite code is one string that lets a new node join a network: the
// network secret, bootstrap addresses of a member, and the operator's key
// if the network has one. It is a secret: whoever holds it can join.
//
//	coral1:<base64url of JSON {"secret": hex, "bootstrap": [...], "operator": "ed25519:..."}>
const invitePrefix = "coral1:"

// maxInviteLen bounds an invite code (a few addresses fit many times over).
const maxInviteLen = 8 << 10

// joinedFile records in the data directory what `coral join` brought
// besides the secret: bootstrap addresses and the operator key.
const joinedFile = "joined.json"

// Invite is the content of an invite code.
type Invite struct {
	Secret    string   `json:"secret"`             // 64 hex digits
	Bootstrap []string `json:"bootstrap"`          // multiaddrs with /p2p/<id>
	Operator  string   `json:"operator,omitempty"` // runstate.FormatPublicKey
}

// Encode is the invite code's text.
func (inv Invite) Encode() string {
	b, _ := json.Marshal(inv)
	return invitePrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseInvite reads an invite code, refusing anything malformed with a
// reason a person can act on.
func ParseInvite(code string) (Invite, error) {
	var inv Invite
	code = strings.TrimSpace(code)
	if len(code) > maxInviteLen {
		return inv, fmt.Errorf("invite code: %d characters, more than %d", len(code), maxInviteLen)
	}
	rest, ok := strings.CutPrefix(code, invitePrefix)
	if !ok {
		return inv, errors.New(`invite code: want a code starting with "coral1:", as "coral invite" prints`)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return inv, errors.New("invite code: damaged (not base64url); copy it again, whole")
	}
	if err := json.Unmarshal(b, &inv); err != nil {
		return inv, errors.New("invite code: damaged (bad content); copy it again, whole")
	}
	return inv, inv.validate()
}

func (inv Invite) validate() error {
	if k, err := hex.DecodeString(inv.Secret); err != nil || len(k) != 32 {
		return errors.New("invite code: the network secret is not 32 bytes")
	}
	if len(inv.Bootstrap) == 0 {
		return errors.New("invite code: no bootstrap address; ask for a code from a running node")
	}
	for _, a := range inv.Bootstrap {
		m, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("invite code: bootstrap address %q: %v", a, err)
		}
		if _, err := m.ValueForProtocol(multiaddr.P_P2P); err != nil {
			return fmt.Errorf("invite code: bootstrap address %q lacks /p2p/<peer id>", a)
		}
	}
	if inv.Operator != "" {
		if _, err := runstate.ParsePublicKey(inv.Operator); err != nil {
			return fmt.Errorf("invite code: %v", err)
		}
	}
	return nil
}

// joined is what joinedFile holds.
type joined struct {
	Bootstrap []string `json:"bootstrap"`
	Operator  string   `json:"operator,omitempty"`
}

// Join makes the node of cfg a member of the invite's network: the secret
// goes into its secret file (a different one is kept as .old) and the
// bootstrap addresses and operator key into the data directory, where the
// node picks them up at its next start.
func Join(cfg config.Config, code string) (Invite, error) {
	inv, err := ParseInvite(code)
	if err != nil {
		return inv, err
	}
	if cfg, err = inRunDir(cfg); err != nil {
		return inv, err
	}
	key, _ := hex.DecodeString(inv.Secret)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return inv, fmt.Errorf("join: data dir: %w", err)
	}
	if _, err := p2p.ReplaceSecret(cfg.Path(cfg.P2P.SecretFile), key); err != nil {
		return inv, fmt.Errorf("join: %w", err)
	}
	b, _ := json.MarshalIndent(joined{Bootstrap: inv.Bootstrap, Operator: inv.Operator}, "", "  ")
	// Atomic (renameio): a join cut short leaves the old file, never half.
	if err := renameio.WriteFile(cfg.Path(joinedFile), append(b, '\n'), 0o600); err != nil {
		return inv, fmt.Errorf("join: %w", err)
	}
	// Run as root for a service's data dir (`sudo coral join`), the files
	// must still belong to the service's user.
	chownLike(cfg.DataDir, cfg.Path(cfg.P2P.SecretFile), cfg.Path(cfg.P2P.SecretFile)+".old", cfg.Path(joinedFile))
	return inv, nil
}

// readJoined is what `coral join` recorded; none is not an error.
func readJoined(cfg config.Config) (joined, error) {
	var j joined
	b, err := os.ReadFile(cfg.Path(joinedFile))
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return j, fmt.Errorf("node: %w", err)
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return j, fmt.Errorf("node: %s is damaged (%v): run coral join again", cfg.Path(joinedFile), err)
	}
	return j, nil
}

// withJoined adds what `coral join` recorded to the configured bootstrap.
func withJoined(configured []string, j joined) []string {
	out := slices.Clone(configured)
	for _, a := range j.Bootstrap {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// Invite is this running node's invite code: its network secret, the
// addresses members can dial it at, and the operator key it trusts.
func (n *Node) Invite() (string, error) {
	psk, err := p2p.LoadSecret(n.cfg.Path(n.cfg.P2P.SecretFile))
	if err != nil {
		return "", err
	}
	inv := Invite{Secret: hex.EncodeToString(psk), Bootstrap: n.dialableAddrs()}
	if n.operatorKey != nil {
		inv.Operator = runstate.FormatPublicKey(n.operatorKey)
	}
	return inv.Encode(), nil
}

// dialableAddrs are the node's p2p addresses with its peer ID, without
// unspecified ones (0.0.0.0 means nothing to another machine).
func (n *Node) dialableAddrs() []string {
	id := n.host.ID().String()
	var out []string
	for _, a := range n.host.Status().Addrs {
		if strings.Contains(a, "/ip4/0.0.0.0/") || strings.Contains(a, "/ip6/::/") {
			continue
		}
		if !strings.HasSuffix(a, "/p2p/"+id) {
			a += "/p2p/" + id
		}
		out = append(out, a)
	}
	return out
}

// OfflineInvite is the invite code of the node of cfg while it is not
// running, from its data directory: its secret and identity, and its listen
// addresses with an unspecified IP replaced by this machine's addresses.
func OfflineInvite(cfg config.Config) (string, error) {
	cfg, err := inRunDir(cfg)
	if err != nil {
		return "", err
	}
	psk, err := p2p.LoadSecret(cfg.Path(cfg.P2P.SecretFile))
	if err != nil {
		return "", fmt.Errorf("%w (start the node once to create it)", err)
	}
	id, err := p2p.StoredPeerID(cfg.DataDir)
	if err != nil {
		return "", fmt.Errorf("%w (start the node once to create it)", err)
	}
	inv := Invite{Secret: hex.EncodeToString(psk)}
	for _, l := range cfg.P2P.Listen {
		for _, a := range expandUnspecified(l) {
			inv.Bootstrap = append(inv.Bootstrap, a+"/p2p/"+id)
		}
	}
	if j, err := readJoined(cfg); err == nil && cfg.Operator.Key == "" {
		inv.Operator = j.Operator
	} else {
		inv.Operator = cfg.Operator.Key
	}
	return inv.Encode(), nil
}

// expandUnspecified turns /ip4/0.0.0.0/tcp/P into one address per IPv4
// address of this machine (loopback last, for nodes on the same machine).
func expandUnspecified(listen string) []string {
	rest, ok := strings.CutPrefix(listen, "/ip4/0.0.0.0/")
	if !ok {
		return []string{listen}
	}
	var out, loop []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		s := "/ip4/" + ipn.IP.String() + "/" + rest
		if ipn.IP.IsLoopback() {
			loop = append(loop, s)
		} else {
			out = append(out, s)
		}
	}
	return append(out, loop...)
}

// chownLike gives files the owner of dir, where this process may (root).
func chownLike(dir string, files ...string) {
	fi, err := os.Stat(dir)
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return
	}
	for _, f := range files {
		_ = os.Lchown(f, int(st.Uid), int(st.Gid))
	}
}

// inRunDir is cfg with the data directory the node runs in, as New picks
// it: the one chosen through the settings (cache.data_dir) when there is
// one. The offline commands (coral join, coral invite) must write and read
// the secret there, or a node whose data moved would never see a join.
func inRunDir(cfg config.Config) (config.Config, error) {
	moved, err := config.SavedDataDir(cfg.Path(config.SettingsFile))
	if err != nil {
		return cfg, fmt.Errorf("node: %w", err)
	}
	if moved != "" {
		cfg.DataDir = moved
	}
	return cfg, nil
}
