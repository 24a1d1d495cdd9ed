// Package layers checks the rule of the layers (README, DESIGN.md §1) on
// what each package links, directly or through others: `go list -deps`,
// not the import lines, so a rule cannot be broken one package removed.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/coralcdn/coral"

// A rule: packages matching scope must not link any package whose path
// starts with one of forbidden, unless the package is exempt.
type rule struct {
	name      string
	scope     func(pkg string) bool
	forbidden []string
	exempt    map[string]string // package -> why, until it is fixed
}

var (
	libp2p     = []string{"github.com/libp2p/", "github.com/multiformats/"}
	fyne       = []string{"fyne.io/"}
	badger     = []string{"github.com/dgraph-io/badger"}
	prometheus = []string{"github.com/prometheus/client_golang"}
	// The module's outer layers: core is used by them, never uses them.
	outer = []string{module + "/app", module + "/p2p", module + "/gui"}
)

func under(prefix string) func(string) bool {
	return func(pkg string) bool {
		return pkg == module+"/"+prefix || strings.HasPrefix(pkg, module+"/"+prefix+"/")
	}
}

var rules = []rule{
	{name: "core links no libp2p", scope: under("core"), forbidden: libp2p},
	{name: "core links no Fyne", scope: under("core"), forbidden: fyne},
	{name: "core links no metrics library", scope: under("core"), forbidden: prometheus},
	{name: "core links no app, p2p or gui", scope: under("core"), forbidden: outer},
	{name: "p2p links no app or gui", scope: under("p2p"), forbidden: []string{module + "/app", module + "/gui"}},
	{
		name:      "only core/store links Badger",
		scope:     func(pkg string) bool { return !under("core/store")(pkg) && !under("app")(pkg) && !under("test")(pkg) },
		forbidden: badger,
	},
	{name: "gui links no libp2p", scope: under("gui"), forbidden: libp2p},
	{name: "gui links no Badger", scope: under("gui"), forbidden: badger},
	{name: "gui links no metrics library", scope: under("gui"), forbidden: prometheus},
}

func TestLayers(t *testing.T) {
	deps := allDeps(t)
	for _, r := range rules {
		for pkg, ds := range deps {
			if !r.scope(pkg) {
				continue
			}
			if _, ok := r.exempt[pkg]; ok {
				continue
			}
			if bad := firstUnder(ds, r.forbidden); bad != "" {
				t.Errorf("%s: %s links %s", r.name, strings.TrimPrefix(pkg, module+"/"), bad)
			}
		}
	}
}

// An exemption that no longer applies is removed, so the rule tightens as
// the code is fixed.
func TestExemptionsStillNeeded(t *testing.T) {
	deps := allDeps(t)
	for _, r := range rules {
		for pkg := range r.exempt {
			if ds, ok := deps[pkg]; ok && firstUnder(ds, r.forbidden) == "" {
				t.Errorf("%s: %s no longer needs its exemption; remove it", r.name, pkg)
			}
		}
	}
}

func firstUnder(deps []string, prefixes []string) string {
	for _, dep := range deps {
		for _, p := range prefixes {
			if strings.HasPrefix(dep, p) {
				return dep
			}
		}
	}
	return ""
}

// allDeps maps every package of the module to everything it links.
func allDeps(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list found only %d packages", len(deps))
	}
	return deps
}

// The coral .deb's binary (-tags nogui, packaging/build-packages.sh) links
// no window: no Fyne, no OpenGL or GLFW bindings, not the gui package; and
// every package it links builds with CGO_ENABLED=0 (go list fails on one
// that needs cgo), so it is a static binary that a headless server runs
// without Mesa or X11 installed.
func TestHeadlessBuildLinksNoWindow(t *testing.T) {
	cmd := exec.Command("go", "list", "-tags", "nogui", "-deps", "-f", "{{.ImportPath}}", "./app/cmd/coral")
	cmd.Dir = "../.."
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -tags nogui with CGO_ENABLED=0: %v\n%s", err, out)
	}
	window := []string{"fyne.io/", "github.com/go-gl/", "github.com/fyne-io/", module + "/gui"}
	n := 0
	for _, pkg := range strings.Fields(string(out)) {
		n++
		if bad := firstUnder([]string{pkg}, window); bad != "" {
			t.Errorf("app/cmd/coral -tags nogui links %s", bad)
		}
	}
	if n < 100 {
		t.Fatalf("go list found only %d packages:\n%s", n, out)
	}
}
