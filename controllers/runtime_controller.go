package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/textcut"
)

// LabelSmokeTestRuntimeUID on a smoke-test CodeRun is the UID of its Runtime, to find the
// smoke runs of one Runtime (a Runtime's name may be too long for a label value).
const LabelSmokeTestRuntimeUID = "exec.coderun.dev/smoke-test-runtime-uid"

const (
	// smokeHashLength is how much of the spec hash a smoke run's name carries.
	smokeHashLength = 10
	// maxShownLines and maxShownBytes bound what a failed smoke test's message quotes of
	// its output.
	maxShownLines = 5
	maxShownBytes = 400
)

// RuntimeReconciler smoke-tests each Runtime: once per spec hash (image, commands, env,
// source file, sizes, smoke test) it runs the Runtime's smoke test as a CodeRun in the
// smoke-test namespace, and sets the Runtime's Ready condition from how that run ended.
// Only one operator of a cluster runs it (config.ManageRuntimes): Runtimes are
// cluster-scoped.
type RuntimeReconciler struct {
	client.Client
	// APIReader reads a finished smoke run in full: the cache drops a finished run's output.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Config    config.Config
	Clock     clock.PassiveClock
}

// +kubebuilder:rbac:groups=exec.coderun.dev,resources=runtimes,verbs=get;list;watch
// +kubebuilder:rbac:groups=exec.coderun.dev,resources=runtimes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=exec.coderun.dev,resources=coderuns,verbs=create;delete

// Reconcile runs the smoke test of the Runtime's current spec, if it has not run yet, and
// records its outcome in the Runtime's status.
func (r *RuntimeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rt := &execv1alpha1.Runtime{}
	if err := r.Get(ctx, req.NamespacedName, rt); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rt.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	log := logf.FromContext(ctx).WithValues("runtime", rt.Name)
	hash := specHash(&rt.Spec)
	name := smokeRunName(rt.Name, hash)
	key := types.NamespacedName{Namespace: r.Config.SmokeTestNamespace, Name: name}
	base := rt.DeepCopy()
	rt.Status.SpecHash, rt.Status.SmokeTestRun, rt.Status.ObservedGeneration = hash, name, rt.Generation

	run := &execv1alpha1.CodeRun{}
	err := r.Get(ctx, key, run)
	switch {
	case apierrors.IsNotFound(err):
		if base.Status.SpecHash == hash && smokeTestEnded(base) {
			// This spec was tested and its run since deleted (or the spec changed in what a
			// smoke test does not prove, such as displayName): one smoke run per spec.
			c := *meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
			c.ObservedGeneration = rt.Generation
			meta.SetStatusCondition(&rt.Status.Conditions, c)
			return ctrl.Result{}, r.writeStatus(ctx, base, rt, "")
		}
		run = smokeRun(rt, key, r.Config)
		if err := ctrl.SetControllerReference(rt, run, r.Scheme); err != nil {
			return ctrl.Result{}, fmt.Errorf("owning the smoke run: %w", err)
		}
		if err := r.Create(ctx, run); err != nil && !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("creating smoke run %s: %w", key, err)
		}
		log.Info("started smoke test", "run", key.String(), "specHash", hash, "image", rt.Spec.Image)
		r.setReady(rt, metav1.ConditionFalse, execv1alpha1.RuntimeReasonSmokeTestRunning,
			fmt.Sprintf("the smoke test %s/%s is running", key.Namespace, key.Name))
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("getting smoke run %s: %w", key, err)
	case !finished(run):
		r.setReady(rt, metav1.ConditionFalse, execv1alpha1.RuntimeReasonSmokeTestRunning,
			fmt.Sprintf("the smoke test %s/%s is %s", key.Namespace, key.Name, orDefault(strings.ToLower(string(run.Status.Phase)), "starting")))
	default:
		// The cache keeps no output of a finished run; the API server has it.
		full := &execv1alpha1.CodeRun{}
		if err := r.APIReader.Get(ctx, key, full); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		passed, why := smokeOutcome(full, rt.Spec.SmokeTest.ExpectedStdout)
		if passed {
			r.setReady(rt, metav1.ConditionTrue, execv1alpha1.RuntimeReasonSmokeTestPassed, why)
		} else {
			r.setReady(rt, metav1.ConditionFalse, execv1alpha1.RuntimeReasonSmokeTestFailed, why)
		}
	}
	if err := r.deleteOldSmokeRuns(ctx, rt, name); err != nil {
		return ctrl.Result{}, err
	}
	event := ""
	if c := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady); c != nil &&
		c.Reason != execv1alpha1.RuntimeReasonSmokeTestRunning {
		event = c.Reason
	}
	return ctrl.Result{}, r.writeStatus(ctx, base, rt, event)
}

