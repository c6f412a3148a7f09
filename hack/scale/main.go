// Command scale drives `make test-scale` (hack/test-scale.sh starts the control plane, kwok
// and the operator, then runs it). It creates -n CodeRuns in waves and measures the
// operator: throughput (runs/s from the first creation to the last result), latency, its
// peak RSS (VmHWM) and CPU (utime+stime), that no more pods run at once than the
// configured bound (maxConcurrentRuns), and how long TTL cleanup takes to remove every
// Job and pod after the last result. Then it runs as many plain Jobs of the same pod shape
// (the Job the operator would create, controllers.JobForRun) through the same cluster in
// the same waves, and prints a table and the ratio of the two throughputs.
//
// kwok plays the nodes: a Stage ends every Job's pod after a short delay with exit code 0
// and a runner report as its termination message (-print-stages writes the stages), so
// every CodeRun must end Completed with that report's output; any other result counts as
// wrong. It exits 1 when a result is wrong, a phase does not finish in time, or the bound
// was exceeded; a missed throughput or memory goal is a result, printed, not a failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/controllers"
	"github.com/coderun-dev/coderun/internal/config"
)

// labelPlain marks the scale test's plain Jobs and their pods.
const labelPlain = "scale.coderun.dev/plain"

const source = "print('hi')\n"

type options struct {
	kubeconfig, namespace, operatorConfig, metricsURL string
	n, wave, operatorPID, creators                    int
	phaseTimeout, cleanupTimeout                      time.Duration
}

