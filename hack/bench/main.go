// Command bench measures the operator on a real cluster (`make bench`). One run prints,
// measured on the same cluster:
//
//   - the cold path: the time from creating a CodeRun running print(1) until its status
//     holds the result, against the time from creating a plain Job running the same program
//     in the same image, as `kubectl create job bench-N --image=IMAGE -- python3 -c
//     "print(1)"` would, until its pod has Succeeded; the goal is a ratio of medians of at
//     most 1.25. The CodeRun is kept off the warm pool by a CPU limit 1m below the pool's
//     (read from the CodeRunPool), so that it runs with the resources a cold run of the
//     default limits has. For information it also times each Job until its pod's status
//     shows the container ended, the moment the operator reacts to (the kubelet marks a
//     pod Succeeded a second or so later, after tearing it down);
//   - the warm path: a CodeRun of the pool's shape, from creation to result, whose
//     status.path must be Warm (a run that went cold counts as an error, not as a sample);
//   - warm hello world through the front service's POST /execute, as a new user sends it
//     (no limits: the default pool's shape is the default limits), p50 and p90 against
//     the goals of 150 ms and 250 ms; the answer's CodeRun must have taken the warm path;
//   - the floor: the runner's own wall time for print(1) in a warm member (the runs'
//     status.result.wallTime) and what the warm paths add to it;
//   - for information, after those iterations: the same plain Job under -runtime-class
//     (gvisor, when the cluster has that RuntimeClass: make dev registers it) and under runc,
//     alternating, n of each: what gVisor adds to a cold start. A phase of its own, so that
//     gVisor's heavier sandboxes do not load the node during the measurements above;
//   - a burst of -burst /execute requests from -clients concurrent clients: runs/s,
//     errors, lost requests and how many went warm or cold, next to the node's raw pod
//     churn measured in the same run: as many plain pods running print(1) in the runner
//     image, created at once and run to Succeeded. The goal is runs/s >= 0.8 x pods/s
//     with every request answered "1\n".
//
// The Job, the cold CodeRun, the warm CodeRun and the /execute request alternate, one of
// each per iteration in a rotating order, so that all see the same cluster. Before each
// warm measurement it waits (untimed) until the pool has a ready member. It ends with a
// table of the goals, the measured values and PASS or FAIL. A missed goal is a result, not
// a failure: it exits 0 when the measurements could be made and 1 when they could not.
//
// It creates a namespace for the Jobs and plain pods (without Pod Security restrictions,
// like any user namespace) and the CodeRuns in the runs namespace, and deletes all of them,
// and the CodeRuns the front service created for its requests, when it ends, also when
// interrupted.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

const (
	partOfLabel = "app.kubernetes.io/part-of"
	partOfValue = "coderun-bench"
	benchLabel  = "bench.coderun.dev/id"
	// jobNameLabel is how the Job controller labels a Job's pods.
	jobNameLabel = "batch.kubernetes.io/job-name"
	// helloOutput is what print(1) writes.
	helloOutput = "1\n"
)

