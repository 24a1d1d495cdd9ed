package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/group"
)

// A joined group's key file that a crash or a full disk left empty or
// half-written does not stop the node: it starts, serves, keeps its other
// groups, and says in the log which file is damaged and what to do.
func TestDamagedJoinedGroupKeyFileStillStarts(t *testing.T) {
	pub, _ := operatorKeys(t)
	good := group.FormatPublicKey(pub)
	cases := []struct{ name, content string }{
		{"empty", ""},
		{"half", good[:len(good)/2]},
		{"garbage", "\x00\xff\x13not a key\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			dir := cfg.Path(groupsDir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, group.ID(pub)+".key"), []byte(good+"\n"), 0o600)
			pub2, _ := operatorKeys(t)
			damaged := filepath.Join(dir, group.ID(pub2)+".key")
			os.WriteFile(damaged, []byte(c.content), 0o600)
			var logs bytes.Buffer
			n, err := New(cfg, Options{Version: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("a damaged group key file stopped the node: %v", err)
			}
			t.Cleanup(func() { n.Close() })
			if err := n.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			if ids := groupIDs(n); len(ids) != 1 || ids[0] != group.ID(pub) {
				t.Errorf("groups after the start: %v, want the intact one %s", ids, group.ID(pub))
			}
			if !strings.Contains(logs.String(), damaged) || !strings.Contains(logs.String(), "join") {
				t.Errorf("the log does not name the damaged file %s and what to do:\n%s", damaged, logs.String())
			}
		})
	}
}

func groupIDs(n *Node) []string {
	var ids []string
	for _, g := range n.groupList() {
		ids = append(ids, g.id)
	}
	return ids
}
