package coralurl

import (
	"net/url"
	"strings"
)

// SiteOf is the origin host of a canonical URL in lower case ("" when it
// has none): the name the volunteer's usage record and caps count an
// object's bytes under.
func SiteOf(canonical string) string {
	u, err := url.Parse(canonical)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