type options struct {
	n, warmup                    int
	image                        string
	benchNamespace, runNamespace string
	pool, coldCPUFlag            string
	front                        string
	burst, clients               int
	timeout                      time.Duration
	goal                         float64
	warmP50, warmP90             time.Duration
	churnGoal                    float64
	runtimeClass                 string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 10, "measured iterations (each one Job, one cold CodeRun, one warm CodeRun and one /execute); at least 10")
	flag.IntVar(&o.warmup, "warmup", 1, "iterations run first and not counted")
	flag.StringVar(&o.image, "image", "localhost/coderun-python:0.1.0", "image of the plain Jobs and pods: the operator's runner image")
	flag.StringVar(&o.benchNamespace, "bench-namespace", "coderun-bench", "namespace for the plain Jobs and pods, created and deleted by the benchmark")
	flag.StringVar(&o.runNamespace, "runs-namespace", "coderun-runs", "namespace the operator serves, for the CodeRuns")
	flag.StringVar(&o.pool, "pool", "default", "CodeRunPool in the runs namespace whose shape the warm runs take")
	flag.StringVar(&o.coldCPUFlag, "cold-cpu", "", "CPU limit of the cold CodeRuns; empty: 1m below the pool's, which keeps them off the pool")
	flag.StringVar(&o.front, "front", "http://127.0.0.1:8080", "base URL of the front service")
	flag.IntVar(&o.burst, "burst", 200, "requests in the burst, and plain pods in the pod churn; 0 skips both")
	flag.IntVar(&o.clients, "clients", 16, "concurrent clients of the burst")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on each measurement")
	flag.Float64Var(&o.goal, "goal", 1.25, "largest acceptable ratio of median cold CodeRun time to median Job time")
	flag.DurationVar(&o.warmP50, "warm-p50", 150*time.Millisecond, "goal: largest acceptable p50 of warm /execute")
	flag.DurationVar(&o.warmP90, "warm-p90", 250*time.Millisecond, "goal: largest acceptable p90 of warm /execute")
	flag.Float64Var(&o.churnGoal, "churn-goal", 0.8, "goal: smallest acceptable burst runs/s as a fraction of the plain pods/s")
	flag.StringVar(&o.runtimeClass, "runtime-class", "gvisor", "RuntimeClass to time the plain Job under as well, for information; skipped when the cluster has none of that name, or empty")
	flag.Parse()
	if o.n < 10 || o.warmup < 0 || o.burst < 0 || o.clients < 1 {
		fmt.Fprintln(os.Stderr, "bench: -n must be at least 10, -warmup and -burst at least 0, -clients at least 1")
		os.Exit(2)
	}
	o.front = strings.TrimRight(o.front, "/")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		}
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

type bench struct {
	options
	c    client.WithWatch
	http *http.Client
	id   string
	// shape is the pool's limits (fields it leaves to the operator's defaults are nil);
	// coldCPU is the CPU limit that keeps a CodeRun off it.
	shape   execv1alpha1.Limits
	coldCPU resource.Quantity

	mu sync.Mutex
	// frontRuns are the CodeRuns the front service created for the benchmark's requests.
	frontRuns []string
}

func run(ctx context.Context, o options) error {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(execv1alpha1.AddToScheme(scheme))
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(clientcmd.NewDefaultClientConfigLoadingRules(), nil)
	restConfig, err := loader.ClientConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig (set KUBECONFIG): %w", err)
	}
	// Enough for the plain pods to be created at once.
	restConfig.QPS, restConfig.Burst = 200, 400
	c, err := client.NewWithWatch(restConfig, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	id := make([]byte, 3)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	b := &bench{options: o, c: c, id: hex.EncodeToString(id), http: newHTTPClient(o.clients, o.timeout)}

	fmt.Printf("bench %s against %s and %s: %d iterations (+%d warm-up), each a plain Job in %s, a cold and a warm CodeRun in %s and an /execute, in turn\n",
		b.id, restConfig.Host, o.front, o.n, o.warmup, o.benchNamespace, o.runNamespace)
	if o.burst > 0 {
		fmt.Printf("then %d plain pods created at once, and a burst of %d /execute from %d clients\n", o.burst, o.burst, o.clients)
	}
	if err := b.checkFront(ctx); err != nil {
		return err
	}
	if err := b.readPool(ctx); err != nil {
		return err
	}
	if err := b.checkRuntimeClass(ctx); err != nil {
		return err
	}
	defer b.cleanup()
	if err := b.prepareNamespace(ctx); err != nil {
		return err
	}

	var r results
	if err := b.iterations(ctx, &r); err != nil {
		return err
	}
	if b.runtimeClass != "" {
		if err := b.runtimeClassJobs(ctx, &r); err != nil {
			return err
		}
	}
	if o.burst > 0 {
		if err := b.settle(ctx); err != nil {
			return err
		}
		churn, err := b.podChurn(ctx)
		if err != nil {
			return err
		}
		r.churn = &churn
		b.waitPoolFull(ctx)
		burst, err := b.burstExecute(ctx)
		if err != nil {
			return err
		}
		r.burst = &burst
	}
	b.report(&r)
	return nil
}

