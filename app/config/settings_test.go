package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coralcdn/coral/core/shaping"
)

func openLive(t *testing.T, path string) *Live {
	t.Helper()
	cfg, err := Load("testdata/bandwidth.toml")
	if err != nil {
		t.Fatal(err)
	}
	l, err := OpenLive(cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSettingsPartialUpdate(t *testing.T) {
	l := openLive(t, "")
	var heard []Settings
	l.Subscribe(func(s Settings) { heard = append(heard, s) })
	s, err := l.Update([]byte(`{"paused": true, "bandwidth": {"download": "10MiB/s"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Paused || s.Bandwidth.Download != 10<<20 {
		t.Errorf("update not applied: %+v", s)
	}
	if s.Bandwidth.Upload != 2<<20 || len(s.Bandwidth.Schedule) != 2 || len(s.Sites) != 1 {
		t.Errorf("keys not in the change lost their config values: %+v", s)
	}
	if len(heard) != 1 || !heard[0].Paused {
		t.Errorf("subscribers heard %+v", heard)
	}
	// null returns a key to the config file's value; lists replace.
	s, err = l.Update([]byte(`{"paused": null, "sites": [{"host": "a.example", "weight": 3}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Paused || len(s.Sites) != 1 || s.Sites[0].Host != "a.example" {
		t.Errorf("after null and a new list: %+v", s)
	}
}

func TestSettingsRejectNamingTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, patch, key string
	}{
		{"bad rate", `{"bandwidth": {"upload": "fast"}}`, "bandwidth.upload"},
		{"wrong type", `{"paused": "yes"}`, "paused"},
		{"unknown key", `{"bandwidth": {"uplaod": "1MiB/s"}}`, "bandwidth.uplaod"},
		{"unknown top key", `{"color": "red"}`, "color"},
		{"reset day", `{"bandwidth": {"quota_reset_day": 30}}`, "bandwidth.quota_reset_day"},
		{"window", `{"bandwidth": {"schedule": [{"days": ["mon"], "from": "08:00", "to": "07:60", "upload": "off"}]}}`, "bandwidth.schedule[0].to"},
		{"window field", `{"bandwidth": {"schedule": [{"dayz": ["mon"]}]}}`, "bandwidth.schedule"},
		{"site weight", `{"sites": [{"host": "a.example", "weight": -1}]}`, "sites[0].weight"},
		{"bandwidth not an object", `{"bandwidth": 5}`, "bandwidth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openLive(t, "")
			before := l.Get()
			_, err := l.Update([]byte(tc.patch))
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key {
				t.Fatalf("error %v, want one naming %q", err, tc.key)
			}
			if after := l.Get(); after.Bandwidth.Upload != before.Bandwidth.Upload || after.Paused != before.Paused {
				t.Errorf("a refused change was applied")
			}
		})
	}
	l := openLive(t, "")
	for _, bad := range []string{`[1]`, `nope`, ``, `{"paused": true}{"paused": false}`, `{} x`} {
		if _, err := l.Update([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSettingsPersistAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), SettingsFile)
	l := openLive(t, path)
	if _, err := l.Update([]byte(`{"paused": true, "bandwidth": {"upload": "512KiB/s"}}`)); err != nil {
		t.Fatal(err)
	}
	s := openLive(t, path).Get()
	if !s.Paused || s.Bandwidth.Upload != 512<<10 || s.Bandwidth.MonthlyQuota != 300<<30 {
		t.Fatalf("after restart: %+v", s)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "monthly_quota") {
		t.Errorf("the settings file holds more than the changes: %s", b)
	}
}

func TestDamagedSettingsFileNamesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), SettingsFile)
	os.WriteFile(path, []byte(`{"bandwidth": {"upload": "fast"}}`), 0o600)
	cfg, _ := Parse(nil)
	if _, err := OpenLive(cfg, path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "bandwidth.upload") ||
		!strings.Contains(err.Error(), "delete it to go back to the config file's settings") {
		t.Fatalf("error %v", err)
	}
	// Cut short (a crash mid-edit by hand): the data dir's reader says so too.
	os.WriteFile(path, []byte(`{"paused": tru`), 0o600)
	for _, err := range []error{func() error { _, err := SavedDataDir(path); return err }(), func() error { _, err := OpenLive(cfg, path); return err }()} {
		if err == nil || !strings.Contains(err.Error(), "not JSON") || !strings.Contains(err.Error(), "delete it to go back") {
			t.Errorf("error %v", err)
		}
	}
}

func TestSettingsPolicy(t *testing.T) {
	s := openLive(t, "").Get()
	p := s.Bandwidth.Policy(s.Paused, s.Sites)
	if p.Weights["www.example.com"] != 2 || p.Schedule[1].Upload == nil || *p.Schedule[1].Upload != shaping.Off {
		t.Fatalf("policy %+v", p)
	}
}

func FuzzSettingsUpdate(f *testing.F) {
	for _, s := range []string{`{"paused":true}`, `{"bandwidth":{"upload":"1MiB/s","schedule":[{"days":["mon"],"from":"08:00","to":"09:00","upload":"off"}]}}`, `{"sites":null}`, `{"bandwidth":{"quota_reset_day":1e99}}`} {
		f.Add([]byte(s))
	}
	cfg, _ := Parse(nil)
	f.Fuzz(func(t *testing.T, patch []byte) {
		l, _ := OpenLive(cfg, "")
		s, err := l.Update(patch)
		if err == nil {
			if verr := s.Validate(); verr != nil {
				t.Fatalf("accepted invalid settings: %v", verr)
			}
		}
	})
}

// A data directory the node cannot write is refused when it is chosen, with
// what to do, not at the next start; one it can is made and accepted.
func TestDataDirMustBeWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	l := openLive(t, path)
	blocker := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	_, err := l.Update([]byte(`{"cache": {"data_dir": "` + blocker + `/coral"}}`))
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Key != "cache.data_dir" || !strings.Contains(err.Error(), "ReadWritePaths") {
		t.Fatalf("unwritable data_dir: %v; want a cache.data_dir error naming ReadWritePaths", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the refused change was saved: %s", after)
	}
	dir := filepath.Join(t.TempDir(), "srv", "coral")
	if _, err := l.Update([]byte(`{"cache": {"data_dir": "` + dir + `"}}`)); err != nil {
		t.Fatalf("a writable new data_dir: %v", err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Errorf("the new data_dir was not made: %v", err)
	}
	if l.Get().Cache.DataDir != dir {
		t.Errorf("data_dir = %q, want %q", l.Get().Cache.DataDir, dir)
	}
}

// A settings file a stray write damaged (empty, cut short, binary) stops
// the start naming the file and what to do, and stays as it was.
func TestDamagedSettingsFileSaysWhatToDo(t *testing.T) {
	for name, content := range map[string]string{
		"empty": "", "cut short": `{"bandwidth": {"upl`, "binary": "\x00\xff\x10",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), SettingsFile)
			os.WriteFile(path, []byte(content), 0o600)
			cfg, _ := Parse(nil)
			_, err := OpenLive(cfg, path)
			_, serr := SavedDataDir(path) // what a start reads first
			for _, err := range []error{err, serr} {
				if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "delete it to go back") {
					t.Fatalf("error %v; want it to name %s and say what deleting it does", err, path)
				}
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Errorf("the damaged settings file was changed to %q", b)
			}
		})
	}
}

