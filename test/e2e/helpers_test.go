//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// resultTimeout bounds the wait for one run's result: the operator's start timeout (a run
// whose pod cannot start ends as SystemError by then), the run's own timeout, and slack for
// a busy two-core node.
func resultTimeout(run *execv1alpha1.CodeRun) time.Duration {
	timeout := *operatorConfig.DefaultLimits.TimeoutSeconds
	if run.Spec.Limits.TimeoutSeconds != nil {
		timeout = *run.Spec.Limits.TimeoutSeconds
	}
	return operatorConfig.StartTimeout.Duration + time.Duration(timeout)*time.Second + time.Minute
}

var nameSeq atomic.Int64

// runName returns a CodeRun name unique to this suite and call: e2e-<what>-<suite><n>.
func runName(what string) string {
	return fmt.Sprintf("e2e-%s-%s%d", what, suiteID, nameSeq.Add(1))
}

// suiteLabels are the labels of every CodeRun the suite creates.
func suiteLabels() map[string]string {
	return map[string]string{partOfLabel: partOfValue, suiteLabel: suiteID}
}

// newRun returns a CodeRun in the runs namespace with the suite's labels.
func newRun(name string, spec execv1alpha1.CodeRunSpec) *execv1alpha1.CodeRun {
	return &execv1alpha1.CodeRun{
		TypeMeta:   metav1.TypeMeta{APIVersion: execv1alpha1.GroupVersion.String(), Kind: "CodeRun"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: runsNamespace, Labels: suiteLabels()},
		Spec:       spec,
	}
}

// timeout returns limits with only timeoutSeconds set.
func timeout(seconds int32) execv1alpha1.Limits {
	return execv1alpha1.Limits{TimeoutSeconds: ptr.To(seconds)}
}

// createRun creates run with the Go client and deletes it when the test ends.
func createRun(t *testing.T, run *execv1alpha1.CodeRun) {
	t.Helper()
	cleanupRun(t, run.Name)
	if err := k8s.Create(context.Background(), run); err != nil {
		t.Fatalf("creating CodeRun %s: %v", run.Name, err)
	}
}

// kubectl runs kubectl (against KUBECONFIG, as the suite's client) with stdin and returns
// its standard output.
func kubectl(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

var appliedName = regexp.MustCompile(`(?m)^coderun\.exec\.coderun\.dev/(\S+) created$`)

// apply applies manifest with `kubectl apply -f -`, as a user would, checks that kubectl
// created exactly the CodeRuns names, and deletes them when the test ends.
func apply(t *testing.T, manifest string, names ...string) {
	t.Helper()
	for _, name := range names {
		cleanupRun(t, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := kubectl(ctx, manifest, "apply", "-f", "-")
	if err != nil {
		if len(manifest) > 2000 {
			manifest = manifest[:2000] + "\n..."
		}
		t.Fatalf("%v\nmanifest:\n%s", err, manifest)
	}
	var created []string
	for _, m := range appliedName.FindAllStringSubmatch(out, -1) {
		created = append(created, m[1])
	}
	if strings.Join(created, ",") != strings.Join(names, ",") {
		t.Fatalf("kubectl apply created %v, want %v; its output:\n%s", created, names, out)
	}
}

// cleanupRun deletes the CodeRun name when the test ends (its Job and pod go with it), after
// logging what a maintainer needs if the test failed: the CodeRun, its pod and what the
// operator logged about it.
func cleanupRun(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			logDiagnostics(ctx, t, name)
		}
		run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: runsNamespace, Name: name}}
		if err := k8s.Delete(ctx, run, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting CodeRun %s: %v", name, err)
		}
	})
}

