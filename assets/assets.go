// Package assets holds the files Coral embeds in its binary: the icon and the
// templates of the pages the node serves (the status page, the proxy's own
// pages for visitors).
package assets

import (
	"embed"
	_ "embed"
)

// Web holds the HTML templates under web/.
//
//go:embed web
var Web embed.FS

// Icon is the application icon (PNG), used by the GUI and packaging.
//
//go:embed icon.png
var Icon []byte
