// Package web embeds the built browser page (web/dist, produced by `make web` with npm and
// Vite) so the front service ships as one binary and serves nothing from a CDN.
package web

import (
	"embed"
	"io/fs"
)

// The all: prefix keeps dist/.keep, so the package compiles before the page is built.
//
//go:embed all:dist
var dist embed.FS

// Dist returns the built page: index.html at its root and hashed assets under assets/.
func Dist() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a literal embedded directory; Sub cannot fail on it.
	}
	return sub
}

// Built reports whether the page has been built into the binary (index.html is present).
func Built() bool {
	_, err := fs.Stat(Dist(), "index.html")
	return err == nil
}
