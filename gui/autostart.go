package gui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Autostart is the XDG autostart entry that starts Coral when the
// volunteer logs in (Linux and BSD desktops; macOS and Windows: README).
type Autostart struct {
	Dir  string   // e.g. ~/.config/autostart
	Exec []string // the command line to run at login
}

// autostartFile is the entry's name: the app ID, so it cannot clash.
const autostartFile = "net.coralcdn.coral.desktop"

// DefaultAutostart is the entry for this user and this executable.
func DefaultAutostart(args ...string) (Autostart, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Autostart{}, fmt.Errorf("autostart: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	exe, err := os.Executable()
	if err != nil {
		return Autostart{}, fmt.Errorf("autostart: %w", err)
	}
	return Autostart{Dir: filepath.Join(dir, "autostart"), Exec: append([]string{exe}, args...)}, nil
}

// Path is where the entry lives.
func (a Autostart) Path() string { return filepath.Join(a.Dir, autostartFile) }

// Enabled reports whether the entry exists.
func (a Autostart) Enabled() bool {
	_, err := os.Stat(a.Path())
	return err == nil
}

// Set writes (on) or removes (off) the entry.
func (a Autostart) Set(on bool) error {
	if !on {
		if err := os.Remove(a.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("autostart: %w", err)
		}
		return nil
	}
	if err := os.MkdirAll(a.Dir, 0o755); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	if err := os.WriteFile(a.Path(), []byte(a.entry()), 0o644); err != nil {
		return fmt.Errorf("autostart: %w", err)
	}
	return nil
}

func (a Autostart) entry() string {
	quoted := make([]string, len(a.Exec))
	for i, arg := range a.Exec {
		quoted[i] = execQuote(arg)
	}
	return "[Desktop Entry]\nType=Application\nName=Coral\n" +
		"Comment=Volunteer node of the Coral content distribution network\n" +
		"Exec=" + strings.Join(quoted, " ") + "\nTerminal=false\nX-GNOME-Autostart-enabled=true\n"
}

// execQuote quotes one argument of an Exec key as the Desktop Entry
// specification asks: reserved characters inside double quotes, with ",
// `, $ and \ escaped by a backslash, and % doubled (field codes).
func execQuote(arg string) string {
	arg = strings.ReplaceAll(arg, "%", "%%")
	if arg != "" && !strings.ContainsAny(arg, " \t\n\"'\\><~|&;$*?#()`") {
		return arg
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`", `$`, `\$`)
	return `"` + r.Replace(arg) + `"`
}
