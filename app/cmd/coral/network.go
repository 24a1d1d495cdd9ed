package main

// Commands for joining and running a network: invite, join, operator.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/control"
	"github.com/coralcdn/coral/app/node"
	"github.com/coralcdn/coral/core/runstate"
)

// invite prints this node's invite code: from the running node's control
// API (with the token), else from its data directory.
func invite(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral invite", stdout, stderr)
	cfgPath := fs.String("config", "", "the node's config file (default: built-in defaults)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "coral invite: %v\n", err)
		return 1
	}
	body, apiErr := controlCall(cfg, "GET", "/api/invite", nil)
	if apiErr == nil {
		fmt.Fprint(stdout, string(body))
		return 0
	}
	code, err := node.OfflineInvite(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "coral invite: the node does not answer (%v), and its data dir cannot say: %v\n", apiErr, err)
		return 1
	}
	fmt.Fprintln(stdout, code)
	return 0
}

// join makes this node a member of the invite code's network.
func join(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral join", stdout, stderr)
	cfgPath := fs.String("config", "", "the node's config file (default: built-in defaults)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "coral join: want exactly one invite code (coral invite prints one on a member)")
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "coral join: %v\n", err)
		return 1
	}
	inv, err := node.Join(cfg, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "coral join: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "coral join: network secret in %s, %d bootstrap address(es) in %s\n",
		cfg.RunPath(cfg.P2P.SecretFile), len(inv.Bootstrap), cfg.RunPath(""))
	if inv.Operator != "" {
		fmt.Fprintf(stdout, "coral join: following the operator key %s\n", inv.Operator)
	}
	fmt.Fprintln(stdout, "coral join: restart the node to join (sudo systemctl restart coral, or quit and start coral)")
	return 0
}

// operator runs the network operator's sub-commands.
func operator(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "coral operator: want keygen or publish\n\n%s", usage)
		return 2
	}
	switch args[0] {
	case "keygen":
		return operatorKeygen(args[1:], stdout, stderr)
	case "publish":
		return operatorPublish(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "coral operator: unknown command %q (want keygen or publish)\n", args[0])
		return 2
	}
}

func operatorKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral operator keygen", stdout, stderr)
	out := fs.String("out", "operator.key", "where to write the private key (mode 0600; never overwritten)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	pub, err := writeNewKey(*out)
	if err != nil {
		fmt.Fprintf(stderr, "coral operator keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "coral operator keygen: private key in %s: keep it offline and backed up\n", *out)
	fmt.Fprintln(stdout, runstate.FormatPublicKey(pub))
	return 0
}

// writeNewKey makes an Ed25519 key and writes its private half to path
// (PEM, mode 0600, never overwriting a file).
func writeNewKey(path string) (ed25519.PublicKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// A key is never overwritten: it may be the only copy of one a
		// network or group already follows.
		return nil, fmt.Errorf("%s already exists and is never overwritten (it may be a key in use): choose another file with -out or -key", path)
	}
	if err != nil {
		return nil, err
	}
	werr := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return nil, err
	}
	return pub, nil
}

func loadOperatorKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key (coral operator keygen writes one)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ed25519 key", path)
	}
	return priv, nil
}

// operatorPublish signs a run-state document and hands it to a local
// node, which applies it and sends it into the network.
func operatorPublish(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral operator publish", stdout, stderr)
	keyPath := fs.String("key", "operator.key", "the operator's private key")
	cfgPath := fs.String("config", "", "config of the local node that sends it (default: built-in defaults)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "coral operator publish: want exactly one document file (JSON; see README, \"Run a network\")")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "coral operator publish: %v\n", err); return 1 }
	priv, err := loadOperatorKey(*keyPath)
	if err != nil {
		return fail(err)
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	doc, err := runstate.ParseDocument(b)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", fs.Arg(0), err))
	}
	if doc.Issued.IsZero() {
		doc.Issued = time.Now().UTC().Truncate(time.Second)
	}
	signed, err := runstate.Sign(doc, priv)
	if err != nil {
		return fail(err)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(err)
	}
	body, err := controlCall(cfg, "POST", "/api/runstate", signed)
	if err != nil {
		return fail(err)
	}
	var resp struct {
		RunState control.RunState `json:"run_state"`
		Peers    int              `json:"sent_to_peers"`
	}
	json.Unmarshal(body, &resp)
	fmt.Fprintf(stdout, "coral operator publish: serial %d in force on this node, sent to %d peer(s)\n", doc.Serial, resp.Peers)
	if resp.RunState.Why != "" {
		fmt.Fprintf(stdout, "coral operator publish: here: %s\n", resp.RunState.Why)
	}
	return 0
}

// controlCall sends a request with the node's control token to its
// control listener and returns the body of a 2xx answer.
func controlCall(cfg config.Config, method, path string, body []byte) ([]byte, error) {
	token, err := os.ReadFile(cfg.RunPath(cfg.Control.TokenFile))
	if err != nil {
		return nil, fmt.Errorf("control token: %w (is the node's data dir %s, and may you read it?)", err, cfg.DataDir)
	}
	addr := cfg.Control.Listen
	if strings.HasPrefix(addr, ":") || strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1:" + addr[strings.LastIndex(addr, ":")+1:]
	}
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the node's control listener %s: %w (is the node running?)", addr, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("the node refused: %s", strings.TrimSpace(string(out)))
	}
	return out, nil
}