func main() {
	var o options
	var printStages bool
	var delayMs, jitterMs int
	flag.StringVar(&o.namespace, "namespace", "scale", "namespace of the CodeRuns and Jobs")
	flag.StringVar(&o.operatorConfig, "operator-config", "", "the operator's configuration file (its bound and the pod shape of plain Jobs)")
	flag.StringVar(&o.metricsURL, "metrics-url", "", "the operator's metrics endpoint")
	flag.IntVar(&o.n, "n", envInt("SCALE_N", 10000), "CodeRuns, and plain Jobs, to run (env SCALE_N)")
	flag.IntVar(&o.wave, "wave", envInt("SCALE_WAVE", 1000), "objects per wave; the next wave starts once at most half a wave is unfinished (env SCALE_WAVE)")
	flag.IntVar(&o.operatorPID, "operator-pid", 0, "PID of the operator process")
	flag.IntVar(&o.creators, "creators", 8, "objects created in parallel")
	flag.DurationVar(&o.phaseTimeout, "phase-timeout", 20*time.Minute, "time allowed for one phase's objects to finish")
	flag.DurationVar(&o.cleanupTimeout, "cleanup-timeout", 10*time.Minute, "time allowed for TTL cleanup after a phase")
	flag.BoolVar(&printStages, "print-stages", false, "print the kwok stages (YAML) and exit")
	flag.IntVar(&delayMs, "delay-ms", 500, "with -print-stages: how long a pod runs before the stage ends it")
	flag.IntVar(&jitterMs, "jitter-ms", 500, "with -print-stages: up to this much longer, at random")
	flag.Parse()
	// controller-runtime defines -kubeconfig (the scale cluster's) already.
	o.kubeconfig = flag.Lookup("kubeconfig").Value.String()

	if printStages {
		out, err := stagesYAML(delayMs, jitterMs)
		if err != nil {
			fatal(err)
		}
		fmt.Print(out)
		return
	}
	// client-go's reflectors log through controller-runtime's logger: klog's, to stderr.
	ctrllog.SetLogger(klog.NewKlogr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "scale:", err)
	os.Exit(1)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s scale: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// phaseResult is what one phase measured.
type phaseResult struct {
	name                 string
	n, finished, wrong   int
	elapsed              time.Duration
	p50, p99             time.Duration
	maxLive              int
	maxActive, maxQueued float64
	cleanup              time.Duration
	cleanedUp            bool
	cpu                  time.Duration
	hwm                  int64
	// writes counts the API server's writes in the phase, through its cleanup, by
	// resource (and subresource): what a CodeRun costs the control plane beyond its Job.
	writes map[string]float64
}

// writesPerItem is the phase's API writes divided by its objects.
func (p phaseResult) writesPerItem() float64 {
	total := 0.0
	for _, n := range p.writes {
		total += n
	}
	if p.n == 0 {
		return 0
	}
	return total / float64(p.n)
}

func (p phaseResult) throughput() float64 {
	if p.elapsed <= 0 {
		return 0
	}
	return float64(p.finished) / p.elapsed.Seconds()
}

type driver struct {
	kube      kubernetes.Interface
	o         options
	cfg       config.Config
	c         client.Client
	runs      *tracker
	plainJobs *tracker
}

func run(ctx context.Context, o options) error {
	cfg, err := config.Load(o.operatorConfig)
	if err != nil {
		return err
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	// The driver must never be what limits the rate.
	restConfig.QPS, restConfig.Burst = 1000, 2000
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := execv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("creating clientset: %w", err)
	}
	d := &driver{kube: kube, o: o, cfg: cfg, c: c, runs: newTracker(), plainJobs: newTracker()}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.namespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", o.namespace, err)
	}
	informers, err := cache.New(restConfig, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{o.namespace: {}},
		// The driver needs names, phases, conditions and results only.
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return fmt.Errorf("creating informers: %w", err)
	}
	if err := d.watch(ctx, informers); err != nil {
		return err
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		return errors.New("informers did not sync")
	}

	progress("%d CodeRuns in waves of %d; the operator admits at most %d at once", o.n, o.wave, cfg.MaxConcurrentRuns)
	runs, err := d.phase(ctx, "CodeRuns", d.runs, d.createRun)
	if err != nil {
		return err
	}
	progress("%d plain Jobs of the same pod shape, in the same waves", o.n)
	jobs, err := d.phase(ctx, "plain Jobs", d.plainJobs, d.createPlainJob)
	if err != nil {
		return err
	}
	final, err := readProc(o.operatorPID)
	if err != nil {
		return err
	}
	printTable(runs, jobs, cfg.MaxConcurrentRuns)
	ratio := 0.0
	if jobs.throughput() > 0 {
		ratio = runs.throughput() / jobs.throughput()
	}
	fmt.Printf("ratio CodeRun/Job throughput: %.2f\n", ratio)
	fmt.Printf("operator peak RSS: %.0f MiB\n", mib(final.hwm))

	var problems []error
	for _, p := range []phaseResult{runs, jobs} {
		if p.wrong > 0 {
			problems = append(problems, fmt.Errorf("%s: %d wrong results", p.name, p.wrong))
		}
		if p.finished < p.n {
			problems = append(problems, fmt.Errorf("%s: only %d of %d finished", p.name, p.finished, p.n))
		}
		if !p.cleanedUp {
			problems = append(problems, fmt.Errorf("%s: Jobs or pods were left after TTL cleanup's %s", p.name, o.cleanupTimeout))
		}
	}
	if runs.maxLive > cfg.MaxConcurrentRuns || runs.maxActive > float64(cfg.MaxConcurrentRuns) {
		problems = append(problems, fmt.Errorf("the bound of %d runs was exceeded: %d run pods at once, %.0f admitted runs",
			cfg.MaxConcurrentRuns, runs.maxLive, runs.maxActive))
	}
	return errors.Join(problems...)
}

