package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load("")
	if err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if cfg.HTTP.Listen != ":8080" || cfg.Control.Listen != "127.0.0.1:8081" || cfg.DNS.Listen != "127.0.0.1:5354" {
		t.Errorf("listen defaults: %+v %+v %+v", cfg.HTTP, cfg.Control, cfg.DNS)
	}
	if cfg.Cache.MaxBytes != 4<<30 || cfg.Cache.MaxObjectBytes != 50<<20 {
		t.Errorf("size defaults: %+v", cfg.Cache)
	}
	if cfg.Cache.HeuristicTTL.D() != 12*time.Hour || cfg.Cache.MaxStale.D() != 24*time.Hour || cfg.Cache.NegativeTTL.D() != time.Minute {
		t.Errorf("duration defaults: %+v", cfg.Cache)
	}
	if !cfg.Cache.StripCookies || cfg.Cache.AllowPrivateOrigins || cfg.Cache.PassUnsafeMethods {
		t.Errorf("bool defaults: %+v", cfg.Cache)
	}
	if len(cfg.P2P.Listen) != 1 || cfg.P2P.SecretFile != "network.key" || cfg.P2P.Bootstrap == nil {
		t.Errorf("p2p defaults: %+v", cfg.P2P)
	}
}

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/full.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DataDir, _ = filepath.Abs(filepath.Join("testdata", "state"))
	want.Zone = "nyud.net"
	want.HTTP = HTTP{Listen: ":9090", OriginTimeout: Duration(10 * time.Second), MaxOriginFetches: 8, MaxFetchesPerSite: 2, Advertise: []string{"203.0.113.7"}}
	want.Control.Listen = "127.0.0.1:9091"
	want.DNS = DNS{Listen: "127.0.0.1:5300", Nameserver: "yes", Nameservers: []NameServer{
		{Name: "ns1.nyud.net", Addrs: []string{"203.0.113.10", "2001:db8:10::53"}}, {Name: "ns.example.org"}},
		RRLResponsesPerSecond: 5, RRLBurst: 7, RRLSlip: 0, RRLTableSize: 2048}
	want.Cache = Cache{MaxBytes: 1 << 30, MaxObjectBytes: 10 << 20, HeuristicTTL: 0, MaxStale: Duration(time.Hour),
		NegativeTTL: Duration(30 * time.Second), PeerCopyMaxAge: Duration(6 * time.Hour), AllowPrivateOrigins: true, PassUnsafeMethods: true, StripCookies: false,
		OriginPorts: []string{"80", "443", "8000-9000"}}
	want.Cache.MinFreeBytes = 512 << 20
	want.Cache.MemoryBytes = 8 << 20
	want.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/4200"}
	want.P2P.Bootstrap = []string{"/ip4/127.0.0.1/tcp/4201/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}
	want.P2P.SecretFile = "/etc/coral/network.key"
	want.P2P.Reachability = "public"
	want.DSHT = DSHT{Level2RTT: Duration(80 * time.Millisecond), Level1RTT: Duration(240 * time.Millisecond)}
	if cfg.DataDir != want.DataDir || cfg.Zone != want.Zone || !reflect.DeepEqual(cfg.HTTP, want.HTTP) || cfg.Control != want.Control ||
		!reflect.DeepEqual(cfg.DNS, want.DNS) || !reflect.DeepEqual(cfg.Cache, want.Cache) || strings.Join(cfg.P2P.Listen, ",") != strings.Join(want.P2P.Listen, ",") ||
		strings.Join(cfg.P2P.Bootstrap, ",") != strings.Join(want.P2P.Bootstrap, ",") || cfg.P2P.SecretFile != want.P2P.SecretFile ||
		cfg.P2P.Reachability != want.P2P.Reachability || cfg.DSHT != want.DSHT {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	if got := cfg.Path(cfg.P2P.SecretFile); got != "/etc/coral/network.key" {
		t.Errorf("absolute secret path changed: %s", got)
	}
	if got := cfg.Path("control.token"); got != filepath.Join(want.DataDir, "control.token") {
		t.Errorf("relative path: %s", got)
	}
}

// A bad file must stop start-up with a message naming both the file and the key.
func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"unknown_key.toml", []string{"unknown_key.toml", `"cache.max_stail" (did you mean "cache.max_stale"?)`}},
		{"unknown_site_key.toml", []string{"unknown_site_key.toml", `(did you mean "sites.host"?)`}},
		{"zone_below_table.toml", []string{"zone_below_table.toml", `"cache.zone" (zone is a top-level key: put it above the first [table] line)`}},
		{"unknown_table.toml", []string{"unknown_table.toml", `"htp" (did you mean "http"?)`}},
		{"bad_duration.toml", []string{"bad_duration.toml", `"cache.negative_ttl"`, "duration"}},
		{"bad_size.toml", []string{"bad_size.toml", `"cache.max_bytes"`, "size"}},
		{"bad_min_free.toml", []string{"bad_min_free.toml", `"cache.min_free_bytes"`, "at least 128 MiB"}},
		{"bad_zone.toml", []string{"bad_zone.toml", `"zone"`}},
		{"bad_type.toml", []string{"bad_type.toml", "line 2", `"cache.strip_cookies"`, "want true or false, got a string"}},
		{"bad_type_number.toml", []string{"bad_type_number.toml", "line 2", `"http.max_origin_fetches"`, "want a whole number, got a string"}},
		{"bad_type_table.toml", []string{"bad_type_table.toml", "line 1", `"http"`, "want a table ([http] on a line of its own), got a number"}},
		{"bad_type_list.toml", []string{"bad_type_list.toml", "line 2", `"p2p.listen"`, "want a list"}},
		{"bad_multiaddr.toml", []string{"bad_multiaddr.toml", `"p2p.listen[0]"`}},
		{"bad_advertise.toml", []string{"bad_advertise.toml", `"http.advertise[0]"`}},
		{"bad_levels.toml", []string{"bad_levels.toml", `"dsht.level1_rtt"`, "larger"}},
		{"bad_rtt.toml", []string{"bad_rtt.toml", `"p2p.emulate_rtt[0].b"`, "region-2"}},
		{"bad_glue.toml", []string{"bad_glue.toml", `"dns.nameservers[0].addrs"`, "glue"}},
		{"bad_nameserver.toml", []string{"bad_nameserver.toml", `"dns.nameserver"`, `"sometimes"`}},
		{"bad_operator.toml", []string{"bad_operator.toml", `"operator.key"`, "coral operator keygen"}},
		{"bad_groups_reserve.toml", []string{"bad_groups_reserve.toml", `"groups_reserve"`, "0.05 to 0.9"}},
		{"bad_group.toml", []string{"bad_group.toml", `"groups[0].key"`, "coral group init"}},
		{"bad_rrl.toml", []string{"bad_rrl.toml", `"dns.rrl_slip"`, "0 (never) to 10", `"dns.rrl_burst"`, `"dns.rrl_table_size"`}},
		{"bad_rrl_rate.toml", []string{"bad_rrl_rate.toml", `"dns.rrl_responses_per_second"`, "0 (off)"}},
		{"bad_origin_ports.toml", []string{"bad_origin_ports.toml", `"cache.origin_ports"`, `"8080-80"`}},
		{"bad_site_fetches.toml", []string{"bad_site_fetches.toml", `"http.max_fetches_per_site"`, "up to max_origin_fetches (8)"}},
		{"bad_port.toml", []string{"bad_port.toml", `"http.listen"`, "0 to 65535", `":99999"`}},
		{"bad_port_alone.toml", []string{"bad_port_alone.toml", `"http.listen"`, `got "9999": for every address of the machine write ":9999"`}},
		{"bad_token_file.toml", []string{"bad_token_file.toml", `"control.token_file"`, "must not be empty"}},
		{"data_dir_file.toml", []string{"data_dir_file.toml", `"data_dir"`, "full.toml is a file, not a directory"}},
		{"broken.toml", []string{"broken.toml", "line 3", "table name"}},
		{"missing.toml", []string{"missing.toml", "no such file"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tc.file))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			// The volunteer wrote TOML, not Go: no decoder or Go type names.
			msg := strings.ReplaceAll(err.Error(), tc.file, "FILE")
			for _, jargon := range []string{"toml:", "int64", "destination", "config.", "Go value"} {
				if strings.Contains(msg, jargon) {
					t.Errorf("error %q speaks Go (%q)", err, jargon)
				}
			}
		})
	}
}

