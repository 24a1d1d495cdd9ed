package httpcache

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// FuzzVary feeds an origin's Vary line and a visitor's value for the field
// it names. Parsing never panics; the fields come back canonical, sorted,
// unique and never empty (or "*" alone); the secondary key tells an absent
// field from a present one and ignores whitespace around the visitor's
// list items, so equal requests share a stored variant.
func FuzzVary(f *testing.F) {
	for _, s := range [][2]string{
		{"Accept-Encoding", "gzip, br"}, {"accept-encoding, ACCEPT-ENCODING,", "gzip"}, {"*", ""},
		{"Accept-Language, *", "de"}, {" , ,", ""}, {"X-A,X-B", "a , b"}, {"\x00,\xff", "\t"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, vary, val string) {
		fields, star := VaryFields(http.Header{"Vary": {vary}})
		if star {
			if fields != nil {
				t.Fatalf("Vary %q: star with fields %q", vary, fields)
			}
			return
		}
		if !slices.IsSorted(fields) || len(slices.Compact(slices.Clone(fields))) != len(fields) {
			t.Fatalf("Vary %q: fields %q not sorted and unique", vary, fields)
		}
		for _, fl := range fields {
			if fl == "" || fl == "*" || fl != http.CanonicalHeaderKey(fl) {
				t.Fatalf("Vary %q: field %q", vary, fl)
			}
		}
		if len(fields) == 0 {
			return
		}
		absent := VaryValues(fields, http.Header{})
		present := VaryValues(fields, http.Header{fields[0]: {val}})
		if absent == present {
			t.Fatalf("Vary %q: absent and present %q give the same key %q", vary, val, absent)
		}
		spaced := strings.ReplaceAll(val, ",", " , ")
		if a, b := present, VaryValues(fields, http.Header{fields[0]: {spaced}}); a != b {
			t.Fatalf("Vary %q: %q and %q give keys %q and %q", vary, val, spaced, a, b)
		}
	})
}

// entityTag is RFC 9110's entity-tag; group 1 is its opaque part.
var entityTag = regexp.MustCompile(`^(?:W/)?("[\x21\x23-\x7e\x80-\xff]*")$`)

// FuzzETag feeds a visitor's If-None-Match and a stored ETag. Nothing
// panics; only a 200 is ever answered 304; a tag always matches itself,
// weak or strong (when it is a well-formed entity-tag); "*" matches any stored 200; and when both carry a tag,
// whether a 304 applies does not depend on which side holds which.
func FuzzETag(f *testing.F) {
	for _, s := range [][2]string{
		{`"a"`, `"a"`}, {`W/"a"`, `"a"`}, {`"a", "b,c"`, `"b,c"`}, {"*", `"x"`}, {`"`, `"`},
		{`W/`, `W/`}, {`"a",,`, `"a"`}, {"", `"a"`},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, inm, etag string) {
		req := http.Header{"If-None-Match": {inm}}
		stored := http.Header{"Etag": {etag}}
		if NotModified(req, http.StatusPartialContent, stored) {
			t.Fatalf("If-None-Match %q answered a 206 with 304", inm)
		}
		nm := NotModified(req, http.StatusOK, stored)
		if entityTag.MatchString(etag) && inm == etag && !nm {
			t.Fatalf("If-None-Match %q did not match the same stored tag", inm)
		}
		for _, tag := range splitETags(inm) {
			if tag == "*" && !nm {
				t.Fatalf("If-None-Match %q holds * but did not match", inm)
			}
		}
		if m := entityTag.FindStringSubmatch(etag); m != nil && (!weakEqual(etag, "W/"+m[1]) || !weakEqual(etag, m[1])) {
			t.Fatalf("ETag %q does not match its weak form", etag)
		}
		if inm == "" || etag == "" {
			return // a 304 without a tag applies by its other validators
		}
		a := Matches304(stored, http.Header{"Etag": {inm}})
		b := Matches304(http.Header{"Etag": {inm}}, stored)
		if a != b {
			t.Fatalf("Matches304 not symmetric for %q and %q", inm, etag)
		}
	})
}