// watch routes the informers' events to the trackers.
func (d *driver) watch(ctx context.Context, informers cache.Cache) error {
	runInf, err := informers.GetInformer(ctx, &execv1alpha1.CodeRun{})
	if err != nil {
		return err
	}
	onRun := func(obj any) {
		if run, ok := obj.(*execv1alpha1.CodeRun); ok && run.Status.Result != nil {
			d.runs.finish(run.Name, wrongResult(run.Status.Result))
		}
	}
	if _, err := runInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc: onRun, UpdateFunc: func(_, obj any) { onRun(obj) },
	}); err != nil {
		return err
	}
	jobInf, err := informers.GetInformer(ctx, &batchv1.Job{})
	if err != nil {
		return err
	}
	onJob := func(obj any, deleted bool) {
		job, ok := obj.(*batchv1.Job)
		if !ok {
			if tomb, isTomb := obj.(toolscache.DeletedFinalStateUnknown); isTomb {
				job, ok = tomb.Obj.(*batchv1.Job)
			}
		}
		if !ok {
			return
		}
		t := d.trackerOf(job.Labels)
		if t == nil {
			return
		}
		t.job(job, deleted)
		if t == d.plainJobs && !deleted {
			for _, c := range job.Status.Conditions {
				if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
					wrong := ""
					if c.Type == batchv1.JobFailed {
						wrong = "Job failed: " + c.Reason + ": " + c.Message
					}
					t.finish(job.Name, wrong)
				}
			}
		}
	}
	if _, err := jobInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { onJob(obj, false) },
		UpdateFunc: func(_, obj any) { onJob(obj, false) },
		DeleteFunc: func(obj any) { onJob(obj, true) },
	}); err != nil {
		return err
	}
	podInf, err := informers.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return err
	}
	onPod := func(obj any, deleted bool) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			if tomb, isTomb := obj.(toolscache.DeletedFinalStateUnknown); isTomb {
				pod, ok = tomb.Obj.(*corev1.Pod)
			}
		}
		if ok {
			if t := d.trackerOf(pod.Labels); t != nil {
				t.pod(pod, deleted)
			}
		}
	}
	_, err = podInf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { onPod(obj, false) },
		UpdateFunc: func(_, obj any) { onPod(obj, false) },
		DeleteFunc: func(obj any) { onPod(obj, true) },
	})
	return err
}

func (d *driver) trackerOf(labels map[string]string) *tracker {
	switch {
	case labels[labelPlain] != "":
		return d.plainJobs
	case labels[execv1alpha1.LabelComponent] == execv1alpha1.ComponentRun:
		return d.runs
	}
	return nil
}

// wrongResult says what is wrong with a run's result, or "" when it is what the
// completion stage reported.
func wrongResult(res *execv1alpha1.CodeRunResult) string {
	if res.Reason != execv1alpha1.ReasonCompleted || res.ExitCode == nil || *res.ExitCode != 0 || res.Stdout != fakeStdout {
		return fmt.Sprintf("result %s (%s), stdout %q", res.Reason, res.Message, res.Stdout)
	}
	return ""
}

func (d *driver) createRun(ctx context.Context, name string) error {
	run := &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.o.namespace},
		Spec:       execv1alpha1.CodeRunSpec{Source: source},
	}
	return d.c.Create(ctx, run)
}

// createPlainJob creates the Job the operator would create for a CodeRun of the same
// spec, labelled as a plain Job (so that the operator ignores it), without an owner.
func (d *driver) createPlainJob(ctx context.Context, name string) error {
	run := &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: d.o.namespace, UID: types.UID(uuid.NewString())},
		Spec:       execv1alpha1.CodeRunSpec{Source: source},
	}
	job := controllers.JobForRun(run, d.cfg)
	labels := map[string]string{execv1alpha1.LabelName: "coderun-scale", labelPlain: "true"}
	job.Labels = labels
	job.Spec.Template.Labels = labels
	delete(job.Annotations, execv1alpha1.AnnotationRun)
	delete(job.Spec.Template.Annotations, execv1alpha1.AnnotationRun)
	return d.c.Create(ctx, job)
}