// iterations runs the interleaved measurements: per iteration one plain Job, one cold
// CodeRun, one warm CodeRun and one warm /execute, in an order that rotates.
func (b *bench) iterations(ctx context.Context, r *results) error {
	for i := 1 - b.warmup; i <= b.n; i++ {
		label := fmt.Sprintf("[%2d/%d]", i, b.n)
		if i <= 0 {
			label = "[warm-up]"
		}
		counted := i > 0
		n := i + b.warmup
		var cells [4]string
		steps := []func() error{
			func() (err error) { cells[0], err = b.stepJob(ctx, n, counted, r); return err },
			func() (err error) { cells[1], err = b.stepCold(ctx, label, n, counted, r); return err },
			func() (err error) { cells[2], err = b.stepWarm(ctx, label, n, counted, r); return err },
			func() (err error) { cells[3], err = b.stepExecute(ctx, label, counted, r); return err },
		}
		// Rotate the order, so that none always runs on a just-busied node or right
		// after a warm member was taken.
		for k := range steps {
			if err := steps[(k+n)%len(steps)](); err != nil {
				return err
			}
		}
		fmt.Printf("%-9s %s\n", label, strings.Join(cells[:], "   "))
	}
	return nil
}

// results holds every measurement of a run of the benchmark.
type results struct {
	job, ended, cold, warm, execute series
	// runtimeClassJob is the plain Job under -runtime-class, and runcJob the plain Job
	// measured alternately with it.
	runtimeClassJob, runcJob series
	churn                    *churnResult
	burst                    *burstResult
}

// series is one kind of measurement: the times of the samples that count, the runner's
// wall time of each (warm paths), and the runs that did not give a sample.
type series struct {
	times, walls []time.Duration
	errors       int
	queued       int
}

func (s *series) add(took, wall time.Duration) {
	s.times = append(s.times, took)
	s.walls = append(s.walls, wall)
}

func (b *bench) stepJob(ctx context.Context, n int, counted bool, r *results) (string, error) {
	jobTime, exitTime, err := b.timeJob(ctx, fmt.Sprintf("bench-%d", n), "")
	if err != nil {
		return "", err
	}
	if counted {
		r.job.add(jobTime, 0)
		r.ended.add(exitTime, 0)
	}
	return fmt.Sprintf("job %6.3fs (ended %6.3fs)", jobTime.Seconds(), exitTime.Seconds()), nil
}

// runtimeClassJobs times the plain Job under -runtime-class and under runc, alternately
// (which first rotates), n of each after a warm-up pair.
func (b *bench) runtimeClassJobs(ctx context.Context, r *results) error {
	for i := 1 - b.warmup; i <= b.n; i++ {
		n := i + b.warmup
		kinds := []string{b.runtimeClass, ""}
		if n%2 == 0 {
			kinds[0], kinds[1] = kinds[1], kinds[0]
		}
		var cells []string
		for _, rc := range kinds {
			name, into, shown := fmt.Sprintf("bench-%s-%d", b.runtimeClass, n), &r.runtimeClassJob, b.runtimeClass
			if rc == "" {
				name, into, shown = fmt.Sprintf("bench-runc-%d", n), &r.runcJob, "runc"
			}
			took, _, err := b.timeJob(ctx, name, rc)
			if err != nil {
				return err
			}
			if i > 0 {
				into.add(took, 0)
			}
			cells = append(cells, fmt.Sprintf("%s job %6.3fs", shown, took.Seconds()))
		}
		fmt.Printf("%-9s %s\n", fmt.Sprintf("[%s %d]", b.runtimeClass, i), strings.Join(cells, "   "))
	}
	return nil
}

