package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/p2p"
	"github.com/coralcdn/coral/test/cluster"
	"github.com/coralcdn/coral/test/testkit"
)

// A real `coral serve` process follows the operator's secret rotation: at
// the announced time it writes the new secret and restarts itself (libp2p
// reads the secret at start only), and comes back serving on the new one.
func TestServeRestartsForSecretRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a coral process; skipped with -short")
	}
	bin, err := cluster.BuildBinary(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "operator.key")
	code, pub, stderr := runCmd(t, "operator", "keygen", "-out", keyFile)
	if code != 0 {
		t.Fatal(stderr)
	}
	cfgPath, cfg := writeConfig(t, fmt.Sprintf("[operator]\nkey = %q\n", strings.TrimSpace(pub)))
	var out cluster.LogBuffer
	cmd := exec.Command(bin, "serve", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("coral output:\n%s", out.String())
		}
	})
	poll(t, exited, "the node to answer", func() bool { return statusOK(cfg) })
	secretFile := cfg.Path(cfg.P2P.SecretFile)
	old, _ := p2p.LoadSecret(secretFile)

	newKey := make([]byte, 32)
	rand.Read(newKey)
	doc := filepath.Join(t.TempDir(), "rotate.json")
	at := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	os.WriteFile(doc, []byte(fmt.Sprintf(`{"serial": 1, "rotation": {"secret": %q, "from": %q}}`, hex.EncodeToString(newKey), at)), 0o644)
	if code, o, e := runCmd(t, "operator", "publish", "-key", keyFile, "-config", cfgPath, doc); code != 0 {
		t.Fatalf("publish: %s %s", o, e)
	}
	poll(t, exited, "the restart", func() bool {
		return strings.Contains(out.String(), "coral: restarting: the network secret rotates now")
	})
	poll(t, exited, "the node to answer after the restart", func() bool { return statusOK(cfg) })
	if cur, _ := p2p.LoadSecret(secretFile); !bytes.Equal(cur, newKey) {
		t.Error("the node does not hold the new secret")
	}
	if kept, _ := p2p.LoadSecret(secretFile + ".old"); !bytes.Equal(kept, old) {
		t.Error("the old secret was not kept")
	}
	// The restarted node's control API can answer a moment before its
	// banner reaches the output: wait for the banner, then count.
	poll(t, exited, "the restarted node's banner", func() bool { return strings.Count(out.String(), "node up") >= 2 })
	if n := strings.Count(out.String(), "node up"); n != 2 {
		t.Errorf("node started %d times, want 2", n)
	}
}

func statusOK(cfg config.Config) bool {
	resp, err := http.Get("http://" + cfg.Control.Listen + "/api/status")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// poll waits for cond, failing at once if the process exits.
func poll(t *testing.T, exited <-chan error, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 60*time.Second, what, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("coral exited while waiting for %s: %v", what, err)
		default:
		}
		return cond()
	})
}
