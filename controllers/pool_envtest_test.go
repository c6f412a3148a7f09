package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// TestPoolSchema checks what the CodeRunPool CRD's schema makes the API server accept,
// default and refuse: the API a kubectl user meets.
func TestPoolSchema(t *testing.T) {
	needEnvtest(t)
	ns := testenv.Namespace(t)
	q := func(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }
	cases := []struct {
		name    string
		spec    execv1alpha1.CodeRunPoolSpec
		wantErr string // "" means accepted
	}{
		{"empty", execv1alpha1.CodeRunPoolSpec{}, ""},
		{"everything", execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](8), Language: "python", CPURequest: q("100m"), MaxIdleSeconds: ptr.To[int32](60),
			Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](30), Memory: q("512Mi"), CPU: q("500m")}}, ""},
		{"replicas 0", execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](0)}, ""},
		{"negative replicas", execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](-1)}, "spec.replicas: Invalid value: -1"},
		{"too many replicas", execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](1001)}, "spec.replicas: Invalid value: 1001"},
		// Any language name passes the schema; the operator says when no Runtime offers it.
		{"unknown language", execv1alpha1.CodeRunPoolSpec{Language: "cobol"}, ""},
		{"language in capitals", execv1alpha1.CodeRunPoolSpec{Language: "Cobol"}, "spec.language in body should match"},
		{"version range", execv1alpha1.CodeRunPoolSpec{Version: "~3.13"}, ""},
		{"version too long", execv1alpha1.CodeRunPoolSpec{Version: strings.Repeat("1", 65)}, "spec.version: Too long"},
		{"maxIdleSeconds too short", execv1alpha1.CodeRunPoolSpec{MaxIdleSeconds: ptr.To[int32](9)}, "spec.maxIdleSeconds: Invalid value: 9"},
		{"maxIdleSeconds over a day", execv1alpha1.CodeRunPoolSpec{MaxIdleSeconds: ptr.To[int32](86401)}, "spec.maxIdleSeconds: Invalid value: 86401"},
		{"cpuRequest too small", execv1alpha1.CodeRunPoolSpec{CPURequest: q("1m")}, "cpuRequest must be at least 10m"},
		{"timeout 0", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](0)}}, "spec.limits.timeoutSeconds: Invalid value: 0"},
		{"memory too small", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{Memory: q("1Mi")}}, "memory must be between 16Mi and 64Gi"},
		{"cpu too large", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{CPU: q("65")}}, "cpu must be between 10m and 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := &execv1alpha1.CodeRunPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "p-"}, Spec: tc.spec}
			expectAdmission(t, pool, tc.wantErr)
		})
	}

	t.Run("defaults", func(t *testing.T) {
		// What kubectl sends for a manifest with "spec: {}". (The Go type leaves an empty
		// spec out, and the API server defaults no field of a spec that is not there.)
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "exec.coderun.dev/v1alpha1", "kind": "CodeRunPool",
			"metadata": map[string]any{"namespace": ns, "name": "defaulted"},
			"spec":     map[string]any{},
		}}
		if err := k8sClient.Create(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		pool := &execv1alpha1.CodeRunPool{}
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(u), pool); err != nil {
			t.Fatal(err)
		}
		s := pool.Spec
		if s.Replicas == nil || *s.Replicas != 2 || s.Language != execv1alpha1.LanguagePython || s.MaxIdleSeconds == nil || *s.MaxIdleSeconds != 600 {
			t.Errorf("replicas %v language %q maxIdleSeconds %v, want 2, python, 600", s.Replicas, s.Language, s.MaxIdleSeconds)
		}
		if s.CPURequest != nil || s.Limits.CPU != nil || s.Limits.Memory != nil || s.Limits.TimeoutSeconds != nil {
			t.Errorf("cpuRequest %v limits %+v, want them left to the operator's defaults", s.CPURequest, s.Limits)
		}
	})
}