// checkRuntimeClass turns the -runtime-class measurement off when the cluster has no such
// RuntimeClass.
func (b *bench) checkRuntimeClass(ctx context.Context) error {
	if b.runtimeClass == "" {
		return nil
	}
	err := b.c.Get(ctx, client.ObjectKey{Name: b.runtimeClass}, &nodev1.RuntimeClass{})
	if apierrors.IsNotFound(err) {
		fmt.Printf("no RuntimeClass %s: its plain Job is not timed\n", b.runtimeClass)
		b.runtimeClass = ""
		return nil
	}
	if err == nil {
		fmt.Printf("then %d plain Jobs under RuntimeClass %s, alternating with as many under runc\n", b.n, b.runtimeClass)
	}
	return err
}

func (b *bench) stepCold(ctx context.Context, label string, n int, counted bool, r *results) (string, error) {
	name := fmt.Sprintf("bench-%s-cold-%d", b.id, n)
	cpu := b.coldCPU.DeepCopy()
	took, got, queued, err := b.timeCodeRun(ctx, name, execv1alpha1.Limits{CPU: &cpu})
	if err != nil {
		return "", err
	}
	problem := checkRun(got, execv1alpha1.PathCold)
	return r.cold.record(label, "cold", "cold CodeRun "+name, took, 0, queued, counted, problem), nil
}

func (b *bench) stepWarm(ctx context.Context, label string, n int, counted bool, r *results) (string, error) {
	b.waitPoolReady(ctx, label)
	name := fmt.Sprintf("bench-%s-warm-%d", b.id, n)
	took, got, queued, err := b.timeCodeRun(ctx, name, *b.shape.DeepCopy())
	if err != nil {
		return "", err
	}
	problem := checkRun(got, execv1alpha1.PathWarm)
	return r.warm.record(label, "warm", "warm CodeRun "+name, took, wallTime(got), queued, counted, problem), nil
}

func (b *bench) stepExecute(ctx context.Context, label string, counted bool, r *results) (string, error) {
	b.waitPoolReady(ctx, label)
	ans := b.execute(ctx)
	problem := ans.problem()
	var wall time.Duration
	if problem == "" {
		got, err := b.frontRun(ctx, ans.body.Name)
		switch {
		case err != nil:
			return "", err
		case got == nil:
			problem = "its CodeRun is gone already, so its path is unknown"
		default:
			problem, wall = checkRun(got, execv1alpha1.PathWarm), wallTime(got)
		}
	}
	return r.execute.record(label, "/execute", "warm /execute "+ans.body.Name, ans.took, wall, false, counted, problem), nil
}

// record adds a sample, or counts an error when problem says what went wrong, and returns
// the progress cell, headed by kind.
func (s *series) record(label, kind, what string, took, wall time.Duration, queued, counted bool, problem string) string {
	if problem != "" {
		fmt.Printf("%-9s %s: %s; an error, not a sample\n", label, what, problem)
		if counted {
			s.errors++
		}
		return fmt.Sprintf("%s %-6s", kind, "ERROR")
	}
	note := ""
	if queued {
		// Another client's runs held every slot: this time includes waiting for one.
		note = " (queued)"
		if counted {
			s.queued++
		}
	}
	if counted {
		s.add(took, wall)
	}
	if wall > 0 {
		return fmt.Sprintf("%s %6.3fs (runner %5.3fs)%s", kind, took.Seconds(), wall.Seconds(), note)
	}
	return fmt.Sprintf("%s %6.3fs%s", kind, took.Seconds(), note)
}

// checkRun says what is wrong with a finished run that should have printed 1 on path, or
// returns "".
func checkRun(run *execv1alpha1.CodeRun, path execv1alpha1.RunPath) string {
	res := run.Status.Result
	switch {
	case res == nil:
		return "no result"
	case res.Reason != execv1alpha1.ReasonCompleted || res.Output != helloOutput:
		return fmt.Sprintf("ended %s (%s) with output %q, want Completed with %q", res.Reason, res.Message, res.Output, helloOutput)
	case run.Status.Path != path:
		return fmt.Sprintf("took the %q path, want %s", run.Status.Path, path)
	}
	return ""
}

func wallTime(run *execv1alpha1.CodeRun) time.Duration {
	if run.Status.Result == nil || run.Status.Result.WallTime == nil {
		return 0
	}
	return run.Status.Result.WallTime.Duration
}

