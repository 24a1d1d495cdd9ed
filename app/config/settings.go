package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/renameio/v2"
)

// Settings are the values a volunteer changes while the node runs (from
// the desktop app or `PUT /api/settings`). They start from the config file;
// changes are kept in SettingsFile in the data directory, layered over it.
// Later issues add the cache size and location, groups and network here.
type Settings struct {
	// Paused stops serving visitors and peers; the node keeps its DSHT
	// membership and cache.
	Paused    bool          `json:"paused"`
	Bandwidth Bandwidth     `json:"bandwidth"`
	Sites     []Site        `json:"sites"`
	Cache     CacheSettings `json:"cache"`
}

// CacheSettings are the cache's live settings: its size applies at once
// (the store evicts down to it), its location (the data directory) at the
// next start, as the node cannot move a store it has open.
type CacheSettings struct {
	MaxBytes Size   `json:"max_bytes"`
	DataDir  string `json:"data_dir"`
}

// SettingsFile is the name, in the data directory, of the changes made
// through the control API.
const SettingsFile = "settings.json"

// Settings are the config file's values for the live settings.
func (c Config) Settings() Settings {
	return Settings{Bandwidth: c.Bandwidth, Sites: slices.Clone(c.Sites),
		Cache: CacheSettings{MaxBytes: c.Cache.MaxBytes, DataDir: c.DataDir}}
}

// Validate checks the settings; each KeyError names the key.
func (s Settings) Validate() error {
	return errors.Join(append(validateBudget(s.Bandwidth, s.Sites), validateCache(s.Cache)...)...)
}

func validateCache(c CacheSettings) []error {
	var errs []error
	if c.MaxBytes < 0 {
		errs = append(errs, &KeyError{Key: "cache.max_bytes", Msg: "must not be negative"})
	}
	if c.MaxBytes > 0 && c.MaxBytes < minCacheBytes {
		errs = append(errs, &KeyError{Key: "cache.max_bytes", Msg: "want at least 64MiB, or 0 for no limit"})
	}
	if c.DataDir == "" || !filepath.IsAbs(c.DataDir) {
		errs = append(errs, &KeyError{Key: "cache.data_dir", Msg: fmt.Sprintf("want an absolute directory path, got %q", c.DataDir)})
	}
	return errs
}

// minCacheBytes is the smallest cache size the settings accept: below it a
// typo ("4MB" for "4GB") would evict the whole cache at once.
const minCacheBytes = 64 << 20

// damagedSettingsFix ends the message of a settings file the node cannot
// use: the volunteer needs to know that deleting it loses only the changes
// made in the window or through the control API.
const damagedSettingsFix = " (correct it, or delete it to go back to the config file's settings)"

