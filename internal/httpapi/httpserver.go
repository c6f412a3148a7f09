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
	// ReadTimeout covers headers and body: 256 KiB arrive well within it even over a slow
	// forward. (The rest of a refused body has drainTimeout of its own: linger.go.)
	ReadTimeout    = 30 * time.Second
	IdleTimeout    = 2 * time.Minute
	MaxHeaderBytes = 64 << 10
)

// HTTPServer is the http.Server that serves the API. Its Serve closes the connections of
// refused requests with a lingering close (linger.go): use it (or ListenAndServe), not the
// embedded http.Server's.
type HTTPServer struct {
	*http.Server
	lingerer *lingerer
}

// Serve serves the API on ln until Shutdown or Close.
func (h *HTTPServer) Serve(ln net.Listener) error {
	return h.Server.Serve(&lingerListener{Listener: ln, l: h.lingerer})
}

// ListenAndServe listens on h.Addr (":http" when empty) and serves the API there.
func (h *HTTPServer) ListenAndServe() error {
	addr := h.Addr
	if addr == "" {
		addr = ":http"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return h.Serve(ln)
}

// HTTPServer returns the server of the API, with the limits above. base is the context of
// every request; cancelling it cancels the requests and their runs.
func (s *Server) HTTPServer(base context.Context) *HTTPServer {
	return &HTTPServer{
		Server: &http.Server{
			Handler:           s,
			BaseContext:       func(net.Listener) context.Context { return base },
			ConnContext:       connContext,
			ConnState:         connState,
			ReadHeaderTimeout: ReadHeaderTimeout,
			ReadTimeout:       ReadTimeout,
			// A run answers within its bound; the write timeout only catches what escapes it.
			WriteTimeout:   s.MaxBound() + 30*time.Second,
			IdleTimeout:    IdleTimeout,
			MaxHeaderBytes: MaxHeaderBytes,
			// net/http's own complaints: accept errors, a superfluous WriteHeader, a panic.
			ErrorLog: slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
		},
		lingerer: &lingerer{drainBytes: s.drainBytes, drainTimeout: s.drainTimeout, logger: s.opts.Logger},
	}
}
