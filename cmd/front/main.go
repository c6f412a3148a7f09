// Command coderun-front is coderun's web front: the browser page and the HTTP API
// (POST /execute, POST /submit, submissions and shared snippets). It runs programs by
// creating CodeRuns for the operator and keeps submissions in SQLite or Postgres.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/httpapi"
	"github.com/coderun-dev/coderun/internal/runs"
	"github.com/coderun-dev/coderun/internal/runtimes"
	"github.com/coderun-dev/coderun/internal/store"
	"github.com/coderun-dev/coderun/web"
)

type flags struct {
	listenAddress   string
	namespace       string
	database        string
	operatorConfig  string
	maxPending      int
	maxBodyBytes    int64
	queueWait       time.Duration
	runRetention    time.Duration
	shutdownTimeout time.Duration
	logLevel        string
	auth            authFlags
}

func parseFlags(fs *flag.FlagSet, args []string) (flags, error) {
	var f flags
	fs.StringVar(&f.listenAddress, "listen-address", ":8080", "Address of the page, the API, /healthz, /readyz and /metrics.")
	fs.StringVar(&f.namespace, "namespace", "coderun-runs", "Namespace where CodeRuns are created (the operator's runs namespace).")
	fs.StringVar(&f.database, "database", "/var/lib/coderun/coderun.db", "SQLite file, or a postgres:// (postgresql://) URL to use Postgres. Prefer the CODERUN_DATABASE environment variable for a URL with a password.")
	fs.StringVar(&f.operatorConfig, "operator-config", "", "Path of the operator's configuration (YAML) for default and maximum limits; the operator's defaults when empty.")
	fs.IntVar(&f.maxPending, "max-pending", httpapi.DefaultMaxPending, "Runs this replica waits for at once; more get 503 with Retry-After.")
	fs.Int64Var(&f.maxBodyBytes, "max-body-bytes", httpapi.DefaultMaxBodyBytes, "Largest request body; larger ones get 413.")
	fs.DurationVar(&f.queueWait, "queue-wait", httpapi.DefaultQueueWait, "How long a run may wait for a slot in the operator's queue before it is given up (504).")
	fs.DurationVar(&f.runRetention, "run-retention", 10*time.Minute, "How long finished CodeRuns of this service stay in the cluster; 0 deletes them once read.")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 25*time.Second, "On SIGTERM, how long running requests may finish before their runs are cancelled.")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error.")
	f.auth.register(fs)
	// Every flag may also come from the environment: --max-pending from CODERUN_MAX_PENDING.
	var envErr error
	fs.VisitAll(func(fl *flag.Flag) {
		name := "CODERUN_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := fl.Value.Set(v); err != nil {
				envErr = fmt.Errorf("environment variable %s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return f, envErr
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.maxPending < 1 || f.maxBodyBytes < 1024 || f.queueWait <= 0 || f.runRetention < 0 || f.shutdownTimeout < 0 {
		return f, errors.New("--max-pending must be at least 1, --max-body-bytes at least 1024, --queue-wait positive, and durations not negative")
	}
	if err := f.auth.validate(); err != nil {
		return f, err
	}
	return f, nil
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "keys" {
		os.Exit(keysCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	// ctrl's config loader registers --kubeconfig on the default flag set.
	f, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "--log-level: %v\n", err)
		os.Exit(2)
	}
	handler := slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})
	log := slog.New(handler)
	slog.SetDefault(log)
	// controller-runtime and client-go log through the same JSON handler.
	ctrl.SetLogger(logr.FromSlogHandler(handler))
	klog.SetSlogLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err = run(ctx, f, log, nil)
	stop()
	if err != nil {
		log.Error("coderun-front stopped", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGTERM), then shuts down gracefully. listening, if not nil,
// is told the address once the service accepts connections.
func run(ctx context.Context, f flags, log *slog.Logger, listening func(net.Addr)) error {
	cfg, err := config.Load(f.operatorConfig)
	if err != nil {
		return fmt.Errorf("loading the operator's configuration: %w", err)
	}
	keys, anonymous, err := f.auth.keys()
	if err != nil {
		return err
	}

	openCtx, cancelOpen := context.WithTimeout(ctx, 30*time.Second)
	db, err := store.Open(openCtx, f.database)
	cancelOpen()
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("closing the database", "error", err)
		}
	}()

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	// Each run costs a create and maybe a delete; let a full --max-pending burst through.
	restConfig.QPS = float32(max(20, f.maxPending))
	restConfig.Burst = 2 * max(20, f.maxPending)
	restConfig.UserAgent = "coderun-front"
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(execv1alpha1.AddToScheme(scheme))

	// The runs client outlives the HTTP server a little: requests still waiting when
	// shutdown gives up are cancelled, and their CodeRuns deleted, through it.
	runsCtx, stopRuns := context.WithCancel(context.Background())
	defer stopRuns()
	runsClient, err := runs.New(runsCtx, restConfig, scheme, runs.Options{
		Namespace: f.namespace, Retention: f.runRetention, Logger: log.With("component", "runs"),
	})
	if err != nil {
		return err
	}
	runsDone := make(chan error, 1)
	go func() { runsDone <- runsClient.Start(runsCtx) }()
	// The languages there are (GET /runtimes, the Piston and Judge0 APIs). Without the
	// Runtime CRD the catalog stays empty and the rest of the service works on.
	catalog := runtimes.NewCatalog(restConfig, scheme, runtimes.CatalogOptions{Logger: log.With("component", "runtimes")})
	catalogDone := make(chan struct{})
	go func() {
		defer close(catalogDone)
		if err := catalog.Start(runsCtx); err != nil {
			log.Error("the runtime catalog stopped; GET /runtimes and the Piston and Judge0 APIs see no languages", "error", err)
		}
	}()

	var page = web.Dist()
	if !web.Built() {
		log.Warn("the web page is not built into this binary (run `make web`); / answers 503, the API works")
	}
	api, err := httpapi.New(httpapi.Options{
		Runs: runsClient, Store: db, Config: cfg, Runtimes: catalog,
		MaxPending: f.maxPending, MaxBodyBytes: f.maxBodyBytes, QueueWait: f.queueWait,
		Page: page, Logger: log,
		Keys: keys, Anonymous: anonymous, TrustedProxies: f.auth.proxies(),
	})
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer f.auth.watchKeys(watchCtx, keys, log.With("component", "auth"), api.KeysReloaded)()
	defer stopWatch()
	if keys != nil {
		log.Info("API keys on", "file", f.auth.keysFile, "keys", keys.Len(), "anonymous", anonymous != nil, "trustedProxies", f.auth.proxies())
	}

	// Requests get a context that is cancelled when a graceful shutdown runs out of time,
	// so that their runs are deleted rather than left behind.
	requestsCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	// No Addr: the server serves the listener opened below, whose address tests choose.
	// Its timeouts and header limit are the API's (httpapi.HTTPServer), which its tests
	// of hostile clients use too.
	srv := api.HTTPServer(requestsCtx)
	ln, err := net.Listen("tcp", f.listenAddress)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", f.listenAddress, err)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	if listening != nil {
		listening(ln.Addr())
	}
	log.Info("coderun-front serving", "address", ln.Addr().String(), "namespace", f.namespace,
		"database", databaseKind(f.database), "maxPending", f.maxPending, "maxBound", api.MaxBound().String(),
		"defaultLimits", cfg.DefaultLimits, "maxLimits", cfg.MaxLimits, "page", web.Built())

	select {
	case err := <-serveDone:
		return fmt.Errorf("serving HTTP: %w", err)
	case err := <-runsDone:
		return fmt.Errorf("watching CodeRuns stopped: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down: finishing running requests", "timeout", f.shutdownTimeout.String())
	api.SetDraining()
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), f.shutdownTimeout)
	defer cancelShutdown()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("requests still running at the shutdown timeout; cancelling their runs", "error", err)
		cancelRequests()
		// Give the handlers a moment to delete their CodeRuns, then close what is left.
		time.Sleep(2 * time.Second)
		_ = srv.Close()
	}
	// Judge0 submissions still running in the background stop waiting; their CodeRuns run
	// on, and the next read of their token collects the result (they are keyed by it).
	api.Close()
	stopRuns()
	if err := <-runsDone; err != nil {
		log.Error("stopping the CodeRun watch", "error", err)
	}
	<-catalogDone
	log.Info("coderun-front stopped")
	return nil
}

// databaseKind names the database for logs without its credentials.
func databaseKind(dsn string) string {
	if store.IsPostgres(dsn) {
		return "postgres"
	}
	return "sqlite:" + dsn
}
