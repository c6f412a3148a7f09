package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

const (
	requestIDHeader = "X-Request-Id"
	requestIDKey    = "request_id"
	// Handlers set these on the gin context; the request log shows them.
	runNameKey   = "run"
	runReasonKey = "reason"
)

// requestID takes the caller's X-Request-Id when it is a sane token (so one id follows a
// request through proxies), or makes one, and echoes it in the response.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader(requestIDHeader)
	if !validRequestID(id) {
		id = uuid.NewString()
	}
	c.Set(requestIDKey, id)
	c.Header(requestIDHeader, id)
	// Answers are JSON (written without HTML escaping, so curl shows "<" as is) or the
	// page's own files: browsers must not guess other types.
	c.Header("X-Content-Type-Options", "nosniff")
	c.Next()
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':'
		if !ok {
			return false
		}
	}
	return true
}

// observe logs each request as one structured line and counts it in the metrics.
func (s *Server) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	elapsed := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched" // unknown paths must not become label values
	}
	status := c.Writer.Status()
	s.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	s.metrics.requestDuration.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())

	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case route == "/healthz" || route == "/readyz" || route == "/metrics":
		level = slog.LevelDebug // probes and scrapes every few seconds would drown the rest
	}
	attrs := []slog.Attr{
		slog.String("request_id", c.GetString(requestIDKey)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("path", c.Request.URL.Path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.Int("bytes_out", max(c.Writer.Size(), 0)),
		slog.String("client", c.ClientIP()),
	}
	if id := c.GetString(keyIDKey); id != "" { // API keys on: who made the request
		attrs = append(attrs, slog.String("key_id", id))
	}
	if name := c.GetString(runNameKey); name != "" {
		attrs = append(attrs, slog.String("run", name), slog.String("reason", c.GetString(runReasonKey)))
	}
	if errs := c.Errors.String(); errs != "" {
		attrs = append(attrs, slog.String("error", errs))
	}
	s.opts.Logger.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// recover turns a panic in a handler into a 500 JSON answer and an error log line.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // the client went away; net/http handles this one quietly
			}
			_ = c.Error(fmt.Errorf("panic: %v", p))
			s.fail(c, http.StatusInternalServerError, "internal error; the request id is "+c.GetString(requestIDKey))
		}
	}()
	c.Next()
}

// unreadBody marks the connection of a request whose handler left its body unread, so that
// it closes with a lingering close (linger.go) and the client reads its answer.
func (s *Server) unreadBody(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		c.Next()
		return
	}
	// The handlers read through watch, which notes whether they got to the end; net/http
	// keeps its own request, whose body's type decides how it answers.
	watch := &bodyWatch{ReadCloser: r.Body}
	handlerReq := *r
	handlerReq.Body = watch
	c.Request = &handlerReq
	c.Next()
	if !watch.ended {
		if conn, ok := r.Context().Value(lingerConnKey{}).(*lingerConn); ok {
			conn.markUnread(c.GetString(requestIDKey))
		}
	}
}