// A [[groups]] entry's manifest file is found next to the config file.
func TestGroupManifestFollowsFile(t *testing.T) {
	cfg, err := Load(filepath.Join("testdata", "group.toml"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(filepath.Join("testdata", "blogs.signed"))
	if len(cfg.Groups) != 1 || cfg.Groups[0].Manifest != want {
		t.Errorf("groups: %+v, want manifest %s", cfg.Groups, want)
	}
}

func TestRelativeDataDirFollowsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "coral.toml")
	if err := os.WriteFile(p, []byte("data_dir = \"d\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(dir, "d") {
		t.Errorf("data_dir = %s", cfg.DataDir)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.toml", "unknown_key.toml", "bad_size.toml", "broken.toml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err == nil {
			// Whatever is accepted must be valid.
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("accepted invalid config: %v", verr)
			}
		}
	})
}

// A relative data_dir in a config given by a relative path is resolved
// once, against the file's directory, to an absolute path: the network key
// lands in <config dir>/<data_dir>/network.key wherever the node runs from
// (it once landed in state/state/).
func TestRelativeDataDirResolvedOnce(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll("etc", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("etc/coral.toml", []byte("data_dir = \"state\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("etc/coral.toml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "etc", "state"); cfg.DataDir != want {
		t.Errorf("data_dir = %q, want %q", cfg.DataDir, want)
	}
	if got, want := cfg.Path(cfg.P2P.SecretFile), filepath.Join(dir, "etc", "state", "network.key"); got != want {
		t.Errorf("secret file = %q, want %q", got, want)
	}
}

// Zones are DNS names, so case-insensitive: "Nyud.Net" is nyud.net.
func TestZoneCaseInsensitive(t *testing.T) {
	for _, in := range []string{"Nyud.Net", "NYUD.NET", "nyud.net."} {
		cfg, err := Parse([]byte("zone = \"" + in + "\"\n"))
		if err != nil || cfg.Zone != "nyud.net" {
			t.Errorf("zone %q: got %q, %v", in, cfg.Zone, err)
		}
	}
	if _, err := Parse([]byte("zone = \"nyud_net\"\n")); err == nil {
		t.Error("zone with '_' accepted")
	}
}

// A size written and read back is the same number: the Settings tab shows
// the size in force, not a rounded one.
func TestSizeTextRoundTrips(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"15.5GiB", "15872MiB"},
		{"20GB", "20GB"},
		{"1.25GiB", "1280MiB"},
		{"4GiB", "4GiB"},
		{"1000000", "1MB"},
		{"1234", "1234"},
		{"0", "0"},
		{"1.5TiB", "1536GiB"},
	} {
		var s Size
		if err := s.UnmarshalText([]byte(c.in)); err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		text, _ := s.MarshalText()
		var back Size
		if err := back.UnmarshalText(text); err != nil || back != s || string(text) != c.want {
			t.Errorf("%q → %d → %q → %d (%v), want %q", c.in, s, text, back, err, c.want)
		}
	}
}

// data_dir = "~/coral" is the home directory's coral, as in a shell, not
// a directory named "~" beside the config file.
func TestDataDirTildeIsHome(t *testing.T) {
	t.Setenv("HOME", "/home/volunteer")
	cfg, err := Load(filepath.Join("testdata", "home_data_dir.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/home/volunteer/coral-data" {
		t.Errorf("data_dir %q, want /home/volunteer/coral-data", cfg.DataDir)
	}
}
