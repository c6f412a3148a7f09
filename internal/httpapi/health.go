package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz says the process is alive and serving; it checks nothing else, so that a slow
// database or API server never gets the pod restarted.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether this replica can serve runs: the database answers, the Kubernetes
// API answers, and the CodeRun informer has synced.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := gin.H{}
	ready := true
	check := func(name string, err error) {
		if err != nil {
			checks[name] = err.Error()
			ready = false
			return
		}
		checks[name] = "ok"
	}
	check("database", s.opts.Store.Ping(ctx))
	check("kubernetes", s.opts.Runs.Ping(ctx))
	if s.opts.Runs.Synced() {
		checks["informer"] = "ok"
	} else {
		checks["informer"] = "not synced yet"
		ready = false
	}
	if s.draining.Load() {
		checks["server"] = "shutting down"
		ready = false
	}
	if !ready {
		c.JSON(http.StatusServiceUnavailable, gin.H{"error": "not ready", "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks})
}
