package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A site owner's path through the commands: init makes the key and a
// signed first manifest and prints the [[groups]] lines; a node with those
// lines holds the group; sign -publish puts a new version in force there;
// bad input gets a clear error.
func TestGroupCommands(t *testing.T) {
	dir := t.TempDir()
	key, manifest, signed := filepath.Join(dir, "group.key"), filepath.Join(dir, "group.json"), filepath.Join(dir, "group.signed")
	peer := "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
	code, out, stderr := runCmd(t, "group", "init", "-name", "small blogs", "-key", key, "-out", manifest, "-signed", signed,
		"-site", "www.alice.org=http://origin.alice.org,2", "-site", "blog.bob.net=https://bob.example.net:8443",
		"-member", peer+"=20,www.alice.org")
	if code != 0 || !strings.Contains(out, "[[groups]]") || !strings.Contains(out, `key = "ed25519:`) {
		t.Fatalf("init: %d %q %s", code, out, stderr)
	}
	if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	cfgPath, cfg := writeConfig(t, out)
	n := startTestNode(t, cfg)
	st, _ := n.Status(context.Background())
	if len(st.Groups) != 1 || st.Groups[0].Serial != 1 || len(st.Groups[0].Sites) != 2 || st.Groups[0].Sites[0].Weight != 2 {
		t.Fatalf("node's groups: %+v", st.Groups)
	}
	b, _ := os.ReadFile(manifest)
	os.WriteFile(manifest, []byte(strings.Replace(string(b), `"serial": 1`, `"serial": 2`, 1)), 0o644)
	code, out, stderr = runCmd(t, "group", "sign", "-key", key, "-out", signed, "-publish", "-config", cfgPath, manifest)
	if code != 0 || !strings.Contains(out, "serial 2") || !strings.Contains(out, "in force on this node") {
		t.Fatalf("sign: %d %q %s", code, out, stderr)
	}
	if st, _ := n.Status(context.Background()); st.Groups[0].Serial != 2 {
		t.Errorf("serial in force %d", st.Groups[0].Serial)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"name":"x","serial":3,"sites":[{"host":"www.a.org","origin":"http://www.a.org","weight":1}],"members":[]}`), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"group"}, 2, "want init or sign"},
		{[]string{"group", "init", "-key", key, "-name", "x", "-site", "www.a.org=http://o.a.org"}, 1, "already exists and is never overwritten"},
		{[]string{"group", "init", "-key", filepath.Join(dir, "k2"), "-name", "x"}, 2, "at least one -site HOST=ORIGIN are required"},
		{[]string{"group", "init", "-key", filepath.Join(dir, "k2"), "-site", "www.a.org=http://o.a.org"}, 2, "-name and at least one -site"},
		{[]string{"group", "init", "-key", filepath.Join(dir, "k3"), "-name", "x", "-site", "www.a.org"}, 1, "HOST=ORIGIN"},
		{[]string{"group", "init", "-key", filepath.Join(dir, "k4"), "-name", "x", "-site", "www.a.org=http://o.a.org", "-member", "nope"}, 1, "PEER_ID=MBPS"},
		{[]string{"group", "sign", "-key", key, "-out", filepath.Join(dir, "x.signed"), bad}, 1, "leads back to Coral"},
		{[]string{"group", "sign", "-key", key, "-publish", "-config", cfgPath, "-out", signed, manifest}, 1, "not newer"},
		{[]string{"group", "sign", "-key", filepath.Join(dir, "none.key"), manifest}, 1, "none.key"},
	} {
		if code, _, stderr := runCmd(t, tc.args...); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: %d %q, want %d %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "k2")); err == nil {
		t.Error("init wrote a key for a manifest it refused")
	}
}