// TestPoolScaleSubresource scales a pool as kubectl scale and an HPA do, through the scale
// subresource, with the operator running: spec.replicas changes, and the scale's status
// reports the idle members and the selector of their pods.
func TestPoolScaleSubresource(t *testing.T) {
	op := startOperator(t, testConfig())
	pool := &execv1alpha1.CodeRunPool{ObjectMeta: metav1.ObjectMeta{Namespace: op.namespace, Name: "python"},
		Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](1)}}
	if err := k8sClient.Create(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	scale := &autoscalingv1.Scale{}
	eventually(t, 20*time.Second, "the scale to report 1 member", func() (bool, error) {
		err := k8sClient.SubResource("scale").Get(context.Background(), pool, scale)
		return err == nil && scale.Status.Replicas == 1, err
	})
	if scale.Spec.Replicas != 1 || scale.Status.Selector != "exec.coderun.dev/pool=python" {
		t.Errorf("scale spec.replicas %d status.selector %q, want 1 and exec.coderun.dev/pool=python", scale.Spec.Replicas, scale.Status.Selector)
	}

	// kubectl scale coderunpool/python --replicas=3
	scale.Spec.Replicas = 3
	if err := k8sClient.SubResource("scale").Update(context.Background(), pool, client.WithSubResourceBody(scale)); err != nil {
		t.Fatalf("scaling: %v", err)
	}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pool), pool); err != nil {
		t.Fatal(err)
	}
	if *pool.Spec.Replicas != 3 {
		t.Errorf("spec.replicas %d after scaling to 3", *pool.Spec.Replicas)
	}
	eventually(t, 20*time.Second, "3 members", func() (bool, error) {
		err := k8sClient.SubResource("scale").Get(context.Background(), pool, scale)
		return err == nil && scale.Status.Replicas == 3, err
	})
	// The selector selects the members' pods: an HPA averages their metrics.
	jobs := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), jobs, client.InNamespace(op.namespace)); err != nil {
		t.Fatal(err)
	}
	for _, job := range jobs.Items {
		if job.Spec.Template.Labels[execv1alpha1.LabelPool] != "python" {
			t.Errorf("member %s pod labels %v are not selected by %s", job.Name, job.Spec.Template.Labels, scale.Status.Selector)
		}
	}
	if len(jobs.Items) != 3 {
		t.Errorf("%d Jobs, want 3 members", len(jobs.Items))
	}
	got := &execv1alpha1.CodeRunPool{}
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pool), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.ObservedGeneration != got.Generation {
		t.Errorf("observedGeneration %d, generation %d", got.Status.ObservedGeneration, got.Generation)
	}
}

// startMembers waits for n member Jobs of pool in namespace and plays the Job controller
// and kubelet for them: each gets a pod whose run container is running. It returns the
// pods by Job name.
func startMembers(t *testing.T, namespace, pool string, n int) map[string]*corev1.Pod {
	t.Helper()
	jobs := &batchv1.JobList{}
	eventually(t, 20*time.Second, fmt.Sprintf("%d members", n), func() (bool, error) {
		err := k8sClient.List(context.Background(), jobs, client.InNamespace(namespace), client.MatchingLabels{
			execv1alpha1.LabelPool: pool, execv1alpha1.LabelMember: execv1alpha1.MemberIdle})
		return err == nil && len(jobs.Items) >= n, err
	})
	pods := map[string]*corev1.Pod{}
	for i := range jobs.Items[:n] {
		pod := startPod(t, &jobs.Items[i]) // the restricted namespace admits it
		setContainerState(t, pod, running())
		pods[jobs.Items[i].Name] = pod
	}
	return pods
}

// startPoolOperator runs an operator with a fake runner behind its Attacher.
func startPoolOperator(t *testing.T, cfg config.Config, namespace string, attacher Attacher) (*operator, func()) {
	t.Helper()
	return runOperatorWith(t, cfg, namespace, func(r *CodeRunReconciler) { r.Attacher = attacher })
}