// phase creates o.n objects with create, in waves, until all have finished, sampling the
// operator meanwhile; then waits for TTL cleanup.
func (d *driver) phase(ctx context.Context, name string, t *tracker, create func(context.Context, string) error) (res phaseResult, err error) {
	res = phaseResult{name: name, n: d.o.n}
	before, err := readProc(d.o.operatorPID)
	if err != nil {
		return res, err
	}
	writesBefore, err := d.apiWrites(ctx)
	if err != nil {
		return res, err
	}
	defer func() {
		if after, err := d.apiWrites(context.Background()); err == nil {
			res.writes = map[string]float64{}
			for k, v := range after {
				if n := v - writesBefore[k]; n > 0 {
					res.writes[k] = n
				}
			}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, d.o.phaseTimeout)
	defer cancel()

	var sampleWG sync.WaitGroup
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampleWG.Add(1)
	go func() {
		defer sampleWG.Done()
		d.sample(sampleCtx, name, t, &res)
	}()
	prefix := map[string]string{"CodeRuns": "run", "plain Jobs": "plain"}[name]
	createErr := d.createInWaves(ctx, t, prefix, create)
	if createErr == nil {
		createErr = waitUntil(ctx, func() bool { _, f, _, _, _ := t.counts(); return f >= d.o.n })
	}
	stopSampling()
	sampleWG.Wait()
	after, err := readProc(d.o.operatorPID)
	if err != nil {
		return res, err
	}
	_, res.finished, _, _, _ = t.counts()
	t.mu.Lock()
	res.elapsed = t.lastFinish.Sub(t.firstCreate)
	res.wrong, res.maxLive = t.wrong, t.maxLive
	if t.wrongExample != "" {
		progress("%s: a wrong result: %s", name, t.wrongExample)
	}
	lastFinish := t.lastFinish
	t.mu.Unlock()
	lat := t.latencies()
	res.p50, res.p99 = percentile(lat, 0.5), percentile(lat, 0.99)
	res.cpu, res.hwm = after.cpu-before.cpu, after.hwm
	if createErr != nil {
		progress("%s: %v; %d of %d finished", name, createErr, res.finished, res.n)
		return res, nil
	}
	progress("%s: %d finished in %.1fs (%.1f/s); waiting for TTL cleanup (jobTTL %s)", name, res.finished,
		res.elapsed.Seconds(), res.throughput(), d.cfg.JobTTL.Duration)

	cleanCtx, cancelClean := context.WithTimeout(context.Background(), d.o.cleanupTimeout)
	defer cancelClean()
	lastReport := time.Now()
	err = waitUntil(cleanCtx, func() bool {
		_, _, jobs, pods, _ := t.counts()
		if time.Since(lastReport) >= 5*time.Second {
			lastReport = time.Now()
			progress("%s: cleanup: %d Jobs and %d pods left", name, jobs, pods)
		}
		return jobs == 0 && pods == 0
	})
	res.cleanedUp = err == nil
	res.cleanup = time.Since(lastFinish)
	return res, nil
}

// apiWrites reads the API server's apiserver_request_total and sums the requests that
// write (every verb but GET, LIST, WATCH and CONNECT) by resource and subresource.
func (d *driver) apiWrites(ctx context.Context) (map[string]float64, error) {
	body, err := d.kube.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	return writesByResource(string(body)), nil
}

// writesByResource sums apiserver_request_total's writes by resource[/subresource].
func writesByResource(metrics string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(metrics) {
		labels, ok := strings.CutPrefix(line, "apiserver_request_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(labels, "} ")
		if !ok {
			continue
		}
		l := map[string]string{}
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			l[k] = strings.Trim(v, `"`)
		}
		switch l["verb"] {
		case "GET", "LIST", "WATCH", "CONNECT":
			continue
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		key := l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		out[key] += n
	}
	return out
}

// createInWaves creates the phase's objects, o.wave at a time, o.creators in parallel.
// A wave starts when at most half a wave of the objects created so far is unfinished.
func (d *driver) createInWaves(ctx context.Context, t *tracker, prefix string, create func(context.Context, string) error) error {
	for start := 0; start < d.o.n; start += d.o.wave {
		if err := waitUntil(ctx, func() bool { c, f, _, _, _ := t.counts(); return c-f <= d.o.wave/2 }); err != nil {
			return fmt.Errorf("waiting to start the wave at %d: %w", start, err)
		}
		end := min(start+d.o.wave, d.o.n)
		names := make(chan string)
		errs := make(chan error, d.o.creators)
		var wg sync.WaitGroup
		for range d.o.creators {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for name := range names {
					t.creating(name)
					if err := retryCreate(ctx, func() error { return create(ctx, name) }); err != nil {
						errs <- fmt.Errorf("creating %s: %w", name, err)
						return
					}
				}
			}()
		}
		for i := start; i < end; i++ {
			select {
			case names <- fmt.Sprintf("%s-%05d", prefix, i):
			case err := <-errs:
				close(names)
				wg.Wait()
				return err
			}
		}
		close(names)
		wg.Wait()
		select {
		case err := <-errs:
			return err
		default:
		}
	}
	return nil
}

