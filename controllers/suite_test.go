package controllers

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// The envtest suite runs the controller against a real kube-apiserver and etcd (built by
// hack/kube-binaries.sh; `make test` sets KUBEBUILDER_ASSETS). There is no kubelet, Job
// controller or garbage collector: tests play their part by creating the pod a Job would
// get and writing the status a kubelet would.

var (
	restConfig *rest.Config
	k8sClient  client.Client
	// testScheme knows the built-in types and CodeRuns.
	testScheme = testenv.Scheme
)

func TestMain(m *testing.M) {
	logOpts := []zap.Opts{zap.UseDevMode(true), zap.WriteTo(os.Stderr)}
	if os.Getenv("TEST_VERBOSE") == "" {
		logOpts = append(logOpts, zap.Level(zapcore.ErrorLevel)) // keep test output readable
	}
	ctrl.SetLogger(zap.New(logOpts...))
	testenv.Main(m)
}

// needEnvtest starts the API server and etcd on first use (internal/testenv), so that table
// tests and fuzz targets in this package do not pay for (or, as fuzz workers, each start) one.
func needEnvtest(t *testing.T) {
	t.Helper()
	var cl client.WithWatch
	restConfig, cl = testenv.Start(t)
	k8sClient = cl
}

// testConfig is the shipped configuration with a short start timeout and 2 run slots.
func testConfig() config.Config {
	cfg := config.Default()
	cfg.MaxConcurrentRuns = 2
	cfg.StartTimeout = metav1.Duration{Duration: time.Minute}
	// Runtimes are cluster-wide: only the tests of the Runtime controller manage them.
	cfg.ManageRuntimes = false
	return cfg
}

// fakeLogs serves pod logs from memory: envtest has no kubelet to read them from.
type fakeLogs struct {
	mu   sync.Mutex
	logs map[string][]byte
}

func (f *fakeLogs) set(pod string, log []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.logs == nil {
		f.logs = map[string][]byte{}
	}
	f.logs[pod] = log
}

func (f *fakeLogs) ReadLog(_ context.Context, _, pod, _ string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if log, ok := f.logs[pod]; ok {
		return log, nil
	}
	return nil, fmt.Errorf("no log for pod %s", pod)
}

// operator is one running instance of the controller, watching one namespace.
type operator struct {
	namespace  string
	reconciler *CodeRunReconciler
	logs       *fakeLogs
}

// startOperator creates a namespace that enforces the restricted Pod Security Standard (as
// config/ does for runs) and runs an operator with cfg for it until the test ends. Each test
// gets its own namespace and operator, so queue limits and timeouts do not interfere.
func startOperator(t *testing.T, cfg config.Config) *operator {
	t.Helper()
	op, stop := runOperator(t, cfg, newRunsNamespace(t))
	t.Cleanup(stop)
	return op
}

// newRunsNamespace creates a namespace labelled like config/runs and returns its name.
func newRunsNamespace(t *testing.T) string {
	t.Helper()
	needEnvtest(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: "runs-",
		Labels: map[string]string{
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		},
	}}
	if err := k8sClient.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// runOperator runs an operator with cfg for namespace until stop is called.
func runOperator(t *testing.T, cfg config.Config, namespace string) (op *operator, stop func()) {
	t.Helper()
	return runOperatorWith(t, cfg, namespace, nil)
}

// runOperatorWith is runOperator with configure (when not nil) applied to the reconciler
// before it is set up.
func runOperatorWith(t *testing.T, cfg config.Config, namespace string, configure func(*CodeRunReconciler)) (op *operator, stop func()) {
	t.Helper()
	running := goleak.IgnoreCurrent()
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme: testScheme,
		// Nodes trimmed as cmd/main.go trims them.
		Cache:      cacheOptions(namespace),
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatalf("creating manager: %v", err)
	}
	op = &operator{namespace: namespace, logs: &fakeLogs{}}
	op.reconciler = &CodeRunReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("coderun-operator"),
		Config:    cfg,
		Logs:      op.logs,
	}
	if configure != nil {
		configure(op.reconciler)
	}
	if err := op.reconciler.SetupWithManager(mgr, 4); err != nil {
		t.Fatalf("setting up controller: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	// Tests may call the reconciler directly, which reads from the cache.
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		cancel()
		t.Fatalf("the manager's cache did not start: %v", <-done)
	}
	var once sync.Once
	return op, func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
			// Every goroutine of the manager and the controller ends with it. Connections to
			// the API server are pooled by the process and outlive it.
			if err := goleak.Find(running,
				goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
				goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			); err != nil {
				t.Errorf("the stopped operator left goroutines behind: %v", err)
			}
		})
	}
}