// prepareNamespace creates the namespace for the Jobs, after removing one left behind by an
// interrupted benchmark, and waits for its default ServiceAccount, without which the API
// server refuses pods (and the Job controller would retry with back-off).
func (b *bench) prepareNamespace(ctx context.Context) error {
	var ns corev1.Namespace
	err := b.c.Get(ctx, client.ObjectKey{Name: b.benchNamespace}, &ns)
	switch {
	case err == nil && ns.Labels[partOfLabel] != partOfValue:
		return fmt.Errorf("namespace %s exists and is not the benchmark's (no label %s=%s); choose another with -bench-namespace", b.benchNamespace, partOfLabel, partOfValue)
	case err == nil:
		fmt.Printf("deleting namespace %s left by an earlier benchmark\n", b.benchNamespace)
		if err := b.deleteNamespace(ctx); err != nil {
			return err
		}
	case !apierrors.IsNotFound(err):
		return err
	}
	ns = corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.benchNamespace, Labels: map[string]string{partOfLabel: partOfValue}}}
	if err := b.c.Create(ctx, &ns); err != nil {
		return fmt.Errorf("creating namespace %s: %w", b.benchNamespace, err)
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		var sa corev1.ServiceAccount
		err := b.c.Get(ctx, client.ObjectKey{Namespace: b.benchNamespace, Name: "default"}, &sa)
		return err == nil, client.IgnoreNotFound(err)
	})
}

func (b *bench) deleteNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.benchNamespace}}
	if err := b.c.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting namespace %s: %w", b.benchNamespace, err)
	}
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		err := b.c.Get(ctx, client.ObjectKey{Name: b.benchNamespace}, ns)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		return fmt.Errorf("waiting for namespace %s to go: %w", b.benchNamespace, err)
	}
	return nil
}

// cleanup deletes what the benchmark created, with its own deadline so that it also runs
// after an interrupt.
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	fmt.Printf("cleaning up: CodeRuns labelled %s=%s, %d CodeRuns of the front service's answers, namespace %s\n",
		benchLabel, b.id, b.frontRunCount(), b.benchNamespace)
	if err := b.deleteRuns(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	}
	var ns corev1.Namespace
	if err := b.c.Get(ctx, client.ObjectKey{Name: b.benchNamespace}, &ns); err == nil && ns.Labels[partOfLabel] == partOfValue {
		if err := b.deleteNamespace(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
}

// deleteRuns deletes the benchmark's CodeRuns and those the front service created for its
// requests, and so their Jobs and pods.
func (b *bench) deleteRuns(ctx context.Context) error {
	var errs []error
	if err := b.c.DeleteAllOf(ctx, &execv1alpha1.CodeRun{}, client.InNamespace(b.runNamespace),
		client.MatchingLabels{benchLabel: b.id}, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		errs = append(errs, fmt.Errorf("deleting CodeRuns: %w", err))
	}
	names := b.takeFrontRuns()
	var mu sync.Mutex
	forEach(len(names), b.clients, func(i int) {
		run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Name: names[i], Namespace: b.runNamespace}}
		if err := b.c.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("deleting CodeRun %s: %w", names[i], err))
			mu.Unlock()
		}
	})
	if len(errs) > 0 {
		b.addFrontRuns(names...) // so that cleanup tries again
	}
	return errors.Join(errs...)
}

func (b *bench) addFrontRuns(names ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frontRuns = append(b.frontRuns, names...)
}

func (b *bench) frontRunCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.frontRuns)
}

func (b *bench) frontRunsSnapshot() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.frontRuns)
}

// takeFrontRuns returns the front's CodeRuns noted so far and forgets them.
func (b *bench) takeFrontRuns() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := b.frontRuns
	b.frontRuns = nil
	return names
}

