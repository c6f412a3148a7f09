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
// API answers, and the CodeRun informer has synced. The runtime catalog is reported too.
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
	// The runtime catalog is reported but does not make the replica unready: without the
	// Runtime CRD (Helm does not upgrade CRDs) it never syncs, and Python through /execute
	// works without it. Until it syncs, /runtimes and the Piston and Judge0 APIs answer 503.
	if cs, ok := s.opts.Runtimes.(catalogSync); ok {
		if cs.Synced() {
			checks["runtimes"] = "ok"
		} else {
			checks["runtimes"] = "not synced yet: " + cs.NotSyncedReason()
		}
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
