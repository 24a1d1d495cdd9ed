package control

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A token file a crash or a stray write damaged (empty, binary) gets a
// fresh token instead of stopping the node, and the file then holds it for
// the GUI and the CLI; a token someone chose is kept, or refused with what
// to do when too short.
func TestLoadOrCreateTokenDamagedFile(t *testing.T) {
	cases := []struct {
		name, content string
		want          string // "" : a fresh token is made
		err           string
	}{
		{"empty", "", "", ""},
		{"blank lines", "\n\n  \n", "", ""},
		{"binary", "\x00\x9f\xffabcdefabcdefabcdef\x01\n", "", ""},
		{"chosen", "my own token 1234567\n", "my own token 1234567", ""},
		{"too short", "abc\n", "", "delete the file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "control.token")
			os.WriteFile(path, []byte(c.content), 0o600)
			tok, err := LoadOrCreateToken(path)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("got %q, %v; want an error naming %s and saying %q", tok, err, path, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("a damaged token file stopped the start: %v", err)
			}
			if c.want != "" && tok != c.want {
				t.Errorf("token %q, want the chosen %q", tok, c.want)
			}
			if c.want == "" && (len(tok) != 48 || damagedToken([]byte(tok))) {
				t.Errorf("token %q, want a fresh 48-hex-digit one", tok)
			}
			if b, _ := os.ReadFile(path); strings.TrimSpace(string(b)) != tok {
				t.Errorf("the file holds %q, not the token in force %q", b, tok)
			}
		})
	}
}
