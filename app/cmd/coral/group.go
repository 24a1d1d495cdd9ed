package main

// Commands for site groups: init (key and first manifest), sign (a new
// version, optionally sent into the group through the local node).

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coralcdn/coral/app/config"
	"github.com/coralcdn/coral/core/group"
)

func groupCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "coral group: want init or sign\n\n%s", usage)
		return 2
	}
	switch args[0] {
	case "init":
		return groupInit(args[1:], stdout, stderr)
	case "sign":
		return groupSign(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "coral group: unknown command %q (want init or sign)\n", args[0])
		return 2
	}
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// groupInit makes the group's key and its first manifest (serial 1), as
// JSON to edit later and signed for the members' configs.
func groupInit(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral group init", stdout, stderr)
	keyPath := fs.String("key", "group.key", "where to write the group's private key (mode 0600; never overwritten)")
	name := fs.String("name", "", "the group's name (required)")
	out := fs.String("out", "group.json", "where to write the manifest (JSON, to edit for later versions)")
	signedOut := fs.String("signed", "group.signed", "where to write the signed manifest (for members' [[groups]] manifest)")
	var sites, members listFlag
	fs.Var(&sites, "site", "a member site, HOST=ORIGIN[,WEIGHT] (repeat): www.site.org=http://origin.site.org,2")
	fs.Var(&members, "member", "a member node, PEER_ID=MBPS[,SITE...] (repeat): its peer ID, committed upload, own sites")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	// Said in the flags' words: the manifest's "malformed document: name:
	// 1 to 64 printable characters" does not tell which flag is missing.
	if *name == "" || len(sites) == 0 {
		fmt.Fprintln(stderr, "coral group init: -name and at least one -site HOST=ORIGIN are required, e.g. coral group init -name blogs -site www.site.org=http://origin.site.org")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "coral group init: %v\n", err); return 1 }
	m := group.Manifest{Name: *name, Serial: 1, Issued: time.Now().UTC().Truncate(time.Second)}
	for _, s := range sites {
		site, err := parseSiteFlag(s)
		if err != nil {
			return fail(err)
		}
		m.Sites = append(m.Sites, site)
	}
	for _, s := range members {
		mb, err := parseMemberFlag(s)
		if err != nil {
			return fail(err)
		}
		m.Members = append(m.Members, mb)
	}
	if err := m.Validate(); err != nil {
		return fail(err)
	}
	pub, err := writeNewKey(*keyPath)
	if err != nil {
		return fail(err)
	}
	if err := writeManifest(m, *out, *signedOut, *keyPath); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "coral group init: private key in %s: keep it offline and backed up; manifest in %s, signed in %s\n", *keyPath, *out, *signedOut)
	fmt.Fprintf(stdout, "[[groups]]\nkey = %q\nmanifest = %q\n", group.FormatPublicKey(pub), *signedOut)
	return 0
}

func parseSiteFlag(s string) (group.Site, error) {
	host, rest, ok := strings.Cut(s, "=")
	origin, weight, _ := strings.Cut(rest, ",")
	site := group.Site{Host: strings.ToLower(host), Origin: origin, Weight: 1}
	if weight != "" {
		w, err := strconv.Atoi(weight)
		if err != nil {
			return site, fmt.Errorf("-site %q: weight %q is not a number", s, weight)
		}
		site.Weight = w
	}
	if !ok || origin == "" {
		return site, fmt.Errorf("-site %q: want HOST=ORIGIN[,WEIGHT]", s)
	}
	return site, nil
}

func parseMemberFlag(s string) (group.Member, error) {
	peer, rest, ok := strings.Cut(s, "=")
	parts := strings.Split(rest, ",")
	mbps, err := strconv.ParseFloat(parts[0], 64)
	if !ok || err != nil {
		return group.Member{}, fmt.Errorf("-member %q: want PEER_ID=MBPS[,SITE...]", s)
	}
	return group.Member{Peer: peer, UploadMbps: mbps, Sites: parts[1:]}, nil
}

// writeManifest writes m as JSON to out (if not empty) and signed with the
// key in keyPath to signedOut.
func writeManifest(m group.Manifest, out, signedOut, keyPath string) error {
	priv, err := loadOperatorKey(keyPath)
	if err != nil {
		return err
	}
	signed, err := group.Sign(m, priv)
	if err != nil {
		return err
	}
	if out != "" {
		b, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(signedOut, signed, 0o644)
}

// groupSign signs a new version of the manifest and, with -publish, hands
// it to the local node, which applies it and sends it to the group.
func groupSign(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("coral group sign", stdout, stderr)
	keyPath := fs.String("key", "group.key", "the group's private key")
	signedOut := fs.String("out", "group.signed", "where to write the signed manifest")
	publish := fs.Bool("publish", false, "also send it to the group through the local node")
	cfgPath := fs.String("config", "", "with -publish: config of the local node (default: built-in defaults)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "coral group sign: want exactly one manifest file (JSON; see README, \"Site groups\")")
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "coral group sign: %v\n", err); return 1 }
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fail(err)
	}
	m, err := group.ParseManifest(b)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", fs.Arg(0), err))
	}
	if m.Issued.IsZero() {
		m.Issued = time.Now().UTC().Truncate(time.Second)
	}
	if err := writeManifest(m, "", *signedOut, *keyPath); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "coral group sign: serial %d of %q signed in %s\n", m.Serial, m.Name, *signedOut)
	if !*publish {
		return 0
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(err)
	}
	raw, _ := os.ReadFile(*signedOut)
	body, err := controlCall(cfg, "POST", "/api/groups/manifest", raw)
	if err != nil {
		return fail(err)
	}
	var resp struct {
		Peers int `json:"sent_to_peers"`
	}
	json.Unmarshal(body, &resp)
	fmt.Fprintf(stdout, "coral group sign: in force on this node, sent to %d group member(s)\n", resp.Peers)
	return 0
}
