package controllers

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// Metrics of the operator, served with controller-runtime's own on its metrics endpoint.
var (
	runsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coderun_runs_finished_total",
		Help: "Runs that reached a result, by result reason.",
	}, []string{"reason"})

	runWallTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "coderun_run_duration_seconds",
		Help:    "Wall time of programs, from start to exit, by result reason.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
	}, []string{"reason"})

	runLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "coderun_run_latency_seconds",
		Help:    "Time from a CodeRun's creation until its result was recorded (queueing, pod start and run).",
		Buckets: []float64{0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300},
	})

	activeRuns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "coderun_active_runs",
		Help: "Runs holding a run slot (their Job exists and they have no result yet).",
	})

	queueDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "coderun_queue_depth",
		Help: "Runs waiting in phase Queued for a free run slot.",
	})

	jobsCreated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "coderun_jobs_created_total",
		Help: "Jobs the operator created for runs.",
	})
)

func init() {
	metrics.Registry.MustRegister(runsFinished, runWallTime, runLatency, activeRuns, queueDepth, jobsCreated)
}

// recordFinished counts a run that just got its result, in the metrics and in the one log
// line per run that says how it ended. It is called once per run, after the result was
// written.
func recordFinished(ctx context.Context, run *execv1alpha1.CodeRun) {
	res := run.Status.Result
	runsFinished.WithLabelValues(string(res.Reason)).Inc()
	if res.WallTime != nil {
		runWallTime.WithLabelValues(string(res.Reason)).Observe(res.WallTime.Seconds())
	}
	runLatency.Observe(run.Status.CompletionTime.Sub(run.CreationTimestamp.Time).Seconds())
	kv := []any{"reason", res.Reason, "phase", run.Status.Phase}
	if res.ExitCode != nil {
		kv = append(kv, "exitCode", *res.ExitCode)
	}
	if res.WallTime != nil && res.PeakMemory != nil {
		kv = append(kv, "wallTime", res.WallTime.Duration.String(), "peakMemory", res.PeakMemory.String())
	}
	logf.FromContext(ctx).Info("run finished", kv...)
}

// Metrics of warm pools.
var (
	poolMemberGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "coderun_pool_members",
		Help: "Members of each CodeRunPool by state: idle (waiting, started or starting), ready (idle and running), claimed (running a program).",
	}, []string{"pool", "state"})

	poolMembersCreated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coderun_pool_members_created_total",
		Help: "Member Jobs created for each CodeRunPool.",
	}, []string{"pool"})

	poolClaims = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coderun_pool_claims_total",
		Help: "How runs were started: warm (a member took it), cold-no-member (a pool fits but had no ready member), cold-shape (no pool fits), retried (a delivery failed before the program was sent and the run went on elsewhere).",
	}, []string{"outcome"})

	claimLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "coderun_pool_claim_to_result_seconds",
		Help:    "Time from claiming a member until the run's result was read from the attach stream.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
)

func init() {
	metrics.Registry.MustRegister(poolMemberGauge, poolMembersCreated, poolClaims, claimLatency)
}
