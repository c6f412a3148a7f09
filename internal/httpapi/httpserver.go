package httpapi

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits of the HTTP server in front of the API. They bound what a slow or hostile client
// can hold: a connection that has not sent its headers after ReadHeaderTimeout is closed
// without an answer; a body still arriving after ReadTimeout gets 408 (or, once the
// answer is out, a closed connection); headers over MaxHeaderBytes (plus net/http's 4 KiB
// of slack) get net/http's own 431, in plain text.
const (
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout covers headers and body: 256 KiB, or a refused body drained up to 16 MiB,
	// arrive well within it even over a slow port-forward.
	ReadTimeout    = 30 * time.Second
	IdleTimeout    = 2 * time.Minute
	MaxHeaderBytes = 64 << 10
)

// HTTPServer returns the http.Server that serves the API, with the limits above. base is
// the context of every request; cancelling it cancels the requests and their runs.
func (s *Server) HTTPServer(base context.Context) *http.Server {
	return &http.Server{
		Handler:           s,
		BaseContext:       func(net.Listener) context.Context { return base },
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		// A run answers within its bound; the write timeout only catches what escapes it.
		WriteTimeout:   s.MaxBound() + 30*time.Second,
		IdleTimeout:    IdleTimeout,
		MaxHeaderBytes: MaxHeaderBytes,
		// net/http's own complaints: accept errors, a superfluous WriteHeader, a panic.
		ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
}
