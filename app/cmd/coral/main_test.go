package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commandCase is one run of the command line: its exit code and what
// stdout and stderr must contain.
type commandCase struct {
	name   string
	args   []string
	code   int
	stdout []string
	stderr []string
}

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	badCfg := filepath.Join(dir, "bad.toml")
	os.WriteFile(badCfg, []byte("[cache]\nmax_stail = \"1h\"\n"), 0o644)
	port80 := filepath.Join(dir, "port80.toml")
	os.WriteFile(port80, []byte("zone = \"Nyud.Net\"\n[http]\nlisten = \":80\"\n"), 0o644)
	badVal := filepath.Join(dir, "badval.toml")
	os.WriteFile(badVal, []byte("[cache]\nmax_bytes = \"lots\"\n"), 0o644)

	for _, tc := range append([]commandCase{
		{"version", []string{"version"}, 0, []string{"coral "}, nil},
		{"--version", []string{"--version"}, 0, []string{"coral "}, nil},
		{"help", []string{"help"}, 0, []string{"coral serve [-config FILE]"}, nil},
		{"help flag", []string{"--help"}, 0, []string{"coral serve [-config FILE]", "coral coralize"}, nil},
		{"-h", []string{"-h"}, 0, []string{"coral serve [-config FILE]"}, nil},
		{"serve -h", []string{"serve", "-h"}, 0, nil, []string{"-config", "coral coralize"}},
		{"coralize", []string{"coralize", "https://www.example.com:8443/a?b=c"}, 0, []string{"http://www.example.com.8443.https.localhost:8080/a?b=c"}, nil},
		{"coralize zone", []string{"coralize", "-zone", "nyud.net", "http://127.0.0.1:8000/"}, 0, []string{"http://127.0.0.1.8000.nyud.net:8080/"}, nil},
		{"coralize port 80", []string{"coralize", "-config", port80, "http://www.example.com/"}, 0, []string{"http://www.example.com.nyud.net/\n"}, nil},
		{"coralize garbage", []string{"coralize", "ftp://x"}, 1, nil, []string{`cannot Coralize "ftp://x"`, "origin URL"}},
		{"coralize bad port", []string{"coralize", "-port", "99999", "http://a.example/"}, 2, nil, []string{`-port "99999"`, "1 to 65535"}},
		{"coralize port name", []string{"coralize", "-port", "abc", "http://a.example/"}, 2, nil, []string{`-port "abc"`}},
		{"coralize no URL", []string{"coralize"}, 2, nil, []string{"want exactly one origin URL"}},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
		{"unknown key", []string{"serve", "-config", badCfg}, 1, nil, []string{"bad.toml", `"cache.max_stail"`}},
		{"bad value", []string{"serve", "-config", badVal}, 1, nil, []string{"badval.toml", `"cache.max_bytes"`}},
		{"missing file", []string{"serve", "-config", filepath.Join(dir, "nope.toml")}, 1, nil, []string{"nope.toml"}},
		{"serve stray argument", []string{"serve", "-config", badCfg, "coral.toml"}, 2, nil, []string{`unexpected argument "coral.toml"`, "-config FILE"}},
		{"join flag after code", []string{"join", "coral1:abc", "-config", badCfg}, 2, nil, []string{"coral join: -config must come before"}},
		{"coralize flag after URL", []string{"coralize", "http://a.example/", "-zone=nyud.net"}, 2, nil, []string{"coral coralize: -zone must come before"}},
		{"plain stray argument", []string{"-config", badCfg, "extra"}, 2, nil, []string{`unexpected argument "extra"`}},
		{"plain unknown flag", []string{"-badflag"}, 2, nil, []string{"-badflag", "Usage of coral:"}},
	}, guiCommandCases(dir)...) {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errb.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout %q lacks %q", out.String(), w)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q lacks %q", errb.String(), w)
				}
			}
		})
	}
}