// TestClaimRace creates 40 CodeRuns at once against a pool of 3 ready members: each
// member runs exactly one program, every run gets exactly one result, and the others go
// cold (or queue for a slot).
func TestClaimRace(t *testing.T) {
	namespace := newRunsNamespace(t)
	cfg := testConfig()
	cfg.MaxConcurrentRuns = 10
	runner := newFakeRunner(nil)
	_, stop := startPoolOperator(t, cfg, namespace, runner)
	defer stop()
	pool := &execv1alpha1.CodeRunPool{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "python"},
		Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](3)}}
	if err := k8sClient.Create(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	members := startMembers(t, namespace, "python", 3)
	eventually(t, 20*time.Second, "3 ready members", func() (bool, error) {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pool), pool)
		return err == nil && pool.Status.Ready == 3, err
	})

	const n = 40
	runs := make([]*execv1alpha1.CodeRun, n)
	var wg sync.WaitGroup
	for i := range runs {
		runs[i] = &execv1alpha1.CodeRun{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: fmt.Sprintf("race-%02d", i)},
			Spec:       execv1alpha1.CodeRunSpec{Source: fmt.Sprintf("print(%d)", i)},
		}
		wg.Go(func() {
			if err := k8sClient.Create(context.Background(), runs[i]); err != nil {
				t.Errorf("creating %s: %v", runs[i].Name, err)
			}
		})
	}
	wg.Wait()

	// Play the kubelet for the cold runs, as they get Jobs, until every run has a result.
	started := map[string]bool{}
	eventually(t, 90*time.Second, "a result for every run", func() (bool, error) {
		done := 0
		for _, run := range runs {
			got := getRun(t, run)
			switch {
			case got.Status.Result != nil:
				done++
			case got.Status.Path == execv1alpha1.PathCold && !started[run.Name]:
				job := &batchv1.Job{}
				if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: jobName(run)}, job); err != nil {
					return false, client.IgnoreNotFound(err)
				}
				setContainerState(t, startPod(t, job), terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))))
				started[run.Name] = true
			}
		}
		return done == n, nil
	})

	warm := 0
	byMember := map[string]string{}
	for _, run := range runs {
		got := getRun(t, run)
		if got.Status.Phase != execv1alpha1.PhaseSucceeded {
			t.Errorf("%s: phase %s (%+v)", run.Name, got.Status.Phase, got.Status.Result)
		}
		switch got.Status.Path {
		case execv1alpha1.PathWarm:
			warm++
			if _, ok := members[got.Status.JobName]; !ok || got.Status.Pool != "python" {
				t.Errorf("%s ran warm on %q of pool %q, not one of the members", run.Name, got.Status.JobName, got.Status.Pool)
			}
			if other, dup := byMember[got.Status.JobName]; dup {
				t.Errorf("member %s ran %s and %s", got.Status.JobName, other, run.Name)
			}
			byMember[got.Status.JobName] = run.Name
		case execv1alpha1.PathCold:
			if !started[run.Name] {
				t.Errorf("%s is cold but its Job never ran", run.Name)
			}
		default:
			t.Errorf("%s: path %q", run.Name, got.Status.Path)
		}
	}
	if warm != 3 {
		t.Errorf("%d runs took the warm path, want 3 (one per member)", warm)
	}
	for name, pod := range members {
		frames, ran := runner.member(namespace, pod.Name)
		if len(frames) != 1 || ran != 1 {
			t.Errorf("member %s read %d frames and ran %d programs, want 1 and 1", name, len(frames), ran)
		} else if frames[0].Run != namespace+"/"+byMember[name] {
			t.Errorf("member %s ran %s, but %s recorded it", name, frames[0].Run, byMember[name])
		}
	}
	for run, count := range runner.programsRun() {
		if count != 1 || started[strings.TrimPrefix(run, namespace+"/")] {
			t.Errorf("%s ran %d times in members (cold too: %v)", run, count, started[strings.TrimPrefix(run, namespace+"/")])
		}
	}
}

// TestWarmOperatorRestart stops the operator after it sent a program to a member and
// before the program ended, and starts another (a fresh deliveries): the new operator
// finds the claimed member, the result is recorded, and the program ran once.
func TestWarmOperatorRestart(t *testing.T) {
	namespace := newRunsNamespace(t)
	release := make(chan struct{})
	runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{release: release} })
	conn := runner.connect()
	_, stopFirst := startPoolOperator(t, testConfig(), namespace, conn)
	defer stopFirst()
	pool := &execv1alpha1.CodeRunPool{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "python"},
		Spec: execv1alpha1.CodeRunPoolSpec{Replicas: ptr.To[int32](1)}}
	if err := k8sClient.Create(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	var member string
	var pod *corev1.Pod
	for name, p := range startMembers(t, namespace, "python", 1) {
		member, pod = name, p
	}
	eventually(t, 20*time.Second, "a ready member", func() (bool, error) {
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pool), pool)
		return err == nil && pool.Status.Ready == 1, err
	})

	run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "restarted"}, Spec: execv1alpha1.CodeRunSpec{Source: "print(1)"}}
	if err := k8sClient.Create(context.Background(), run); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the member to receive the program", func() (bool, error) {
		return runner.hasFrame(namespace, pod.Name), nil
	})
	// The operator's process dies: its stream breaks, then it is gone.
	conn.close()
	stopFirst()

	_, stopSecond := startPoolOperator(t, testConfig(), namespace, runner.connect())
	defer stopSecond()
	eventually(t, 20*time.Second, "the new operator to attach again", func() (bool, error) {
		return runner.attachCount() >= 2, nil
	})
	close(release)
	got := waitForResult(t, run)
	if got.Status.Phase != execv1alpha1.PhaseSucceeded || got.Status.Path != execv1alpha1.PathWarm || got.Status.JobName != member || got.Status.PodName != pod.Name {
		t.Errorf("phase %s path %q jobName %q podName %q, want Succeeded on %s", got.Status.Phase, got.Status.Path, got.Status.JobName, got.Status.PodName, member)
	}
	if frames, ran := runner.member(namespace, pod.Name); len(frames) != 1 || ran != 1 {
		t.Errorf("the member read %d frames and ran %d programs, want 1 and 1", len(frames), ran)
	}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: jobName(run)}, &batchv1.Job{}); err == nil {
		t.Error("the run also got a cold Job")
	}
}