func logDiagnostics(ctx context.Context, t *testing.T, name string) {
	var run execv1alpha1.CodeRun
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: name}, &run); client.IgnoreNotFound(err) != nil {
		t.Logf("diagnostics: cannot read CodeRun %s: %v", name, err)
		return
	}
	out, err := kubectl(ctx, "", "-n", runsNamespace, "get", "coderun", name, "-o", "yaml")
	t.Logf("diagnostics: kubectl get coderun %s -o yaml (%v):\n%s", name, err, out)
	if run.UID != "" {
		out, err = kubectl(ctx, "", "-n", runsNamespace, "describe", "pods", "-l", execv1alpha1.LabelRunUID+"="+string(run.UID))
		t.Logf("diagnostics: kubectl describe pods of %s (%v):\n%s", name, err, out)
	}
	// A warm run's pod is its pool member's, labeled when the member was made, not with the run.
	if run.Status.Path == execv1alpha1.PathWarm && run.Status.PodName != "" {
		out, err = kubectl(ctx, "", "-n", runsNamespace, "describe", "pod", run.Status.PodName)
		t.Logf("diagnostics: kubectl describe pod %s (the member that ran %s) (%v):\n%s", run.Status.PodName, name, err, out)
		out, err = kubectl(ctx, "", "-n", runsNamespace, "logs", run.Status.PodName, "--tail=200")
		t.Logf("diagnostics: kubectl logs %s (%v):\n%s", run.Status.PodName, err, out)
	}
	out, err = kubectl(ctx, "", "-n", operatorNamespace, "logs", "deploy/"+operatorDeployment, "--tail=2000")
	var lines []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, name) {
			lines = append(lines, line)
		}
	}
	t.Logf("diagnostics: operator log lines about %s (%v):\n%s", name, err, strings.Join(lines, ""))
}

// listForWatch lists the objects newList and opts select and returns them, with the
// list's resource version and a watcher for opts to watch on from there.
func listForWatch(ctx context.Context, newList func() client.ObjectList, opts client.ListOptions) ([]runtime.Object, string, cache.Watcher, error) {
	list := newList()
	listOpts := opts
	if err := k8s.List(ctx, list, &listOpts); err != nil {
		return nil, "", nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, "", nil, err
	}
	lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, raw metav1.ListOptions) (watch.Interface, error) {
		watchOpts := opts
		watchOpts.Raw = &raw
		return k8s.Watch(ctx, newList(), &watchOpts)
	}}
	return items, list.GetResourceVersion(), lw, nil
}

// watchUntil lists the objects newList and opts select, hands each to cond as an Added
// event, then watches them from the list's resource version, handing cond every event in
// the order the API server committed them, until cond returns true, an error, or ctx ends.
// The watch resumes where it left off if the API server closes it.
func watchUntil(ctx context.Context, newList func() client.ObjectList, opts client.ListOptions, cond watchtools.ConditionFunc) error {
	items, rv, lw, err := listForWatch(ctx, newList, opts)
	if err != nil {
		return err
	}
	for _, item := range items {
		done, err := cond(watch.Event{Type: watch.Added, Object: item})
		if err != nil || done {
			return err
		}
	}
	_, err = watchtools.Until(ctx, rv, lw, cond)
	return err
}

// waitForResult watches the CodeRun name until it has a result and returns it.
func waitForResult(t *testing.T, name string, limit time.Duration) *execv1alpha1.CodeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var got *execv1alpha1.CodeRun
	var last execv1alpha1.CodeRunStatus
	err := watchUntil(ctx, func() client.ObjectList { return &execv1alpha1.CodeRunList{} },
		client.ListOptions{Namespace: runsNamespace, FieldSelector: fields.OneTermEqualSelector("metadata.name", name)},
		func(e watch.Event) (bool, error) {
			run, ok := e.Object.(*execv1alpha1.CodeRun)
			if !ok {
				return false, nil
			}
			if e.Type == watch.Deleted {
				return false, fmt.Errorf("CodeRun %s was deleted before it had a result", name)
			}
			last = run.Status
			if run.Status.Result != nil {
				got = run
				return true, nil
			}
			return false, nil
		})
	if err != nil {
		t.Fatalf("waiting up to %s for the result of CodeRun %s: %v (last phase %q, conditions %v)", limit, name, err, last.Phase, last.Conditions)
	}
	return got
}

