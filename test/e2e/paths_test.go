//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// defaultPool is the CodeRunPool the chart creates in the runs namespace (pool.enabled).
const defaultPool = "default"

// bothPaths are the two ways a program starts: in a Job of its own, or in a warm member.
var bothPaths = []execv1alpha1.RunPath{execv1alpha1.PathCold, execv1alpha1.PathWarm}

// getPool reads the default pool.
func getPool(ctx context.Context, t *testing.T) *execv1alpha1.CodeRunPool {
	t.Helper()
	var pool execv1alpha1.CodeRunPool
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: defaultPool}, &pool); err != nil {
		t.Fatalf("reading CodeRunPool %s/%s (the chart's default pool): %v", runsNamespace, defaultPool, err)
	}
	return &pool
}

// poolShape is the shape of the default pool's members, with the operator's defaults
// filled in, as the operator computes it.
func poolShape(t *testing.T) execv1alpha1.Limits {
	t.Helper()
	return operatorConfig.Effective(getPool(context.Background(), t).Spec.Limits)
}

// coldCPU returns a CPU limit that differs from the default pool's, so that a run with it
// fits no pool and takes the cold path.
func coldCPU(t *testing.T) resource.Quantity {
	t.Helper()
	for _, q := range []string{"250m", "300m", "200m"} {
		cpu := resource.MustParse(q)
		if cpu.Cmp(*poolShape(t).CPU) != 0 {
			return cpu
		}
	}
	t.Fatal("no CPU limit to force the cold path")
	return resource.Quantity{}
}

// onPath returns spec with the CPU limit that sends it down path: the pool's own CPU for
// Warm (the timeout and memory of spec must fit the pool), another for Cold.
func onPath(t *testing.T, spec execv1alpha1.CodeRunSpec, path execv1alpha1.RunPath) execv1alpha1.CodeRunSpec {
	t.Helper()
	spec = *spec.DeepCopy()
	if path == execv1alpha1.PathCold {
		spec.Limits.CPU = ptr.To(coldCPU(t))
		return spec
	}
	shape := poolShape(t)
	spec.Limits.CPU = ptr.To(shape.CPU.DeepCopy())
	want := operatorConfig.Effective(spec.Limits)
	if want.Memory.Cmp(*shape.Memory) > 0 || *want.TimeoutSeconds > *shape.TimeoutSeconds {
		t.Fatalf("a warm run must fit pool %s (memory %s, timeout %ds); this one asks for %s and %ds",
			defaultPool, shape.Memory, *shape.TimeoutSeconds, want.Memory, *want.TimeoutSeconds)
	}
	return spec
}

// warmAttempts is how often runOnPath tries a warm run that found every member taken by
// other runs (the parallel tests, a benchmark) before it fails.
const warmAttempts = 4

// runOnPath runs spec (as onPath makes it) and checks that it took path, with pool
// "default" on the warm path. A warm run waits for a ready member first; if other runs took
// every member meanwhile and it went cold, it runs again, up to warmAttempts times.
func runOnPath(t *testing.T, what string, spec execv1alpha1.CodeRunSpec, path execv1alpha1.RunPath) *execv1alpha1.CodeRun {
	t.Helper()
	spec = onPath(t, spec, path)
	for attempt := 1; ; attempt++ {
		if path == execv1alpha1.PathWarm {
			waitForReadyMember(t)
		}
		run := runProgram(t, fmt.Sprintf("%s-%s", what, pathName(path)), spec)
		st := run.Status
		switch {
		case st.Path == path && (path == execv1alpha1.PathCold) == (st.Pool == ""):
			if path == execv1alpha1.PathWarm && st.Pool != defaultPool {
				t.Fatalf("%s ran in pool %q, want %q", run.Name, st.Pool, defaultPool)
			}
			return run
		case path == execv1alpha1.PathWarm && st.Path == execv1alpha1.PathCold && attempt < warmAttempts:
			t.Logf("%s went cold (every member taken by other runs?); trying again", run.Name)
		default:
			t.Fatalf("%s took path %q (pool %q, Job %s, pod %s), want %s (attempt %d)", run.Name, st.Path, st.Pool, st.JobName, st.PodName, path, attempt)
		}
	}
}

func pathName(path execv1alpha1.RunPath) string {
	if path == execv1alpha1.PathWarm {
		return "warm"
	}
	return "cold"
}

// waitForReadyMember waits until the default pool has a ready, idle member: a member Job
// labeled idle whose pod's runner is running.
func waitForReadyMember(t *testing.T) {
	t.Helper()
	readyMember(t)
}

// readyMember waits until the default pool has a ready, idle member and returns its pod.
// Other runs may take it right after.
func readyMember(t *testing.T) corev1.Pod {
	t.Helper()
	var last string
	var member corev1.Pod
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		ready, err := readyMembers(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d ready members", len(ready))
		if len(ready) == 0 {
			return false, nil
		}
		member = ready[0]
		return true, nil
	})
	if err != nil {
		t.Fatalf("pool %s has no ready member after 3 minutes (%s): %v", defaultPool, last, err)
	}
	return member
}

// readyMembers returns the running pods of the default pool's idle members.
func readyMembers(ctx context.Context) ([]corev1.Pod, error) {
	idle := map[string]bool{}
	var jobs batchv1.JobList
	if err := k8s.List(ctx, &jobs, client.InNamespace(runsNamespace),
		client.MatchingLabels{execv1alpha1.LabelPool: defaultPool, execv1alpha1.LabelMember: execv1alpha1.MemberIdle}); err != nil {
		return nil, err
	}
	for _, job := range jobs.Items {
		if job.DeletionTimestamp == nil {
			idle[job.Name] = true
		}
	}
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(runsNamespace), client.MatchingLabels{execv1alpha1.LabelPool: defaultPool}); err != nil {
		return nil, err
	}
	var ready []corev1.Pod
	for _, pod := range pods.Items {
		if idle[jobOf(&pod)] && pod.Status.Phase == corev1.PodRunning && podActive(&pod) && containerRunning(&pod) {
			ready = append(ready, pod)
		}
	}
	return ready, nil
}

func containerRunning(pod *corev1.Pod) bool {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running != nil {
			return true
		}
	}
	return false
}

// jobOf is the name of the Job that controls pod, or "".
func jobOf(pod *corev1.Pod) string {
	for _, ref := range pod.OwnerReferences {
		if ref.Controller != nil && *ref.Controller && ref.Kind == "Job" {
			return ref.Name
		}
	}
	return ""
}
