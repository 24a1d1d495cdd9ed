package layers

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// consumerInterfaces are the interfaces p2p may declare: ones it calls
// that are not core's contracts. Everything else p2p talks to core through
// is declared in core (dsht.Network and dsht.Handler, object.Source,
// coop.Fetcher, locality.Peers), and p2p implements or calls it there.
var consumerInterfaces = map[string]string{
	// The volunteer's budget as the host meters its own streams with it;
	// core/shaping's Budget satisfies it, app/node passes it in.
	"Budget": "the host's own traffic meter",
}

// p2p declares no interface for core to implement (DESIGN.md §1: p2p
// implements interfaces that core declares): a new one would make core
// depend on the transport's view of it.
func TestP2PDeclaresNoInterfaceForCore(t *testing.T) {
	for name, pos := range exportedInterfaces(t, filepath.Join("..", "..", "p2p")) {
		if _, ok := consumerInterfaces[name]; !ok {
			t.Errorf("%s: p2p declares interface %s; declare it in the core package it belongs to and implement it in p2p", pos, name)
		}
	}
}

// An allowed interface that p2p no longer declares is removed from the list.
func TestConsumerInterfacesStillDeclared(t *testing.T) {
	declared := exportedInterfaces(t, filepath.Join("..", "..", "p2p"))
	for name := range consumerInterfaces {
		if _, ok := declared[name]; !ok {
			t.Errorf("p2p no longer declares %s; remove it from consumerInterfaces", name)
		}
	}
}

// exportedInterfaces maps the exported interface types declared in the
// non-test Go files of dir to where they are.
func exportedInterfaces(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", f, err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if _, isIface := ts.Type.(*ast.InterfaceType); isIface && ts.Name.IsExported() {
				out[ts.Name.Name] = fset.Position(ts.Pos()).String()
			}
			return false
		})
	}
	return out
}