// forEach calls f(0) to f(n-1) from at most workers goroutines and returns when all
// returned.
func forEach(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// timeJob creates the Job `kubectl create job bench-N --image=IMAGE -- python3 -c "print(1)"`
// would create and returns the time until its pod is Succeeded, and until the pod's status
// first showed its container ended.
// timeJob creates the plain Job name running print(1), under runtimeClass unless it is
// empty, and returns the time until its pod Succeeded and until its container ended.
func (b *bench) timeJob(ctx context.Context, name, runtimeClass string) (succeeded, ended time.Duration, err error) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.benchNamespace},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:  name,
				Image: b.image,
				// The image's entrypoint is the coderun runner; `kubectl create job -- cmd`
				// sets the command, replacing it.
				Command:         []string{"python3", "-c", "print(1)"},
				ImagePullPolicy: corev1.PullIfNotPresent,
			}},
		}}},
	}
	if runtimeClass != "" {
		job.Spec.Template.Spec.RuntimeClassName = &runtimeClass
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	w, rv, err := b.watcher(ctx, func() client.ObjectList { return &corev1.PodList{} }, client.ListOptions{
		Namespace: b.benchNamespace, LabelSelector: labels.SelectorFromSet(labels.Set{jobNameLabel: name}),
	})
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err = b.c.Create(ctx, job); err != nil {
		return 0, 0, fmt.Errorf("creating Job %s: %w", name, err)
	}
	_, err = watchtools.Until(ctx, rv, w, func(e watch.Event) (bool, error) {
		pod, ok := e.Object.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.State.Terminated != nil && ended == 0 {
				ended = time.Since(start)
			}
		}
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			return true, nil
		case corev1.PodFailed:
			return false, fmt.Errorf("pod %s of Job %s failed: %s %s", pod.Name, name, pod.Status.Reason, pod.Status.Message)
		}
		return false, nil
	})
	succeeded = time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("waiting for the pod of Job %s/%s to succeed: %w", b.benchNamespace, name, err)
	}
	return succeeded, ended, nil
}

// timeCodeRun creates the CodeRun name of print(1) with limits and returns the time until
// its status has a result, the CodeRun then, and whether it waited in phase Queued.
func (b *bench) timeCodeRun(ctx context.Context, name string, limits execv1alpha1.Limits) (took time.Duration, got *execv1alpha1.CodeRun, queued bool, err error) {
	run := &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: b.runNamespace, Labels: map[string]string{partOfLabel: partOfValue, benchLabel: b.id}},
		Spec:       execv1alpha1.CodeRunSpec{Source: "print(1)\n", Limits: limits},
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	w, rv, err := b.watcher(ctx, func() client.ObjectList { return &execv1alpha1.CodeRunList{} }, client.ListOptions{
		Namespace: b.runNamespace, FieldSelector: fields.OneTermEqualSelector("metadata.name", name),
	})
	if err != nil {
		return 0, nil, false, err
	}
	start := time.Now()
	if err := b.c.Create(ctx, run); err != nil {
		return 0, nil, false, fmt.Errorf("creating CodeRun %s: %w", name, err)
	}
	_, err = watchtools.Until(ctx, rv, w, func(e watch.Event) (bool, error) {
		cr, ok := e.Object.(*execv1alpha1.CodeRun)
		if !ok {
			return false, nil
		}
		queued = queued || cr.Status.Phase == execv1alpha1.PhaseQueued
		got = cr
		return cr.Status.Result != nil, nil
	})
	took = time.Since(start)
	if err != nil {
		return 0, nil, false, fmt.Errorf("waiting for the result of CodeRun %s/%s: %w", b.runNamespace, name, err)
	}
	return took, got, queued, nil
}

// watcher lists what newList and opts select and returns a watcher on it and the list's
// resource version: a watch from there sees every change after the list.
func (b *bench) watcher(ctx context.Context, newList func() client.ObjectList, opts client.ListOptions) (cache.Watcher, string, error) {
	list := newList()
	listOpts := opts
	if err := b.c.List(ctx, list, &listOpts); err != nil {
		return nil, "", err
	}
	if n := meta.LenList(list); n != 0 {
		return nil, "", errors.New("objects with the benchmark's name exist already")
	}
	return &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
		watchOpts := opts
		watchOpts.Raw = &raw
		return b.c.Watch(ctx, newList(), &watchOpts)
	}}, list.GetResourceVersion(), nil
}