// SavedDataDir reads the data directory chosen through the settings
// (cache.data_dir in the settings file at path): "" when none was chosen.
// The node calls it at start, before opening anything in the data dir.
func SavedDataDir(path string) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("settings: %w", err)
	}
	var doc struct {
		Cache struct {
			DataDir string `json:"data_dir"`
		} `json:"cache"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("settings: %s: not JSON: %v%s", path, err, damagedSettingsFix)
	}
	return doc.Cache.DataDir, nil
}

// Live holds the settings in force and tells subscribers of every change,
// as syncthing's config wrapper does: components register once instead of
// polling.
type Live struct {
	updating  sync.Mutex // one Update at a time, subscribers told in order
	mu        sync.Mutex
	base      Settings       // from the config file
	overrides map[string]any // the changes, a JSON merge patch over base
	cur       Settings
	path      string // "" keeps changes in memory only
	subs      []func(Settings)
}

// OpenLive starts from cfg's values and the changes saved in path (""
// for none). A damaged or invalid settings file is an error naming it.
func OpenLive(cfg Config, path string) (*Live, error) {
	l := &Live{base: cfg.Settings(), overrides: map[string]any{}, path: path}
	l.cur = l.base
	if path == "" {
		return l, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	if err := json.Unmarshal(b, &l.overrides); err != nil {
		return nil, fmt.Errorf("settings: %s: not JSON: %v%s", path, err, damagedSettingsFix)
	}
	cur, err := l.apply(l.overrides)
	if err != nil {
		return nil, fmt.Errorf("settings: %s: %w%s", path, err, damagedSettingsFix)
	}
	l.cur = cur
	return l, nil
}

// Get returns the settings in force.
func (l *Live) Get() Settings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Subscribe registers fn for every change; it is called with the new
// settings after each successful Update, in order.
func (l *Live) Subscribe(fn func(Settings)) {
	l.mu.Lock()
	l.subs = append(l.subs, fn)
	l.mu.Unlock()
}

// Update applies a partial change: a JSON object holding only the keys to
// change (a JSON merge patch, RFC 7396: objects merge, lists replace, null
// returns a key to the config file's value). Invalid changes leave
// everything as it was and name the key. The change is saved before
// subscribers hear of it.
func (l *Live) Update(patch []byte) (Settings, error) {
	var p any
	dec := json.NewDecoder(bytes.NewReader(patch))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return Settings{}, fmt.Errorf("settings: not JSON: %v", err)
	}
	if dec.More() {
		return Settings{}, errors.New("settings: want one JSON object, got more after it")
	}
	if _, ok := p.(map[string]any); !ok {
		return Settings{}, errors.New("settings: want a JSON object of the keys to change")
	}
	l.updating.Lock()
	defer l.updating.Unlock()
	l.mu.Lock()
	merged, _ := mergePatch(deepCopy(l.overrides), p).(map[string]any)
	old := l.cur
	l.mu.Unlock()
	cur, err := l.apply(merged)
	if err != nil {
		return old, err
	}
	if cur.Cache.DataDir != old.Cache.DataDir {
		if err := usableDataDir(cur.Cache.DataDir); err != nil {
			return old, err
		}
	}
	if l.path != "" {
		b, _ := json.MarshalIndent(merged, "", "  ")
		if err := writeFileAtomic(l.path, append(b, '\n')); err != nil {
			return old, fmt.Errorf("settings: save: %w", err)
		}
	}
	l.mu.Lock()
	l.overrides, l.cur = merged, cur
	subs := slices.Clone(l.subs)
	l.mu.Unlock()
	for _, fn := range subs {
		fn(cur)
	}
	return cur, nil
}

// apply lays overrides over the base and validates the result.
func (l *Live) apply(overrides map[string]any) (Settings, error) {
	baseJSON, _ := json.Marshal(l.base)
	var doc any
	dec := json.NewDecoder(bytes.NewReader(baseJSON))
	dec.UseNumber()
	dec.Decode(&doc)
	doc = mergePatch(doc, deepCopy(overrides))
	s, err := decodeSettings(doc)
	if err != nil {
		return s, err
	}
	return s, s.Validate()
}

// mergePatch applies an RFC 7396 merge patch to target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// decodeSettings decodes key by key so an error names the key it is about
// ("bandwidth.upload: not a rate …").
func decodeSettings(doc any) (Settings, error) {
	var s Settings
	fields := map[string]any{
		"paused":                    &s.Paused,
		"bandwidth.upload":          &s.Bandwidth.Upload,
		"bandwidth.download":        &s.Bandwidth.Download,
		"bandwidth.monthly_quota":   &s.Bandwidth.MonthlyQuota,
		"bandwidth.quota_reset_day": &s.Bandwidth.QuotaResetDay,
		"bandwidth.schedule":        &s.Bandwidth.Schedule,
		"sites":                     &s.Sites,
		"cache.max_bytes":           &s.Cache.MaxBytes,
		"cache.data_dir":            &s.Cache.DataDir,
	}
	return s, decodeObject("", doc, fields)
}

func decodeObject(prefix string, doc any, fields map[string]any) error {
	obj, ok := doc.(map[string]any)
	if !ok {
		return &KeyError{Key: strings.TrimSuffix(prefix, "."), Msg: "want a JSON object"}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := prefix + k
		if dst, ok := fields[key]; ok {
			raw, _ := json.Marshal(obj[k])
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(dst); err != nil {
				return &KeyError{Key: key, Msg: jsonErrorWords(err)}
			}
			continue
		}
		if hasPrefix(fields, key+".") {
			if err := decodeObject(key+".", obj[k], fields); err != nil {
				return err
			}
			continue
		}
		return &KeyError{Key: key, Msg: "unknown setting"}
	}
	return nil
}

func hasPrefix(fields map[string]any, p string) bool {
	for k := range fields {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// usableDataDir checks, when the data directory changes, that the node
// can create it and write there: it moves at the next start, and a
// directory it cannot write would stop that start (under systemd, again
// every few seconds) long after the change was accepted.
func usableDataDir(dir string) error {
	bad := func(err error) error {
		return &KeyError{Key: "cache.data_dir", Msg: fmt.Sprintf("cannot write to %s: %v (a node run by the packaged systemd unit writes only to /var/lib/coral: allow another directory with `sudo systemctl edit coral`, adding [Service] ReadWritePaths=%s)", dir, err, dir)}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return bad(err)
	}
	f, err := os.CreateTemp(dir, ".coral-write-check*")
	if err != nil {
		return bad(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeFileAtomic replaces path through a temporary file, synced, and a
// rename (renameio), so a crash leaves the old or the new settings, never
// half of them.
func writeFileAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return renameio.WriteFile(path, b, 0o600)
}

// RunPath is like Path, in the data directory the node runs in: the one
// chosen through the settings (cache.data_dir) when there is one. Tools
// that read the running node's files (its control token) use it.
func (c Config) RunPath(name string) string {
	if dir, err := SavedDataDir(c.Path(SettingsFile)); err == nil && dir != "" {
		c.DataDir = dir
	}
	return c.Path(name)
}

// Overridden lists the keys ("bandwidth.upload", "sites") whose values
// come from the saved changes rather than the config file, sorted: a
// volunteer who edits those keys in the file sees no effect until the
// changes are reset, so the node says which they are at start.
func (l *Live) Overridden() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(prefix+k+".", sub)
			} else {
				keys = append(keys, prefix+k)
			}
		}
	}
	walk("", l.overrides)
	sort.Strings(keys)
	return keys
}
