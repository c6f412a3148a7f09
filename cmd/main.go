// Command coderun-operator runs the CodeRun controller: it turns each CodeRun into a
// locked-down Job and records the program's result in the CodeRun's status.
package main

import (
	"flag"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/controllers"
	"github.com/coderun-dev/coderun/internal/config"
)

func main() {
	var (
		configPath, metricsAddr, probeAddr, namespaces, pprofAddr string
		leaderElect                                               bool
		reconcilers                                               int
	)
	flag.StringVar(&configPath, "config", "", "Path of the operator's configuration file (YAML); defaults apply when empty.")
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "Address of Go's /debug/pprof endpoints (profiling the operator at scale); empty turns them off.")
	flag.StringVar(&namespaces, "namespaces", "", "Comma-separated namespaces whose CodeRuns to run; empty means all.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader, so that several replicas can run with one active.")
	// A reconcile mostly waits for the API server (creating a Job, writing a status), so the
	// operator can finish at most about reconcilers / (3 writes x write latency) runs a
	// second: with 4, and writes taking 0.3 s on a busy API server, 4 runs a second, far
	// below what 1,000 run slots can do (make test-scale). 16 keeps that bound above the
	// API server's own.
	flag.IntVar(&reconcilers, "max-concurrent-reconciles", 16, "CodeRuns reconciled in parallel.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")

	cfg, err := config.Load(configPath)
	if err != nil {
		log.Error(err, "loading configuration")
		os.Exit(1)
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(execv1alpha1.AddToScheme(scheme))

	// Only run Jobs and pods, trimmed to what the operator reads (controllers/cache.go).
	cacheOpts := controllers.CacheOptions()
	if namespaces != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range strings.Split(namespaces, ",") {
			cacheOpts.DefaultNamespaces[strings.TrimSpace(ns)] = cache.Config{}
		}
	}

	restConfig := ctrl.GetConfigOrDie()
	// Every run costs the operator a few writes (a Job or a claim, a status, a pool member
	// to replace it); client-go's default of 20 requests a second would queue a burst of
	// runs behind the operator's own rate limiter rather than the API server.
	restConfig.QPS, restConfig.Burst = 100, 200
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		LeaderElection:         leaderElect,
		LeaderElectionID:       "operator.exec.coderun.dev",
		// Stop reconciling at once when leadership is lost, so two leaders never overlap.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "creating manager")
		os.Exit(1)
	}
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		log.Error(err, "creating clientset")
		os.Exit(1)
	}

	reconciler := &controllers.CodeRunReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder(execv1alpha1.ManagedByOperator),
		Config:    cfg,
		Logs:      controllers.PodLogReader{Clientset: clientset},
		Attacher:  controllers.PodAttacher{Config: restConfig, Clientset: clientset},
	}
	if err := reconciler.SetupWithManager(mgr, reconcilers); err != nil {
		log.Error(err, "setting up the CodeRun controller")
		os.Exit(1)
	}
	utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
	utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))

	log.Info("starting operator", "runnerImage", cfg.RunnerImage, "maxConcurrentRuns", cfg.MaxConcurrentRuns,
		"namespaces", namespaces, "leaderElect", leaderElect, "manageRuntimes", cfg.ManageRuntimes, "smokeTestNamespace", cfg.SmokeTestNamespace)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "running manager")
		os.Exit(1)
	}
}
