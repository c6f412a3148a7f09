// Package httpapi is the front service's HTTP API: /execute and /submit run Python
// through CodeRuns, /submissions and /snippets read and write the database, and the
// browser page is served from the binary. Every error is a JSON {"error": "..."}.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/auth"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/store"
)

// Runner creates a CodeRun and waits for its result (internal/runs.Client).
type Runner interface {
	Run(ctx context.Context, spec execv1alpha1.CodeRunSpec, bound time.Duration) (*execv1alpha1.CodeRun, error)
	// Ping checks that the Kubernetes API answers.
	Ping(ctx context.Context) error
	// Synced reports whether the informer has listed the existing CodeRuns.
	Synced() bool
}

// RuntimeLister lists the cluster's Runtimes (internal/runtimes.Catalog, from an informer).
type RuntimeLister interface {
	Runtimes() []execv1alpha1.Runtime
}

// Defaults of Options.
const (
	DefaultMaxPending   = 32
	DefaultMaxBodyBytes = 256 << 10
	DefaultQueueWait    = 2 * time.Minute
	DefaultSlack        = 15 * time.Second
)

// Options configure the API.
type Options struct {
	Runs  Runner
	Store *store.Store
	// Runtimes lists the languages there are, for /runtimes and the Piston and Judge0 APIs.
	Runtimes RuntimeLister
	// Config is the operator's configuration: default and maximum limits, start timeout.
	// config.Load has validated it.
	Config config.Config
	// MaxPending is how many runs this replica waits for at once; more get 503.
	MaxPending int
	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int64
	// QueueWait is how long a run may wait for a slot in the operator's queue. A run's
	// bound is QueueWait + Config.StartTimeout + its timeout + Slack.
	QueueWait time.Duration
	Slack     time.Duration
	// Page is the built web page (index.html, assets/); nil or without index.html, the
	// page answers 503.
	Page fs.FS
	// Keys, when not nil, turns API keys on: /execute, /submit, /submissions and /snippets
	// need a key of the keyring (or anonymous access) within its quota, and a key reads
	// only its own submissions. Nil: keys off, the API is open (auth.go).
	Keys *auth.Keyring
	// Anonymous, with Keys, lets requests without a key through as "anonymous", limited
	// per client address (nil: they get 401).
	Anonymous *auth.AddressQuotas
	// TrustedProxies are the addresses and CIDR ranges of proxies whose X-Forwarded-For
	// (or X-Real-IP) names the client; from any other peer these headers are ignored.
	// None by default: the peer is the client.
	TrustedProxies []string
	Logger         *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	opts     Options
	engine   *gin.Engine
	metrics  *metrics
	pending  chan struct{} // a slot per run in flight
	draining atomic.Bool
	page     *page
	// anonymous is Options.Anonymous when keys are on; nil otherwise.
	anonymous *auth.AddressQuotas
	// judge0 runs the Judge0 API's submissions in the background (judge0.go); Close stops it.
	judge0 *judge0Worker
	// drainBytes and drainTimeout bound how much of a refused body is read after the
	// answer, and for how long (linger.go); tests lower them.
	drainBytes   int64
	drainTimeout time.Duration
}

// New returns the API with its routes.
func New(opts Options) (*Server, error) {
	if opts.Runs == nil || opts.Store == nil {
		return nil, errors.New("httpapi: Runs and Store are required")
	}
	if max := opts.Config.MaxLimits; max.TimeoutSeconds == nil || max.Memory == nil || max.CPU == nil {
		return nil, errors.New("httpapi: Config has no maxLimits; use config.Load or config.Default")
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.QueueWait <= 0 {
		opts.QueueWait = DefaultQueueWait
	}
	if opts.Slack <= 0 {
		opts.Slack = DefaultSlack
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := checkProxies(opts.TrustedProxies); err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	pg, err := loadPage(opts.Page)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:    opts,
		metrics: newMetrics(opts.Keys),
		pending: make(chan struct{}, opts.MaxPending),
		page:    pg,

		drainBytes:   maxDrainBytes,
		drainTimeout: drainTimeout,
	}
	if opts.Keys != nil {
		s.anonymous = opts.Anonymous
	}
	s.engine = s.routes()
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// SetDraining makes /readyz fail, so that load balancers stop sending requests while the
// service finishes the ones it has.
func (s *Server) SetDraining() { s.draining.Store(true) }

// MaxBound is the longest any run is waited for: with the largest timeout allowed.
func (s *Server) MaxBound() time.Duration {
	return s.bound(s.opts.Config.MaxLimits)
}

// bound is how long a run with limits is waited for before it is given up.
func (s *Server) bound(limits execv1alpha1.Limits) time.Duration {
	timeout := time.Duration(*s.opts.Config.Effective(limits).TimeoutSeconds) * time.Second
	return s.opts.QueueWait + s.opts.Config.StartTimeout.Duration + timeout + s.opts.Slack
}

func (s *Server) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RemoveExtraSlash = true
	// Clients connect directly or through the cluster's Service: forwarding headers are
	// trusted only from the proxies configured (none by default), so that a client cannot
	// pick the address its anonymous quota and the logs go by. New checked them.
	_ = r.SetTrustedProxies(s.opts.TrustedProxies)
	// unreadBody comes first, so that whatever refuses a request after it, the refusal is
	// readable by a client still sending its body.
	r.Use(s.unreadBody, s.requestID, s.observe, s.recover)

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{})))

	// With API keys on, these need a key; the page, the probes and /metrics never do.
	r.POST("/execute", s.gate(true, s.execute)...)
	r.POST("/submit", s.gate(true, s.submit)...)
	r.GET("/submissions", s.gate(false, s.listSubmissions)...)
	r.GET("/submissions/:id", s.gate(false, s.getSubmission)...)
	r.POST("/snippets", s.gate(false, s.createSnippet)...)
	r.GET("/snippets/:id", s.gate(false, s.getSnippet)...)
	r.GET("/runtimes", s.gate(false, s.listRuntimes)...)

	// The Piston v2 API under /api/v2 (piston.go), and the Judge0 CE API under /judge0
	// (judge0.go): its paths would clash with /submissions above.
	s.pistonRoutes(r)
	s.judge0Routes(r)

	r.GET("/", s.index)
	r.HEAD("/", s.index)
	r.GET("/s/:id", s.index)
	r.GET("/assets/*path", s.asset)
	r.HEAD("/assets/*path", s.asset)
	r.NoRoute(s.noRoute)
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, http.StatusMethodNotAllowed, "method "+c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})
	return r
}

// fail answers an error as {"error": message}.
func (s *Server) fail(c *gin.Context, status int, message string) {
	c.AbortWithStatusJSON(status, gin.H{"error": message})
}

func (s *Server) failWith(c *gin.Context, err *apiError) {
	s.fail(c, err.Status, err.Message)
}
