// Command coral runs a Coral node: a caching proxy, DNS server and DSHT peer
// that volunteers run at home. See README.md for every command and setting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	_ "github.com/coralcdn/coral/app/cmd/coral/internal/clocale" // before Fyne: see the package doc
	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/app/node"
	"github.com/coralcdn/coral/core/coralurl"
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
  coral coralize [-config FILE] [-zone Z] [-port P] URL
                                  print the Coralized form of an origin URL for this node
  coral invite [-config FILE]     print this node's invite code (network secret + addresses)
  coral join [-config FILE] CODE  make this node a member of an invite code's network
  coral operator keygen [-out F]  make a network operator key (prints the public key)
  coral operator publish [-key F] [-config FILE] DOC.json
                                  sign a run-state document and send it into the network
  coral group init -name N -site HOST=ORIGIN[,W] [-member PEER=MBPS[,SITE]] [-key F]
                                  make a site group's key and first manifest (see README)
  coral group sign [-key F] [-out F] [-publish [-config FILE]] GROUP.json
                                  sign a new version of a group's manifest, optionally send it
  coral version                   print the version

Settings live in a TOML file; every key has a default (see README.md).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := ""
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || isHelpFlag(args[0]) || isVersionFlag(args[0])) {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "":
		return runPlain(args, stdout, stderr)
	case "serve":
		return runNode("coral serve", args, stdout, stderr, false, "")
	case "gui":
		return runGUI(args, stdout, stderr)
	case "coralize":
		return coralize(args, stdout, stderr)
	case "invite":
		return invite(args, stdout, stderr)
	case "join":
		return join(args, stdout, stderr)
	case "operator":
		return operator(args, stdout, stderr)
	case "group":
		return groupCmd(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "coral", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage+buildNote)
		return 0
	default:
		fmt.Fprintf(stderr, "coral: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// runNode runs a node for the command name (its usage names it); cfgPath
// is the -config that `coral gui` already parsed.
func runNode(name string, args []string, stdout, stderr io.Writer, withGUI bool, cfgPath string) int {
	fs := newFlagSet(name, stdout, stderr)
	fs.StringVar(&cfgPath, "config", cfgPath, "path to the TOML config file (default: built-in defaults)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		// `coral serve coral.toml` would otherwise run on the defaults,
		// the volunteer believing the file in force.
		fmt.Fprintf(stderr, "coral: unexpected argument %q: a config file is given as -config FILE (flags before anything else)\n", fs.Arg(0))
		return 2
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "coral: %v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.Log.Level)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		code, again := runNodeOnce(ctx, cfg, log, stdout, stderr, withGUI, cfgPath)
		if !again {
			return code
		}
	}
}

// runNodeOnce runs one node until the signal, the window's close, or the
// node asking to be restarted (again: a rotated network secret takes
// effect only in a new libp2p host).
func runNodeOnce(ctx context.Context, cfg config.Config, log *slog.Logger, stdout, stderr io.Writer, withGUI bool, cfgPath string) (code int, again bool) {
	n, err := node.New(cfg, node.Options{Logger: log, Version: version})
	if err != nil {
		fmt.Fprintf(stderr, "coral: %v\n", err)
		return 1, false
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		fmt.Fprintf(stderr, "coral: %v\n", err)
		return 1, false
	}
	printListeners(stdout, n, cfg)
	if withGUI {
		runWindow(ctx, n, cfg, log, cfgPath)
	} else {
		select {
		case <-ctx.Done():
		case <-n.RestartRequested():
			again = true
		}
	}
	if again {
		fmt.Fprintf(stdout, "coral: restarting: %s\n", n.RestartReason())
	} else {
		fmt.Fprintln(stdout, "coral: shutting down")
	}
	if err := n.Close(); err != nil {
		fmt.Fprintf(stderr, "coral: close: %v\n", err)
		return 1, false
	}
	return 0, again && ctx.Err() == nil
}

func printListeners(w io.Writer, n *node.Node, cfg config.Config) {
	a := n.Addrs()
	fmt.Fprintf(w, "coral %s: node up, data in %s\n", version, cfg.RunPath(""))
	fmt.Fprintf(w, "  proxy    http://%s  (try http://example.com.%s%s/)\n", a.HTTP, cfg.Zone, portSuffix(a.HTTP))
	fmt.Fprintf(w, "  control  http://%s  (status page; /api/status; /metrics)\n", a.Control)
	if a.DNS != "" {
		fmt.Fprintf(w, "  dns      %s  (UDP and TCP, zone %s)\n", a.DNS, cfg.Zone)
	}
	for _, p := range a.P2P {
		fmt.Fprintf(w, "  p2p      %s\n", p)
	}
	fmt.Fprintf(w, "  control token in %s\n", cfg.RunPath(cfg.Control.TokenFile))
}

func portSuffix(addr string) string {
	if i := strings.LastIndex(addr, ":"); i >= 0 && addr[i+1:] != "80" {
		return addr[i:]
	}
	return ""
}

// coralize prints the Coralized form of an origin URL for the node the
// config describes: its zone, and its proxy's port unless that is 80, so
// that the printed link opens on that node.
func coralize(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral coralize", stdout, stderr)
	cfgPath := fs.String("config", "", "the node's config file: its zone and proxy port (default: built-in defaults)")
	zone := fs.String("zone", "", "the network's zone (default: the config's)")
	port := fs.String("port", "", "the proxy's port (default: the config's [http] listen port)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "coral coralize: want exactly one origin URL, e.g. coral coralize https://www.example.org/a")
		return 2
	}
	if n, err := strconv.Atoi(*port); *port != "" && (err != nil || n < 1 || n > 65535) {
		fmt.Fprintf(stderr, "coral coralize: -port %q: want the proxy's port, 1 to 65535\n", *port)
		return 2
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "coral coralize: %v\n", err)
		return 1
	}
	if *zone == "" {
		*zone = cfg.Zone
	}
	if *port == "" {
		if _, p, err := net.SplitHostPort(cfg.HTTP.Listen); err == nil {
			*port = p
		}
	}
	out, err := coralurl.CoralizeURL(fs.Arg(0), *zone, *port)
	if err != nil {
		// ErrInvalid names a bad Coralized name; here the input is an
		// origin URL, so say that instead.
		reason := strings.TrimPrefix(err.Error(), coralurl.ErrInvalid.Error()+": ")
		fmt.Fprintf(stderr, "coral coralize: cannot Coralize %q: %s (want an http:// or https:// origin URL)\n", fs.Arg(0), reason)
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

func isVersionFlag(s string) bool { return s == "-version" || s == "--version" }

// newFlagSet makes a sub-command's flags; -h prints them with the list of
// commands, to stdout, and exits 0.
func newFlagSet(name string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of %s:\n", name)
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "\n%s", usage)
	}
	return fs
}

// parseFlags parses args; done reports that the command ends here with
// code (help asked for: 0; bad flags: 2).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case err == nil && misplacedFlag(fs) != "":
		fmt.Fprintf(fs.Output(), "%s: %s must come before the other arguments (flags first)\n", fs.Name(), misplacedFlag(fs))
		return 2, true
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	default:
		return 2, true
	}
}

// misplacedFlag is the first of the command's own flags given after its
// arguments ("coral join CODE -config F"), where Go's flag parsing stops
// and would take it for an argument; "" if none.
func misplacedFlag(fs *flag.FlagSet) string {
	for _, a := range fs.Args() {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) != nil {
			return "-" + name
		}
	}
	return ""
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
	gologshim.SetDefaultHandler(closedLinkNoise{Handler: slog.NewTextHandler(w, &slog.HandlerOptions{Level: libp2pLevel}).WithAttrs([]slog.Attr{slog.String("component", "libp2p")})})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