// smokeTestEnded reports whether rt's Ready condition tells how its smoke test ended.
func smokeTestEnded(rt *execv1alpha1.Runtime) bool {
	c := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
	return c != nil && (c.Reason == execv1alpha1.RuntimeReasonSmokeTestPassed || c.Reason == execv1alpha1.RuntimeReasonSmokeTestFailed)
}

func (r *RuntimeReconciler) setReady(rt *execv1alpha1.Runtime, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&rt.Status.Conditions, metav1.Condition{
		Type: execv1alpha1.RuntimeConditionReady, Status: status, Reason: reason,
		Message:            textcut.Prefix(message, textcut.MaxConditionMessage),
		ObservedGeneration: rt.Generation,
		LastTransitionTime: metav1.NewTime(r.Clock.Now()),
	})
}

// writeStatus writes rt's status when it changed, then emits an event for a smoke test that
// just ended (eventReason, "" for none).
func (r *RuntimeReconciler) writeStatus(ctx context.Context, base, rt *execv1alpha1.Runtime, eventReason string) error {
	if equality.Semantic.DeepEqual(base.Status, rt.Status) {
		return nil
	}
	if err := r.Status().Patch(ctx, rt, client.MergeFrom(base)); err != nil {
		return client.IgnoreNotFound(err)
	}
	if eventReason != "" && eventReason != readyReason(base) {
		c := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady)
		eventType := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			eventType = corev1.EventTypeWarning
		}
		// About the smoke run, related to the Runtime: an event about a cluster-scoped
		// object lives in the default namespace, where the operator may write nothing.
		smoke := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: r.Config.SmokeTestNamespace, Name: rt.Status.SmokeTestRun}}
		smoke.SetGroupVersionKind(execv1alpha1.GroupVersion.WithKind("CodeRun"))
		r.Recorder.Eventf(smoke, rt, eventType, eventReason, "SmokeTest", "%s", textcut.Shorten(c.Message, textcut.MaxEventNote))
	}
	return nil
}

