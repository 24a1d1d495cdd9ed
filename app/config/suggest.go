package config

import (
	"reflect"
	"strings"
)

// suggestKey is the known key closest to an unknown one, when the unknown
// one is a likely typo of it (at most two edits, in the same table);
// "" otherwise. "cache.max_stail" suggests "cache.max_stale".
func suggestKey(unknown string) string {
	best, bestDist := "", 3
	for _, k := range knownKeys("", reflect.TypeOf(Config{})) {
		if parent(k) != parent(unknown) {
			continue
		}
		if d := editDistance(k, unknown); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// misplacedTopKey is the top-level key ("zone") an unknown key
// ("cache.zone") is, when it was written below a [table] header, where
// TOML puts it inside that table; "" otherwise.
func misplacedTopKey(unknown string) string {
	leaf := unknown[strings.LastIndex(unknown, ".")+1:]
	if leaf != unknown && isScalarTopKey(leaf) {
		return leaf
	}
	return ""
}

// isScalarTopKey reports whether a top-level key holds a value rather
// than a table.
func isScalarTopKey(key string) bool {
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("toml"), ","); name == key {
			return f.Type.Kind() != reflect.Struct && f.Type.Kind() != reflect.Slice
		}
	}
	return false
}

func parent(key string) string {
	if i := strings.LastIndex(key, "."); i >= 0 {
		return key[:i]
	}
	return ""
}

// knownKeys lists the dotted TOML keys of a config struct type; the keys
// of a list of tables ([[sites]]) are named without an index, as the
// decoder names an unknown one.
func knownKeys(prefix string, t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, prefix+name)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			keys = append(keys, knownKeys(prefix+name+".", ft)...)
		}
	}
	return keys
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