// A change of the wrong kind is named in JSON's words, not Go's.
func TestSettingsWrongKindInPlainWords(t *testing.T) {
	for _, tc := range []struct {
		patch, key, want string
	}{
		{`{"paused": "yes"}`, "paused", "want true or false, got a string"},
		{`{"paused": 1}`, "paused", "want true or false, got a number"},
		{`{"cache": {"max_bytes": 12}}`, "cache.max_bytes", `want a string in quotes, such as "4GiB" or "0", got a number`},
		{`{"bandwidth": {"quota_reset_day": "3"}}`, "bandwidth.quota_reset_day", "want a whole number, got a string"},
		{`{"bandwidth": {"quota_reset_day": 1.5}}`, "bandwidth.quota_reset_day", "want a whole number, got 1.5"},
		{`{"sites": {"host": "a.example"}}`, "sites", "want a list, got an object"},
		{`{"sites": [{"host": "a.example", "weight": "2"}]}`, "sites", "weight: want a number, got a string"},
	} {
		t.Run(tc.patch, func(t *testing.T) {
			_, err := openLive(t, "").Update([]byte(tc.patch))
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key || !strings.Contains(ke.Msg, tc.want) {
				t.Fatalf("error %v, want key %q saying %q", err, tc.key, tc.want)
			}
			if strings.Contains(ke.Msg, "Go value") || strings.Contains(ke.Msg, "unmarshal") {
				t.Errorf("error %q speaks Go", ke.Msg)
			}
		})
	}
}

// The keys that saved changes hold survive a restart and are listed, so
// the node can say which config file keys do not apply.
func TestSettingsOverriddenKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), SettingsFile)
	if got := openLive(t, path).Overridden(); len(got) != 0 {
		t.Fatalf("no changes yet, got %v", got)
	}
	l := openLive(t, path)
	if _, err := l.Update([]byte(`{"paused": true, "bandwidth": {"upload": "1MiB/s"}, "sites": []}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Update([]byte(`{"paused": null}`)); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(openLive(t, path).Overridden(), " ")
	if got != "bandwidth.upload sites" {
		t.Errorf("overridden after restart: %q, want %q", got, "bandwidth.upload sites")
	}
}