func readyReason(rt *execv1alpha1.Runtime) string {
	if c := meta.FindStatusCondition(rt.Status.Conditions, execv1alpha1.RuntimeConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// deleteOldSmokeRuns deletes the smoke runs of rt other than current: those of older specs.
func (r *RuntimeReconciler) deleteOldSmokeRuns(ctx context.Context, rt *execv1alpha1.Runtime, current string) error {
	runs := &execv1alpha1.CodeRunList{}
	if err := r.List(ctx, runs, client.InNamespace(r.Config.SmokeTestNamespace),
		client.MatchingLabels{LabelSmokeTestRuntimeUID: string(rt.UID)}); err != nil {
		return fmt.Errorf("listing the smoke runs of %s: %w", rt.Name, err)
	}
	for i := range runs.Items {
		old := &runs.Items[i]
		if old.Name == current || !old.DeletionTimestamp.IsZero() {
			continue
		}
		if err := r.Delete(ctx, old, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting old smoke run %s: %w", old.Name, err)
		}
		logf.FromContext(ctx).Info("deleted the smoke run of an older spec", "runtime", rt.Name, "run", old.Name)
	}
	return nil
}

// specHash identifies what a smoke test proves: everything of a Runtime's spec that
// changes how programs run (not its names, version label or Judge0 id).
func specHash(spec *execv1alpha1.RuntimeSpec) string {
	tested := struct {
		Image        string                    `json:"image"`
		SourceFile   string                    `json:"sourceFile"`
		Compile      *execv1alpha1.CompileStep `json:"compile,omitempty"`
		Run          execv1alpha1.RunStep      `json:"run"`
		Env          []execv1alpha1.EnvVar     `json:"env,omitempty"`
		ScratchSize  string                    `json:"scratchSize,omitempty"`
		MaxProcesses *int32                    `json:"maxProcesses,omitempty"`
		SmokeTest    execv1alpha1.SmokeTest    `json:"smokeTest"`
	}{
		Image: spec.Image, SourceFile: spec.SourceFile, Compile: spec.Compile, Run: spec.Run, Env: spec.Env,
		MaxProcesses: spec.MaxProcesses, SmokeTest: spec.SmokeTest,
	}
	if spec.ScratchSize != nil {
		// By value: 1024Mi and 1Gi are the same size.
		tested.ScratchSize = fmt.Sprint(spec.ScratchSize.Value())
	}
	data, err := json.Marshal(tested)
	if err != nil {
		panic(fmt.Sprintf("encoding a Runtime's spec: %v", err)) // plain data always encodes
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

// smokeRunName is the name of the smoke run of a Runtime's spec: smoke-<runtime>-<hash>.
func smokeRunName(runtimeName, hash string) string {
	const maxName = 253 - len("smoke-") - 1 - smokeHashLength
	runtimeName = strings.TrimRight(runtimeName[:min(len(runtimeName), maxName)], ".-")
	return "smoke-" + runtimeName + "-" + hash[:smokeHashLength]
}

// smokeRun is the CodeRun that runs rt's smoke test, named key. It gets the default
// limits, which programs get, but the longest timeout: a first run on a busy node (a JVM
// starting, a cold page cache) must not make a working Runtime fail its only test.
func smokeRun(rt *execv1alpha1.Runtime, key types.NamespacedName, cfg config.Config) *execv1alpha1.CodeRun {
	limits := cfg.DefaultLimits.DeepCopy()
	limits.TimeoutSeconds = ptr.To(*cfg.MaxLimits.TimeoutSeconds)
	return &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: key.Name, Namespace: key.Namespace,
			Labels:      map[string]string{LabelSmokeTestRuntimeUID: string(rt.UID)},
			Annotations: map[string]string{AnnotationSmokeTestOf: rt.Name},
		},
		Spec: execv1alpha1.CodeRunSpec{
			Language: execv1alpha1.Language(rt.Spec.Language),
			Version:  rt.Spec.Version,
			Source:   rt.Spec.SmokeTest.Source,
			Stdin:    rt.Spec.SmokeTest.Stdin,
			Limits:   *limits,
		},
	}
}

// smokeOutcome tells whether a finished smoke run passed, and says why in a sentence.
func smokeOutcome(run *execv1alpha1.CodeRun, expected string) (bool, string) {
	res := run.Status.Result
	id := run.Namespace + "/" + run.Name
	if res.Reason == execv1alpha1.ReasonCompleted && res.Stdout == expected {
		return true, fmt.Sprintf("the smoke test %s printed what it should", id)
	}
	how := string(res.Reason)
	if res.ExitCode != nil && res.Reason != execv1alpha1.ReasonCompleted {
		how += fmt.Sprintf(", exit code %d", *res.ExitCode)
	}
	if res.Message != "" {
		how += ": " + res.Message
	}
	if res.Reason == execv1alpha1.ReasonCompleted {
		return false, fmt.Sprintf("the smoke test %s printed %q, want %q", id, firstLines(res.Stdout), firstLines(expected))
	}
	msg := fmt.Sprintf("the smoke test %s ended with %s", id, how)
	printed := res.Output
	if res.Reason == execv1alpha1.ReasonCompileError && res.Compile != nil {
		printed = res.Compile.Output
	}
	if printed != "" {
		msg += "; it printed: " + firstLines(printed)
	}
	return false, msg
}

// firstLines is the beginning of s: a few lines, a few hundred bytes.
func firstLines(s string) string {
	lines := strings.SplitAfterN(s, "\n", maxShownLines+1)
	if len(lines) > maxShownLines {
		lines = lines[:maxShownLines]
	}
	out := strings.Join(lines, "")
	if len(out) > maxShownBytes {
		out = textcut.Prefix(out, maxShownBytes)
	}
	if len(out) < len(s) {
		out += "..."
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// smokeRunToRuntime maps a smoke run to the Runtime it tests.
func smokeRunToRuntime(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetAnnotations()[AnnotationSmokeTestOf]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: name}}}
}

// SetupWithManager registers the Runtime controller.
func (r *RuntimeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	inSmokeNamespace := predicate.NewPredicateFuncs(func(obj client.Object) bool {
		return obj.GetNamespace() == r.Config.SmokeTestNamespace
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("runtime").
		// Status writes (its own) need no pass: only spec changes (generation) do.
		For(&execv1alpha1.Runtime{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&execv1alpha1.CodeRun{}, handler.EnqueueRequestsFromMapFunc(smokeRunToRuntime), builder.WithPredicates(inSmokeNamespace)).
		Complete(r)
}