// retryCreate retries a create that the API server refused for a moment (throttling,
// timeouts); an object that exists already was created by an earlier attempt.
func retryCreate(ctx context.Context, create func() error) error {
	for attempt := 0; ; attempt++ {
		err := create()
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		passing := apierrors.IsTooManyRequests(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsInternalError(err)
		if attempt >= 10 || !passing {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
}

// sample reads the operator's gauges every second (the pods the bound is about are
// counted on every event) and prints progress every 5 s.
func (d *driver) sample(ctx context.Context, name string, t *tracker, res *phaseResult) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	var scrapeErr error
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if d.o.metricsURL != "" {
			g, err := scrapeGauges(ctx, d.o.metricsURL, "coderun_active_runs", "coderun_queue_depth")
			if err == nil {
				res.maxActive = max(res.maxActive, g["coderun_active_runs"])
				res.maxQueued = max(res.maxQueued, g["coderun_queue_depth"])
			} else if ctx.Err() == nil {
				scrapeErr = err
			}
		}
		if time.Since(last) < 5*time.Second {
			continue
		}
		last = time.Now()
		created, finished, jobs, pods, live := t.counts()
		ps, err := readProc(d.o.operatorPID)
		if err != nil {
			progress("%s: %v", name, err)
			continue
		}
		progress("%s: created %d, finished %d, Jobs %d, pods %d (running %d); operator: admitted max %.0f, queued max %.0f, RSS %.0f MiB (peak %.0f), CPU %.1fs",
			name, created, finished, jobs, pods, live, res.maxActive, res.maxQueued, mib(ps.rss), mib(ps.hwm), ps.cpu.Seconds())
		if scrapeErr != nil {
			progress("%s: metrics: %v", name, scrapeErr)
			scrapeErr = nil
		}
	}
}

// waitUntil polls done every 100 ms until it is true or ctx ends.
func waitUntil(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// printTable prints the two phases side by side, as Markdown.
func printTable(runs, jobs phaseResult, bound int) {
	row := func(what, a, b string) { fmt.Printf("| %s | %s | %s |\n", what, a, b) }
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	cleanup := func(p phaseResult) string {
		if !p.cleanedUp {
			return "not done after " + secs(p.cleanup)
		}
		return secs(p.cleanup)
	}
	fmt.Println()
	row("", "CodeRuns", "plain Jobs")
	fmt.Println("|---|---:|---:|")
	row("finished / created", fmt.Sprintf("%d / %d", runs.finished, runs.n), fmt.Sprintf("%d / %d", jobs.finished, jobs.n))
	row("first creation to last result", secs(runs.elapsed), secs(jobs.elapsed))
	row("throughput", fmt.Sprintf("%.1f /s", runs.throughput()), fmt.Sprintf("%.1f /s", jobs.throughput()))
	row("latency p50 / p99", secs(runs.p50)+" / "+secs(runs.p99), secs(jobs.p50)+" / "+secs(jobs.p99))
	row("most pods running at once", fmt.Sprintf("%d (bound %d)", runs.maxLive, bound), strconv.Itoa(jobs.maxLive))
	row("most runs admitted / queued (operator)", fmt.Sprintf("%.0f / %.0f", runs.maxActive, runs.maxQueued), "-")
	row("TTL cleanup, last result to no Job or pod", cleanup(runs), cleanup(jobs))
	row("operator CPU in the phase", secs(runs.cpu), secs(jobs.cpu))
	row("operator peak RSS at the phase's end", fmt.Sprintf("%.0f MiB", mib(runs.hwm)), fmt.Sprintf("%.0f MiB", mib(jobs.hwm)))
	row("wrong results", strconv.Itoa(runs.wrong), strconv.Itoa(jobs.wrong))
	row("API server writes per item (through cleanup)", fmt.Sprintf("%.1f", runs.writesPerItem()), fmt.Sprintf("%.1f", jobs.writesPerItem()))
	fmt.Println()
	for _, p := range []phaseResult{runs, jobs} {
		keys := make([]string, 0, len(p.writes))
		for k := range p.writes {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return p.writes[keys[i]] > p.writes[keys[j]] })
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, p.writes[k]/float64(max(p.n, 1))))
		}
		fmt.Printf("%s, API writes per item: %s\n", p.name, strings.Join(parts, ", "))
	}
	fmt.Println()
}