// runProgram creates a CodeRun of spec with the Go client, waits for its result and returns
// the CodeRun.
func runProgram(t *testing.T, what string, spec execv1alpha1.CodeRunSpec) *execv1alpha1.CodeRun {
	t.Helper()
	run := newRun(runName(what), spec)
	start := time.Now()
	createRun(t, run)
	done := waitForResult(t, run.Name, resultTimeout(run))
	logResult(t, done, time.Since(start))
	return done
}

func logResult(t *testing.T, run *execv1alpha1.CodeRun, took time.Duration) {
	t.Helper()
	res := run.Status.Result
	exit := "unset"
	if res.ExitCode != nil {
		exit = fmt.Sprint(*res.ExitCode)
	}
	t.Logf("%s: %s/%s exit %s signal %q in %s (wall %s, cpu %s, peak memory %s, %d bytes of output)",
		run.Name, run.Status.Phase, res.Reason, exit, res.Signal, took.Round(time.Millisecond),
		durationString(res.WallTime), durationString(res.CPUTime), quantityString(res.PeakMemory), len(res.Output))
}

func durationString(d *metav1.Duration) string {
	if d == nil {
		return "unset"
	}
	return d.Duration.String()
}

func quantityString(q *resource.Quantity) string {
	if q == nil {
		return "unset"
	}
	return q.String()
}

// expectEnd checks the phase, reason and exit code of a finished run (exitCode nil: any).
func expectEnd(t *testing.T, run *execv1alpha1.CodeRun, phase execv1alpha1.CodeRunPhase, reason execv1alpha1.ResultReason, exitCode *int32) {
	t.Helper()
	res := run.Status.Result
	if run.Status.Phase != phase || res.Reason != reason {
		t.Errorf("%s ended %s/%s (%s), want %s/%s; output:\n%s", run.Name, run.Status.Phase, res.Reason, res.Message, phase, reason, res.Output)
	}
	if exitCode != nil && (res.ExitCode == nil || *res.ExitCode != *exitCode) {
		t.Errorf("%s: exit code %v, want %d", run.Name, ptrString(res.ExitCode), *exitCode)
	}
	finished := meta.FindStatusCondition(run.Status.Conditions, execv1alpha1.ConditionFinished.String())
	if finished == nil || finished.Status != metav1.ConditionTrue || finished.Reason != string(reason) {
		t.Errorf("%s: Finished condition %+v, want True with reason %s", run.Name, finished, reason)
	}
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// expectHealthyNodes checks that every node is Ready and under no memory, PID or disk
// pressure: what a run that tried to exhaust the node must not have changed.
func expectHealthyNodes(t *testing.T) {
	t.Helper()
	var nodes corev1.NodeList
	if err := k8s.List(context.Background(), &nodes); err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	if len(nodes.Items) == 0 {
		t.Fatal("the cluster has no nodes")
	}
	for _, node := range nodes.Items {
		for _, c := range node.Status.Conditions {
			bad := false
			switch c.Type {
			case corev1.NodeReady:
				bad = c.Status != corev1.ConditionTrue
			case corev1.NodeMemoryPressure, corev1.NodePIDPressure, corev1.NodeDiskPressure:
				bad = c.Status == corev1.ConditionTrue
			}
			if bad {
				t.Errorf("node %s: condition %s is %s (%s: %s)", node.Name, c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
}

// expectNextRunWorks runs a small program and checks that it completes with its output:
// the platform still works after a run that tried to break it.
func expectNextRunWorks(t *testing.T) {
	t.Helper()
	run := runProgram(t, "after", execv1alpha1.CodeRunSpec{Source: "print(6 * 7)\n"})
	expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
	if run.Status.Result.Output != "42\n" {
		t.Errorf("%s: output %q, want %q", run.Name, run.Status.Result.Output, "42\n")
	}
}

// podActive reports whether a run pod holds a run slot: it exists, is not being deleted
// and its container has not ended.
func podActive(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Terminated != nil {
			return false
		}
	}
	return true
}
