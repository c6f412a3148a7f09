package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/coderun-dev/coderun/internal/auth"
)

// metrics of the front service, on its own registry (served at /metrics).
type metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	runs            *prometheus.CounterVec
	runsInFlight    prometheus.Gauge
	runsRefused     prometheus.Counter
	// authRefusals counts 401 and 429 answers by key id (a fixed word for requests with
	// no key or an unknown one: never what a client sent) and reason.
	authRefusals *prometheus.CounterVec
	keyReloads   *prometheus.CounterVec
}

// Run outcomes counted in coderun_front_runs_total besides the result reasons.
const (
	outcomeCancelled     = "Cancelled"     // the client went away; the CodeRun was deleted
	outcomeBoundExceeded = "BoundExceeded" // no result within the bound; answered 504
	outcomeError         = "Error"         // the CodeRun could not be created
)

// newMetrics returns the service's metrics; keys, when not nil, adds the number of keys loaded.
func newMetrics(keys *auth.Keyring) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coderun_front_http_requests_total",
			Help: "HTTP requests answered, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "coderun_front_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route (runs include queueing and pod start).",
			Buckets: []float64{0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"method", "route"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "coderun_front_runs_total",
			Help: "Runs requested through /execute and /submit, by result reason, or Cancelled, BoundExceeded, Error.",
		}, []string{"reason"}),
		runsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coderun_front_runs_in_flight",
			Help: "Runs this replica is waiting for.",
		}),
		runsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "coderun_front_runs_refused_total",
			Help: "Runs refused with 503 because --max-pending runs were already in flight.",
		}),
	}
	m.authRefusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coderun_front_auth_refusals_total",
		Help: "Requests refused by API key authentication (401: reason unauthenticated, key_id none or unknown) or quotas (429: reason rate or in_flight), by key id.",
	}, []string{"key_id", "reason"})
	m.keyReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coderun_front_api_key_reloads_total",
		Help: "Times the changed API key file was read, by result (loaded, or error: the keys stayed as they were).",
	}, []string{"result"})
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.runs, m.runsInFlight, m.runsRefused, m.authRefusals,
	)
	if keys != nil {
		m.registry.MustRegister(m.keyReloads, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "coderun_front_api_keys",
			Help: "API keys loaded from the key file.",
		}, func() float64 { return float64(keys.Len()) }))
	}
	return m
}
