// Package clocale normalises a "C.UTF-8"-style locale to plain "C" before
// Fyne's language package initialises: Fyne cannot parse "C.UTF-8" (the
// default on Debian servers and containers) and logs an error on every start,
// even of a headless node. Go itself ignores the locale.
//
// It must initialise before fyne.io/fyne/v2/lang: Go initialises packages in
// import-path order among those whose imports are ready, and this path sorts
// before every module the Fyne language package depends on.
package clocale

import (
	"os"
	"strings"
)

func init() {
	for _, env := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := os.Getenv(env)
		if v == "" {
			continue
		}
		if strings.HasPrefix(v, "C.") || strings.HasPrefix(v, "POSIX.") {
			os.Setenv(env, "C")
		}
		return
	}
}
