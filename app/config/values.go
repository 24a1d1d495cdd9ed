package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// validPort reports whether a listen address's port is one the system can
// bind: 0 (any free port) to 65535. An empty port means 0 to the system; a
// service name ("http") is left to the resolver.
func validPort(port string) bool {
	if n, err := strconv.Atoi(port); err == nil {
		return n >= 0 && n <= 65535
	}
	return port == "" || strings.Trim(port, "0123456789") != ""
}

// expandHome turns a leading "~/" into the user's home directory, as a
// shell would: "~/coral" written in the file means that, not a directory
// named "~" next to the file.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p, fmt.Errorf("%q: no home directory to stand for ~ (%v): write the whole path", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}
