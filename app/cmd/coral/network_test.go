package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/node"
)

// writeConfig writes a config for a node on loopback ephemeral ports
// (control on a fixed free port, as the commands find it from the file).
func writeConfig(t *testing.T, extra string) (string, config.Config) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "coral.toml")
	text := fmt.Sprintf(`data_dir = "data"
[http]
listen = "127.0.0.1:0"
[control]
listen = "127.0.0.1:%d"
[dns]
listen = ""
[p2p]
listen = ["/ip4/127.0.0.1/tcp/0"]
mdns = false
nat_port_map = false
%s`, freePort(t), extra)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func startTestNode(t *testing.T, cfg config.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg, node.Options{Version: "0.1.0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return n
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// The operator's whole path through the command: keygen, a node that
// trusts the key, publish a document, the node pauses its proxy; the node
// then hands out an invite that another node joins with.
func TestOperatorInviteJoinCommands(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "operator.key")
	code, pub, stderr := runCmd(t, "operator", "keygen", "-out", keyFile)
	if code != 0 || !strings.HasPrefix(pub, "ed25519:") {
		t.Fatalf("keygen: %d %q %s", code, pub, stderr)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if code, _, stderr := runCmd(t, "operator", "keygen", "-out", keyFile); code != 1 || !strings.Contains(stderr, "already exists and is never overwritten") {
		t.Errorf("keygen over an existing key: %d %s", code, stderr)
	}

	cfgPath, cfg := writeConfig(t, fmt.Sprintf("[operator]\nkey = %q\n", strings.TrimSpace(pub)))
	n := startTestNode(t, cfg)
	doc := filepath.Join(dir, "pause.json")
	os.WriteFile(doc, []byte(`{"serial": 1, "paused": ["proxy"], "message": "paused for the test"}`), 0o644)
	code, out, stderr := runCmd(t, "operator", "publish", "-key", keyFile, "-config", cfgPath, doc)
	if code != 0 || !strings.Contains(out, "serial 1 in force") {
		t.Fatalf("publish: %d %q %s", code, out, stderr)
	}
	if code, _, stderr := runCmd(t, "operator", "publish", "-key", keyFile, "-config", cfgPath, doc); code != 1 || !strings.Contains(stderr, "not newer") {
		t.Errorf("publishing the same serial again: %d %s", code, stderr)
	}
	os.WriteFile(doc, []byte(`{"serial": 2, "paused": ["cache"]}`), 0o644)
	if code, _, stderr := runCmd(t, "operator", "publish", "-key", keyFile, "-config", cfgPath, doc); code != 1 || !strings.Contains(stderr, `unknown component "cache"`) {
		t.Errorf("malformed document: %d %s", code, stderr)
	}
	st, _ := n.Status(context.Background())
	if st.RunState == nil || st.RunState.Serving["proxy"] || st.RunState.Message != "paused for the test" {
		t.Errorf("node's run state: %+v", st.RunState)
	}

	code, invite, stderr := runCmd(t, "invite", "-config", cfgPath)
	if code != 0 || !strings.HasPrefix(invite, "coral1:") {
		t.Fatalf("invite: %d %q %s", code, invite, stderr)
	}
	joinPath, joinCfg := writeConfig(t, "")
	code, out, stderr = runCmd(t, "join", "-config", joinPath, strings.TrimSpace(invite))
	if code != 0 || !strings.Contains(out, "restart the node") || !strings.Contains(out, strings.TrimSpace(pub)) {
		t.Fatalf("join: %d %q %s", code, out, stderr)
	}
	if _, err := os.Stat(joinCfg.Path("network.key")); err != nil {
		t.Errorf("joined node has no secret: %v", err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"join", "-config", joinPath, "coral1:garbage"}, 1, "damaged"},
		{[]string{"join", "-config", joinPath}, 2, "want exactly one invite code"},
		{[]string{"operator"}, 2, "want keygen or publish"},
		{[]string{"operator", "publish", "-key", filepath.Join(dir, "none.key"), doc}, 1, "none.key"},
		{[]string{"invite", "-config", joinPath}, 1, "does not answer"},
	} {
		if code, _, stderr := runCmd(t, tc.args...); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: %d %q, want %d %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
