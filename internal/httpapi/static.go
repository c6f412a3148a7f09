package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

// page is the built browser page.
type page struct {
	files fs.FS  // nil when not built
	index []byte // index.html
	etag  string
	// gzipped holds the compressible files compressed once at start: the bundle is about
	// 600 KB of JavaScript and 200 KB gzipped, and clusters are often reached over slow links.
	gzipped map[string][]byte
}

func loadPage(files fs.FS) (*page, error) {
	if files == nil {
		return &page{}, nil
	}
	index, err := fs.ReadFile(files, "index.html")
	if errors.Is(err, fs.ErrNotExist) {
		return &page{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the page's index.html: %w", err)
	}
	sum := sha256.Sum256(index)
	gzipped, err := compressPage(files)
	if err != nil {
		return nil, err
	}
	return &page{files: files, index: index, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, gzipped: gzipped}, nil
}

// compressPage gzips the page's text files (scripts, styles, SVG) that shrink.
func compressPage(files fs.FS) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch path.Ext(name) {
		case ".js", ".css", ".svg", ".json", ".map":
		default:
			return nil
		}
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level never fails
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		if buf.Len() < len(data) {
			out[name] = buf.Bytes()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compressing the page's files: %w", err)
	}
	return out, nil
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// maxPathEcho bounds the path that a 404 quotes back.
const maxPathEcho = 200

const notBuilt = "The web page is not built into this binary. Run `make web` (npm), then rebuild the service.\n" +
	"The HTTP API (POST /execute, POST /submit, ...) works without it.\n"

// index serves index.html for / and for share links (/s/<id>); the page then reads the
// snippet from /snippets/<id>. It is revalidated on every load, so a new version of the
// service is picked up at once, while its hashed assets are cached for good.
func (s *Server) index(c *gin.Context) {
	if s.page.files == nil {
		c.Header("Cache-Control", "no-store")
		c.Data(http.StatusServiceUnavailable, "text/plain; charset=utf-8", []byte(notBuilt))
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Header("ETag", s.page.etag)
	c.Header("Referrer-Policy", "same-origin")
	// The page loads nothing from another origin and has no inline script or style (the
	// editor uses constructed style sheets), so the policy can be strict; the browser test
	// fails on any violation of it (web/README.md).
	c.Header("Content-Security-Policy", pageCSP)
	if match := c.GetHeader("If-None-Match"); match != "" && strings.Contains(match, s.page.etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", s.page.index)
}

// asset serves a file under assets/. Vite names them by content hash, so they never change
// and may be cached for a year.
func (s *Server) asset(c *gin.Context) {
	name := "assets/" + strings.TrimPrefix(c.Param("path"), "/")
	if !s.serveFile(c, name, "public, max-age=31536000, immutable") {
		s.fail(c, http.StatusNotFound, "no such asset: "+echo(c.Request.URL.Path, maxPathEcho))
	}
}

// noRoute serves other files at the root of the page (favicon and the like), and answers
// 404 JSON for anything else.
func (s *Server) noRoute(c *gin.Context) {
	m := c.Request.Method
	if m == http.MethodGet || m == http.MethodHead {
		name := strings.TrimPrefix(c.Request.URL.Path, "/")
		if !strings.Contains(name, "/") && name != "index.html" && s.serveFile(c, name, "public, max-age=3600") {
			return
		}
	}
	s.fail(c, http.StatusNotFound, "no such route: "+m+" "+echo(c.Request.URL.Path, maxPathEcho))
}

// serveFile serves the regular file name of the page, and reports whether there was one.
func (s *Server) serveFile(c *gin.Context, name, cacheControl string) bool {
	if s.page.files == nil || !fs.ValidPath(name) || path.Clean(name) != name {
		return false
	}
	info, err := fs.Stat(s.page.files, name)
	if err != nil || !info.Mode().IsRegular() {
		return false
	}
	data, err := fs.ReadFile(s.page.files, name)
	if err != nil {
		return false
	}
	c.Header("Cache-Control", cacheControl)
	if gz, ok := s.page.gzipped[name]; ok {
		c.Header("Vary", "Accept-Encoding")
		if acceptsGzip(c.Request) {
			// ServeContent would sniff the type from the compressed bytes; name it first.
			if ctype := mime.TypeByExtension(path.Ext(name)); ctype != "" {
				c.Header("Content-Type", ctype)
			}
			c.Header("Content-Encoding", "gzip")
			data = gz
		}
	}
	// ServeContent sets the type from the extension, and answers HEAD and ranges.
	http.ServeContent(c.Writer, c.Request, name, info.ModTime(), bytes.NewReader(data))
	return true
}