// newRun returns a CodeRun in the operator's namespace.
func (op *operator) newRun(name, source string) *execv1alpha1.CodeRun {
	return &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: op.namespace},
		Spec:       execv1alpha1.CodeRunSpec{Source: source},
	}
}

func (op *operator) create(t *testing.T, run *execv1alpha1.CodeRun) *execv1alpha1.CodeRun {
	t.Helper()
	if err := k8sClient.Create(context.Background(), run); err != nil {
		t.Fatalf("creating CodeRun %s: %v", run.Name, err)
	}
	return run
}

// eventually polls cond until it returns true, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, last)
	}
}

// getRun reads a CodeRun from the API server.
func getRun(t *testing.T, run *execv1alpha1.CodeRun) *execv1alpha1.CodeRun {
	t.Helper()
	got := &execv1alpha1.CodeRun{}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), got); err != nil {
		t.Fatalf("getting CodeRun %s: %v", run.Name, err)
	}
	return got
}

// waitForJob waits until the run's Job exists and returns it.
func waitForJob(t *testing.T, run *execv1alpha1.CodeRun) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	eventually(t, 20*time.Second, "the Job of "+run.Name, func() (bool, error) {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: run.Namespace, Name: jobName(run)}, job)
		return err == nil, client.IgnoreNotFound(err)
	})
	return job
}

// waitForResult waits until the run has a result and returns the run.
func waitForResult(t *testing.T, run *execv1alpha1.CodeRun) *execv1alpha1.CodeRun {
	t.Helper()
	var got *execv1alpha1.CodeRun
	eventually(t, 30*time.Second, "the result of "+run.Name, func() (bool, error) {
		got = getRun(t, run)
		return got.Status.Result != nil, nil
	})
	return got
}

// startPod creates the pod that the Job controller would create for job; the namespace's
// restricted Pod Security admission checks it for real.
func startPod(t *testing.T, job *batchv1.Job) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        job.Name + "-" + fmt.Sprint(time.Now().UnixNano()%100000),
			Namespace:   job.Namespace,
			Labels:      job.Spec.Template.Labels,
			Annotations: job.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	if err := k8sClient.Create(context.Background(), pod); err != nil {
		t.Fatalf("creating the Job's pod (as the Job controller would): %v", err)
	}
	return pod
}

// setContainerState writes the run container's state as a kubelet would.
func setContainerState(t *testing.T, pod *corev1.Pod, state corev1.ContainerState) {
	t.Helper()
	phase := corev1.PodRunning
	if state.Terminated != nil {
		phase = corev1.PodSucceeded
		if state.Terminated.ExitCode != 0 {
			phase = corev1.PodFailed
		}
	}
	err := retryOnConflict(func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pod), pod); err != nil {
			return err
		}
		pod.Status.Phase = phase
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{
			Name: containerName, Image: pod.Spec.Containers[0].Image, ImageID: "sha256:0123",
			State: state, Started: ptr.To(state.Running != nil),
		}}
		return k8sClient.Status().Update(context.Background(), pod)
	})
	if err != nil {
		t.Fatalf("writing pod status: %v", err)
	}
}

func retryOnConflict(fn func() error) error {
	for range 10 {
		err := fn()
		if !apierrors.IsConflict(err) {
			return err
		}
	}
	return fmt.Errorf("still conflicting after 10 tries")
}

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
}

func terminated(exitCode int32, reason, message string) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: exitCode, Reason: reason, Message: message,
		StartedAt: metav1.NewTime(time.Now().Add(-time.Second)), FinishedAt: metav1.Now(),
	}}
}

// cacheOptions are the operator's cache options (cmd/main.go) for one namespace.
func cacheOptions(namespace string) cache.Options {
	opts := CacheOptions()
	opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	return opts
}
