package config

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// The TOML decoder reports a value of the wrong kind in Go's words
// ("toml: line 2 (last key "http.listen"): incompatible types: TOML value
// has type int64; destination has type string"). A volunteer wrote the
// file, not the Go types behind it: these say the same in the file's words.
var (
	tomlTypeError = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (?:incompatible types: TOML value has type (.+); destination has type (.+)|type mismatch for .+: expected table but found (.+))$`)
	tomlKinds     = map[string]string{
		"string": "a string", "int64": "a number", "float64": "a number", "bool": "true or false",
		"[]any": "a list", "map[string]any": "a table", "[]map[string]any": "a list of tables",
		"time.Time": "a date", "toml.Local": "a date", "toml.LocalDate": "a date", "toml.LocalTime": "a time", "toml.LocalDatetime": "a date",
	}
	goKinds = map[string]string{
		"string": `a string in "double quotes"`, "integer": "a whole number", "float": "a number",
		"boolean": "true or false", "slice": `a list, such as ["a", "b"]`, "map": "a table",
		"primitive (string-like)": "a string in quotes",
	}
)

// describeTypeError rewrites the decoder's wrong-kind errors; any other
// error is returned as it is.
func describeTypeError(err error) error {
	m := tomlTypeError.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	line, key, got, want := m[1], m[2], m[3], goKinds[m[4]]
	if m[5] != "" {
		got, want = m[5], "a table (["+key+"] on a line of its own)"
	}
	if k, ok := tomlKinds[got]; ok {
		got = k
	}
	if want == "" {
		want = "another kind of value"
	}
	msg := fmt.Sprintf("key %q: want %s, got %s", key, want, got)
	if line != "" {
		msg = "line " + line + ": " + msg
	}
	return errors.New(strings.TrimSpace(msg))
}

// jsonErrorWords says a settings change's decoding error in the change's
// own words: "want true or false, got a string", not "cannot unmarshal
// string into Go value of type bool".
func jsonErrorWords(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return strings.TrimPrefix(err.Error(), "json: ")
	}
	typ := te.Type
	if typ.Kind() == reflect.Pointer { // a TextUnmarshaler is named by its pointer
		typ = typ.Elem()
	}
	var want string
	switch {
	case typ == reflect.TypeOf(Size(0)):
		want = `a string in quotes, such as "4GiB" or "0"`
	case reflect.PointerTo(typ).Implements(reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()):
		want = "a string in quotes"
	default:
		want = kindWords(typ.Kind(), "another kind of value")
	}
	got := te.Value
	switch got {
	case "bool":
		got = "true or false"
	case "array":
		got = "a list"
	case "object":
		got = "an object"
	case "string", "number":
		got = "a " + got
	}
	if strings.HasPrefix(got, "number ") { // "number 1.5" for an integer field
		got = strings.TrimPrefix(got, "number ")
	}
	msg := fmt.Sprintf("want %s, got %s", want, got)
	if te.Field != "" {
		msg = te.Field + ": " + msg
	}
	return msg
}

// kindWords names a Go kind as a JSON value; def for the others.
func kindWords(kind reflect.Kind, def string) string {
	switch kind {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return def
}
