// Command coral runs a Coral node: a caching proxy, DNS server and DSHT peer
// that volunteers run at home. See README.md for every command and setting.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	_ "github.com/coralcdn/coral/app/cmd/coral/internal/clocale" // before Fyne: see the package doc
	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/node"
	"github.com/coralcdn/coral/core/coralurl"
	"github.com/coralcdn/coral/gui"
	"github.com/libp2p/go-libp2p/gologshim"
)

// version is set by the Makefile (-ldflags -X main.version=...).
var version = "dev"

const usage = `coral — a volunteer-run content distribution network node

Usage:
  coral [-config FILE]            run a node; opens the GUI when a display is present
  coral serve [-config FILE]      run a headless node (servers, systemd)
  coral gui [-config FILE]        run a node with the GUI
  coral gui -attach URL [-token-file F]  show and change a node running elsewhere
  coral coralize [-zone Z] URL    print the Coralized form of an origin URL
  coral version                   print the version

Settings live in a TOML file; every key has a default (see README.md).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		return runNode(args, stdout, stderr, displayOrSay(stderr), "")
	case "serve":
		return runNode(args, stdout, stderr, false, "")
	case "gui":
		return runGUI(args, stdout, stderr)
	case "coralize":
		return coralize(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "coral", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "coral: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// runNode runs a node; cfgPath is the -config that `coral gui` already parsed.
func runNode(args []string, stdout, stderr io.Writer, withGUI bool, cfgPath string) int {
	fs := flag.NewFlagSet("coral serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfgPath, "config", cfgPath, "path to the TOML config file (default: built-in defaults)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "coral: %v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.Log.Level)
	n, err := node.New(cfg, node.Options{Logger: log, Version: version})
	if err != nil {
		fmt.Fprintf(stderr, "coral: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := n.Start(ctx); err != nil {
		n.Close()
		fmt.Fprintf(stderr, "coral: %v\n", err)
		return 1
	}
	printListeners(stdout, n, cfg)
	if withGUI {
		gui.Run(ctx, localClient(n.Addrs().Control, cfg), guiInfo(n.Addrs().Control, cfgPath))
		stop()
	} else {
		<-ctx.Done()
	}
	fmt.Fprintln(stdout, "coral: shutting down")
	if err := n.Close(); err != nil {
		fmt.Fprintf(stderr, "coral: close: %v\n", err)
		return 1
	}
	return 0
}

func printListeners(w io.Writer, n *node.Node, cfg config.Config) {
	a := n.Addrs()
	fmt.Fprintf(w, "coral %s: node up, data in %s\n", version, cfg.DataDir)
	fmt.Fprintf(w, "  proxy    http://%s  (try http://example.com.%s%s/)\n", a.HTTP, cfg.Zone, portSuffix(a.HTTP))
	fmt.Fprintf(w, "  control  http://%s  (status page; /api/status; /metrics)\n", a.Control)
	if a.DNS != "" {
		fmt.Fprintf(w, "  dns      %s  (UDP and TCP, zone %s)\n", a.DNS, cfg.Zone)
	}
	for _, p := range a.P2P {
		fmt.Fprintf(w, "  p2p      %s\n", p)
	}
	fmt.Fprintf(w, "  control token in %s\n", cfg.Path(cfg.Control.TokenFile))
}

func portSuffix(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 && addr[i+1:] != "80" {
		return addr[i:]
	}
	return ""
}

func coralize(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("coral coralize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	zone := fs.String("zone", config.Default().Zone, "the network's zone")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "coral coralize: want exactly one URL")
		return 2
	}
	out, err := coralurl.Coralize(fs.Arg(0), *zone)
	if err != nil {
		fmt.Fprintf(stderr, "coral coralize: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	// libp2p logs through its own shim; keep it to warnings unless the
	// volunteer asked for debug, so a home node's output stays readable.
	libp2pLevel := max(l, slog.LevelWarn)
	if l == slog.LevelDebug {
		libp2pLevel = slog.LevelInfo
	}
	gologshim.SetDefaultHandler(slog.NewTextHandler(w, &slog.HandlerOptions{Level: libp2pLevel}).WithAttrs([]slog.Attr{slog.String("component", "libp2p")}))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
