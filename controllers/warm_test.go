package controllers

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/report"
)

// The warm path on a fake client: a pool, its members' Jobs and pods as the cache shows
// them, and a fakeRunner behind the Attacher. Tests reconcile by hand and wait for a
// finished stream on the deliveries' channel, as the controller's source.Channel does.

// newPool is a CodeRunPool with the operator's default shape.
func newPool(name string, replicas int32) *execv1alpha1.CodeRunPool {
	return &execv1alpha1.CodeRunPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("pool-uid-" + name), Generation: 1},
		Spec: execv1alpha1.CodeRunPoolSpec{
			Replicas: ptr.To(replicas), Language: execv1alpha1.LanguagePython, MaxIdleSeconds: ptr.To[int32](600),
		},
	}
}

// memberJobOf is an idle member of pool named name, created at created, as the pool
// controller makes it.
func memberJobOf(pool *execv1alpha1.CodeRunPool, name string, uid int64, created time.Time) *batchv1.Job {
	job := buildMemberJob(pool, builtinPlan(tableConfig()), tableConfig(), uid)
	job.GenerateName, job.Name = "", name
	job.UID = types.UID("job-uid-" + name)
	job.CreationTimestamp = metav1.NewTime(created)
	if err := ctrl.SetControllerReference(pool, job, testScheme); err != nil {
		panic(err)
	}
	return job
}

// memberPodOf is the pod of member job, <job>-pod, with its run container in state (nil:
// pending, not reported).
func memberPodOf(job *batchv1.Job, state *corev1.ContainerState) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: job.Name + "-pod", Namespace: job.Namespace, CreationTimestamp: job.CreationTimestamp,
			Labels: job.Spec.Template.Labels, Annotations: job.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID, Controller: ptr.To(true),
			}},
		},
		Spec:   job.Spec.Template.Spec,
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if state != nil {
		pod.Status.Phase = corev1.PodRunning
		if state.Terminated != nil {
			pod.Status.Phase = corev1.PodSucceeded
		}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, State: *state}}
	}
	return pod
}

// idleMember returns a ready idle member of pool (a Job and its running pod).
func idleMember(pool *execv1alpha1.CodeRunPool, name string, uid int64, created time.Time) []client.Object {
	job := memberJobOf(pool, name, uid, created)
	return []client.Object{job, memberPodOf(job, runningState())}
}

// claimedBy is job after run claimed it, as claim writes it.
func claimedBy(job *batchv1.Job, run *execv1alpha1.CodeRun) *batchv1.Job {
	job.Labels[execv1alpha1.LabelMember] = execv1alpha1.MemberClaimed
	job.Labels[execv1alpha1.LabelRunUID] = string(run.UID)
	job.Annotations = map[string]string{execv1alpha1.AnnotationRun: run.Name}
	job.OwnerReferences = nil
	if err := ctrl.SetControllerReference(run, job, testScheme); err != nil {
		panic(err)
	}
	return job
}

// warmEnv is a CodeRun reconciler with an Attacher on a fake client.
type warmEnv struct {
	t        *testing.T
	c        client.WithWatch
	r        *CodeRunReconciler
	clock    *clocktesting.FakePassiveClock
	runner   *fakeRunner
	recorder *events.FakeRecorder
	logs     *fakeLogs
}

// newWarmEnv builds the reconciler over objects. intercept, when set, wraps the fake
// client's calls.
func newWarmEnv(t *testing.T, runner *fakeRunner, intercept *interceptor.Funcs, objects ...client.Object) *warmEnv {
	t.Helper()
	cfg := tableConfig()
	clock := clocktesting.NewFakePassiveClock(now.Time)
	funcs := interceptor.Funcs{}
	if intercept != nil {
		funcs = *intercept
	}
	create := funcs.Create
	funcs.Create = func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
		obj.SetCreationTimestamp(metav1.NewTime(clock.Now()))
		if create != nil {
			return create(ctx, c, obj, opts...)
		}
		return c.Create(ctx, obj, opts...)
	}
	c := withRunIndex(fake.NewClientBuilder()).
		WithScheme(testScheme).
		WithObjects(objects...).
		WithStatusSubresource(&execv1alpha1.CodeRun{}, &execv1alpha1.CodeRunPool{}).
		WithInterceptorFuncs(funcs).
		Build()
	e := &warmEnv{t: t, c: c, clock: clock, runner: runner, recorder: events.NewFakeRecorder(100), logs: &fakeLogs{}}
	e.r = &CodeRunReconciler{
		Client: c, APIReader: c, Scheme: testScheme, Recorder: e.recorder,
		Config: cfg, Logs: e.logs, Clock: clock, Attacher: runner,
		queue:      newRunQueue(cfg.MaxConcurrentRuns),
		deliveries: newDeliveries(runner, clock),
	}
	for _, obj := range objects {
		if run, ok := obj.(*execv1alpha1.CodeRun); ok {
			e.r.queue.observe(run, true)
		}
	}
	return e
}

func (e *warmEnv) reconcile(name string) ctrl.Result {
	e.t.Helper()
	res, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	if err != nil {
		e.t.Fatalf("reconcile %s: %v", name, err)
	}
	return res
}

// streamEnded waits for a delivery to end and wake its run, as the controller's channel
// source would.
func (e *warmEnv) streamEnded() string {
	e.t.Helper()
	select {
	case ev := <-e.r.deliveries.events:
		return ev.Object.GetName()
	case <-time.After(10 * time.Second):
		e.t.Fatal("no delivery ended within 10s")
		return ""
	}
}

// settle reconciles run name until its status stops changing, waiting for its delivery
// whenever one is in flight.
func (e *warmEnv) settle(name string) *execv1alpha1.CodeRun {
	e.t.Helper()
	got := &execv1alpha1.CodeRun{}
	for range 10 {
		e.reconcile(name)
		before := got.ResourceVersion
		if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, got); err != nil {
			e.t.Fatal(err)
		}
		if s := e.r.deliveries.get(got); s != nil {
			if done, _, _, _ := s.state(); !done {
				e.streamEnded()
				continue
			}
		}
		if got.ResourceVersion == before {
			return got
		}
	}
	e.t.Fatalf("the status of %s did not settle: %+v", name, got.Status)
	return nil
}

func (e *warmEnv) job(name string) (*batchv1.Job, bool) {
	e.t.Helper()
	job := &batchv1.Job{}
	err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, job)
	if err != nil && !apierrors.IsNotFound(err) {
		e.t.Fatal(err)
	}
	return job, err == nil
}

func (e *warmEnv) events() []string {
	var got []string
	for len(e.recorder.Events) > 0 {
		got = append(got, <-e.recorder.Events)
	}
	return got
}

// setPodState writes the kubelet's view of pod.
func (e *warmEnv) setPodState(name string, state *corev1.ContainerState) {
	e.t.Helper()
	pod := &corev1.Pod{}
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, pod); err != nil {
		e.t.Fatal(err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, State: *state}}
	pod.Status.Phase = corev1.PodRunning
	if state.Terminated != nil {
		pod.Status.Phase = corev1.PodSucceeded
	}
	if err := e.c.Status().Update(context.Background(), pod); err != nil {
		e.t.Fatal(err)
	}
}

// assertCold checks that run took the cold path: its own Job, status.path Cold.
func (e *warmEnv) assertCold(run *execv1alpha1.CodeRun) {
	e.t.Helper()
	if run.Status.Path != execv1alpha1.PathCold || run.Status.Pool != "" || run.Status.JobName != jobName(run) || run.Status.Phase != execv1alpha1.PhaseRunning {
		e.t.Errorf("path %q pool %q jobName %q phase %s, want a cold run with its own Job", run.Status.Path, run.Status.Pool, run.Status.JobName, run.Status.Phase)
	}
	job, ok := e.job(jobName(run))
	if !ok || !metav1.IsControlledBy(job, run) || isMember(job) {
		e.t.Errorf("the run has no cold Job of its own (exists %v)", ok)
	}
	if c := findCondition(run, execv1alpha1.ConditionAdmitted); c == nil || c.Reason != execv1alpha1.ReasonSlotAssigned.String() {
		e.t.Errorf("Admitted condition %+v, want SlotAssigned", c)
	}
}

func TestFitsPool(t *testing.T) {
	cfg := tableConfig() // default shape: 10s, 256Mi, 1 CPU; maxima 60s, 1Gi
	q := func(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }
	cases := []struct {
		name      string
		pool      execv1alpha1.CodeRunPoolSpec
		run       execv1alpha1.CodeRunSpec
		wantFits  bool
		wantClaim string // claim's outcome with a ready member
	}{
		{"defaults", execv1alpha1.CodeRunPoolSpec{}, execv1alpha1.CodeRunSpec{}, true, claimWarm},
		{"language python on both", execv1alpha1.CodeRunPoolSpec{Language: "python"}, execv1alpha1.CodeRunSpec{Language: "python"}, true, claimWarm},
		{"another language", execv1alpha1.CodeRunPoolSpec{Language: "cobol"}, execv1alpha1.CodeRunSpec{Language: "python"}, false, claimShape},
		{"less memory", execv1alpha1.CodeRunPoolSpec{}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{Memory: q("64Mi")}}, true, claimWarm},
		{"equal memory", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{Memory: q("512Mi")}}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{Memory: q("512Mi")}}, true, claimWarm},
		{"more memory", execv1alpha1.CodeRunPoolSpec{}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{Memory: q("257Mi")}}, false, claimShape},
		{"shorter timeout", execv1alpha1.CodeRunPoolSpec{}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](1)}}, true, claimWarm},
		{"longer timeout", execv1alpha1.CodeRunPoolSpec{}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](11)}}, false, claimShape},
		{"less cpu", execv1alpha1.CodeRunPoolSpec{}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{CPU: q("500m")}}, false, claimShape},
		{"more cpu", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{CPU: q("500m")}}, execv1alpha1.CodeRunSpec{}, false, claimShape},
		{"equal cpu, spelled otherwise", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{CPU: q("0.5")}}, execv1alpha1.CodeRunSpec{Limits: execv1alpha1.Limits{CPU: q("500m")}}, true, claimWarm},
		// A pool above the operator's maxima keeps no members and takes no runs.
		{"pool above the maxima", execv1alpha1.CodeRunPoolSpec{Limits: execv1alpha1.Limits{Memory: q("2Gi")}}, execv1alpha1.CodeRunSpec{}, true, claimShape},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool("p", 1)
			pool.Spec.Language = tc.pool.Language
			pool.Spec.Limits = tc.pool.Limits
			run := newRun("r", t0)
			run.Spec.Language = tc.run.Language
			run.Spec.Limits = tc.run.Limits
			limits := cfg.Effective(run.Spec.Limits)
			poolPlan, _ := planPool(nil, pool, cfg)
			plan, err := planRunFrom(nil, run, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := fitsPool(pool, poolPlan, plan, run, limits, poolShape(pool, cfg)); got != tc.wantFits {
				t.Errorf("fitsPool = %v, want %v", got, tc.wantFits)
			}

			// claim sees the same, with one ready member.
			e := newWarmEnv(t, newFakeRunner(nil), nil, append([]client.Object{pool, run}, idleMember(pool, "p-aaaaa", 200001, t0.Add(-time.Minute))...)...)
			m, outcome, err := e.r.claim(context.Background(), run, limits, plan)
			if err != nil {
				t.Fatal(err)
			}
			if outcome != tc.wantClaim || (m != nil) != (tc.wantClaim == claimWarm) {
				t.Errorf("claim: member %v outcome %q, want %q", m != nil, outcome, tc.wantClaim)
			}
		})
	}

	t.Run("a deleting pool takes no runs", func(t *testing.T) {
		pool := newPool("p", 1)
		pool.DeletionTimestamp = &now
		if fitsPool(pool, builtinPlan(cfg), builtinPlan(cfg), newRun("r", t0), cfg.Effective(execv1alpha1.Limits{}), poolShape(pool, cfg)) {
			t.Error("a pool being deleted fits")
		}
	})
	t.Run("the smallest fitting shape first", func(t *testing.T) {
		big, small := newPool("big", 1), newPool("small", 1)
		big.Spec.Limits.Memory, small.Spec.Limits.Memory = q("1Gi"), q("128Mi")
		run := newRun("r", t0)
		run.Spec.Limits.Memory = q("100Mi")
		objects := []client.Object{big, small, run}
		objects = append(objects, idleMember(big, "big-aaaaa", 200001, t0.Add(-2*time.Minute))...)
		objects = append(objects, idleMember(small, "small-aaaaa", 200002, t0.Add(-time.Minute))...)
		e := newWarmEnv(t, newFakeRunner(nil), nil, objects...)
		m, _, err := e.r.claim(context.Background(), run, cfg.Effective(run.Spec.Limits), builtinPlan(cfg))
		if err != nil || m == nil || m.pool != "small" {
			t.Errorf("claimed %+v (err %v), want a member of pool small", m, err)
		}
	})
}

func TestWarm(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	pool := newPool("python", 2)
	member := func(name string, created time.Time) []client.Object {
		return idleMember(pool, name, 200001, created)
	}
	objs := func(objects ...[]client.Object) []client.Object {
		var all []client.Object
		for _, o := range objects {
			all = append(all, o...)
		}
		return all
	}

	t.Run("no pool: the run goes cold", func(t *testing.T) {
		before := testutil.ToFloat64(poolClaims.WithLabelValues(claimShape))
		e := newWarmEnv(t, newFakeRunner(nil), nil, newRun("r", t0))
		got := e.settle("r")
		e.assertCold(got)
		if d := testutil.ToFloat64(poolClaims.WithLabelValues(claimShape)) - before; d != 1 {
			t.Errorf("coderun_pool_claims_total{outcome=cold-shape} rose by %v, want 1", d)
		}
	})

	t.Run("no ready member: the run goes cold and the member stays idle", func(t *testing.T) {
		before := testutil.ToFloat64(poolClaims.WithLabelValues(claimNoMember))
		job := memberJobOf(pool, "python-aaaaa", 200001, t0.Add(-time.Minute))
		e := newWarmEnv(t, newFakeRunner(nil), nil, newRun("r", t0), pool, job, memberPodOf(job, waitingState("ContainerCreating", "")))
		got := e.settle("r")
		e.assertCold(got)
		if m, _ := e.job("python-aaaaa"); m.Labels[execv1alpha1.LabelMember] != execv1alpha1.MemberIdle || !metav1.IsControlledBy(m, pool) {
			t.Errorf("the starting member changed: labels %v owners %v", m.Labels, m.OwnerReferences)
		}
		if d := testutil.ToFloat64(poolClaims.WithLabelValues(claimNoMember)) - before; d != 1 {
			t.Errorf("coderun_pool_claims_total{outcome=cold-no-member} rose by %v, want 1", d)
		}
		if e.runner.attaches != 0 {
			t.Errorf("%d attaches to a member that is not running", e.runner.attaches)
		}
	})

	t.Run("a run outside the pool's shape goes cold", func(t *testing.T) {
		run := newRun("r", t0)
		run.Spec.Limits.Memory = ptr.To(resource.MustParse("512Mi"))
		e := newWarmEnv(t, newFakeRunner(nil), nil, objs([]client.Object{run, pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		e.assertCold(e.settle("r"))
	})

	t.Run("no Attacher: every run goes cold", func(t *testing.T) {
		e := newWarmEnv(t, newFakeRunner(nil), nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		e.r.Attacher = nil
		e.assertCold(e.settle("r"))
	})

	t.Run("a stream held open to a member carries the request: no attach at claim time", func(t *testing.T) {
		e := newWarmEnv(t, newFakeRunner(nil), nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		key := types.NamespacedName{Namespace: ns, Name: "python-aaaaa"}
		e.r.deliveries.hold(key, "python-aaaaa-pod")
		for deadline := time.Now().Add(5 * time.Second); e.runner.attachCount() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		if !e.r.deliveries.isHeld(key) || e.runner.attachCount() != 1 {
			t.Fatalf("held %v after %d attaches, want a held stream from one attach", e.r.deliveries.isHeld(key), e.runner.attachCount())
		}
		got := e.settle("r")
		if got.Status.Path != execv1alpha1.PathWarm || got.Status.Phase != execv1alpha1.PhaseSucceeded || got.Status.StartTime == nil {
			t.Errorf("status path %q phase %s start %v, want a warm success", got.Status.Path, got.Status.Phase, got.Status.StartTime)
		}
		if n := e.runner.attachCount(); n != 1 {
			t.Errorf("%d attaches, want only the held one", n)
		}
		if frames, ran := e.runner.member(ns, "python-aaaaa-pod"); len(frames) != 1 || ran != 1 {
			t.Errorf("the member read %d frames and ran %d programs, want 1 and 1", len(frames), ran)
		}
		if e.r.deliveries.isHeld(key) {
			t.Error("the member's stream is still held after its run")
		}
	})

	t.Run("a held stream that broke before the claim: the run attaches anew", func(t *testing.T) {
		e := newWarmEnv(t, newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{mode: runnerFailsBeforeRead} }), nil,
			objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		key := types.NamespacedName{Namespace: ns, Name: "python-aaaaa"}
		e.r.deliveries.hold(key, "python-aaaaa-pod")
		for e.r.deliveries.isHeld(key) {
			time.Sleep(time.Millisecond) // the fake attach fails at once
		}
		got := e.settle("r")
		// The new attach fails too (the fake's member refuses every attach before reading):
		// the program was never sent, so the run goes on cold.
		if got.Status.Result == nil && got.Status.Path != execv1alpha1.PathCold {
			t.Fatalf("the run neither finished nor went cold: %+v", got.Status)
		}
		if n := e.runner.attachCount(); n < 2 {
			t.Errorf("%d attaches, want the held one and a new one", n)
		}
		if _, ran := e.runner.member(ns, "python-aaaaa-pod"); ran != 0 {
			t.Errorf("the member ran %d programs, want none", ran)
		}
	})

	t.Run("a member runs the program", func(t *testing.T) {
		run := newRun("r", t0)
		run.Spec.Source, run.Spec.Stdin = "print(input())", "hi\n"
		warmBefore := testutil.ToFloat64(poolClaims.WithLabelValues(claimWarm))
		e := newWarmEnv(t, newFakeRunner(nil), nil, objs([]client.Object{run, pool},
			member("python-aaaaa", t0.Add(-2*time.Minute)), member("python-bbbbb", t0.Add(-time.Minute)))...)
		got := e.settle("r")

		st := got.Status
		if st.Phase != execv1alpha1.PhaseSucceeded || st.Path != execv1alpha1.PathWarm || st.Pool != "python" ||
			st.JobName != "python-aaaaa" || st.PodName != "python-aaaaa-pod" || st.StartTime == nil || st.CompletionTime == nil {
			t.Errorf("status phase %s path %q pool %q jobName %q podName %q start %v completion %v, want Succeeded on the oldest member",
				st.Phase, st.Path, st.Pool, st.JobName, st.PodName, st.StartTime, st.CompletionTime)
		}
		if c := findCondition(got, execv1alpha1.ConditionAdmitted); c == nil || c.Status != metav1.ConditionTrue || c.Reason != execv1alpha1.ReasonMemberClaimed.String() ||
			c.Message != "took member python-aaaaa of pool python" {
			t.Errorf("Admitted condition %+v, want True MemberClaimed", c)
		}
		if diff := cmp.Diff(coldResult(t, helloReport(), nil), st.Result); diff != "" {
			t.Errorf("the warm result differs from a cold run's for the same report (-cold +warm):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"Normal Completed Completed, exit code 0"}, e.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}

		job, _ := e.job("python-aaaaa")
		if !metav1.IsControlledBy(job, got) || len(job.OwnerReferences) != 1 {
			t.Errorf("member owners %+v, want the CodeRun alone", job.OwnerReferences)
		}
		if job.Labels[execv1alpha1.LabelMember] != execv1alpha1.MemberClaimed || job.Labels[execv1alpha1.LabelRunUID] != string(run.UID) ||
			job.Annotations[execv1alpha1.AnnotationRun] != "r" || job.Labels[execv1alpha1.LabelPool] != "python" {
			t.Errorf("member labels %v annotations %v, want claimed by r", job.Labels, job.Annotations)
		}
		if other, _ := e.job("python-bbbbb"); other.Labels[execv1alpha1.LabelMember] != execv1alpha1.MemberIdle {
			t.Errorf("the second member was touched: %v", other.Labels)
		}
		if _, ok := e.job("r"); ok {
			t.Error("a warm run also got a cold Job")
		}
		frames, ran := e.runner.member(ns, "python-aaaaa-pod")
		want := []delivery.Request{{Source: "print(input())", Stdin: "hi\n", TimeoutSeconds: 10, MemoryBytes: 256 << 20, Run: "runs/r"}}
		if diff := cmp.Diff(want, frames); diff != "" || ran != 1 {
			t.Errorf("the member ran %d programs; frames (-want +got):\n%s", ran, diff)
		}
		if d := testutil.ToFloat64(poolClaims.WithLabelValues(claimWarm)) - warmBefore; d != 1 {
			t.Errorf("coderun_pool_claims_total{outcome=warm} rose by %v, want 1", d)
		}
		if _, ok := e.r.queue.active[client.ObjectKeyFromObject(run)]; ok {
			t.Error("the finished run still holds a slot")
		}
	})

	t.Run("warm results equal cold results for the same report", func(t *testing.T) {
		big := strings.Repeat("0123456789abcdef", 1024) // a cold run reads this from the log
		for name, rep := range map[string]report.Report{
			"syntax error": {Reason: report.NonZeroExit, ExitCode: 1, Stderr: "SyntaxError\n", Output: "SyntaxError\n", WallTimeMicros: 1500, CPUTimeMicros: 900, PeakMemoryBytes: 5000},
			"time limit":   {Reason: report.TimeLimitExceeded, ExitCode: 137, Signal: "SIGKILL", Message: "time limit of 10s exceeded", Stdout: "tick\n", Output: "tick\n", WallTimeMicros: 10_000_000},
			"big output":   {Reason: report.Completed, Stdout: big, Output: big, WallTimeMicros: 1000, PeakMemoryBytes: 1 << 20},
		} {
			t.Run(name, func(t *testing.T) {
				runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{report: rep} })
				e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
				got := e.settle("r")
				if got.Status.Path != execv1alpha1.PathWarm {
					t.Fatalf("path %q, want Warm", got.Status.Path)
				}
				if diff := cmp.Diff(coldResult(t, rep, logWith(rep)), got.Status.Result); diff != "" {
					t.Errorf("(-cold +warm):\n%s", diff)
				}
			})
		}
	})

	t.Run("member deleted between claim and attach: the run goes cold, the program runs once", func(t *testing.T) {
		retriedBefore := testutil.ToFloat64(poolClaims.WithLabelValues(claimRetried))
		runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{mode: runnerFailsBeforeRead} })
		var once sync.Once
		e := newWarmEnv(t, runner, &interceptor.Funcs{
			// Someone deletes the member (and with it its pod) right after the claim.
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
				if err := c.Patch(ctx, obj, patch, opts...); err != nil {
					return err
				}
				if _, ok := obj.(*batchv1.Job); ok {
					once.Do(func() {
						_ = c.Delete(ctx, obj)
						_ = c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: obj.GetName() + "-pod"}})
					})
				}
				return nil
			},
		}, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		e.assertCold(got)
		if _, ok := e.job("python-aaaaa"); ok {
			t.Error("the member is still there")
		}
		if n := runner.programsRun()["runs/r"]; n != 0 {
			t.Errorf("the member ran the program %d times before the cold Job", n)
		}
		if d := testutil.ToFloat64(poolClaims.WithLabelValues(claimRetried)) - retriedBefore; d != 1 {
			t.Errorf("coderun_pool_claims_total{outcome=retried} rose by %v, want 1", d)
		}
	})

	t.Run("attach fails before sending: the member is given up, another member runs it", func(t *testing.T) {
		runner := newFakeRunner(func(pod string) fakeBehaviour {
			if pod == "python-aaaaa-pod" {
				return fakeBehaviour{mode: runnerFailsBeforeRead}
			}
			return fakeBehaviour{}
		})
		e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool},
			member("python-aaaaa", t0.Add(-2*time.Minute)), member("python-bbbbb", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		if got.Status.Phase != execv1alpha1.PhaseSucceeded || got.Status.Path != execv1alpha1.PathWarm || got.Status.JobName != "python-bbbbb" {
			t.Errorf("phase %s path %q jobName %q, want Succeeded on python-bbbbb", got.Status.Phase, got.Status.Path, got.Status.JobName)
		}
		if _, ok := e.job("python-aaaaa"); ok {
			t.Error("the member whose attach failed was kept")
		}
		if _, ok := e.job("r"); ok {
			t.Error("the run also got a cold Job")
		}
		if n := runner.programsRun()["runs/r"]; n != 1 {
			t.Errorf("the program ran %d times, want 1", n)
		}
	})

	t.Run("NotRun on the stream: retried cold", func(t *testing.T) {
		runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{mode: runnerNotRun} })
		e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		e.assertCold(got)
		if got.Status.StartTime != nil || got.Status.PodName != "" {
			t.Errorf("startTime %v podName %q left from the member", got.Status.StartTime, got.Status.PodName)
		}
		if _, ok := e.job("python-aaaaa"); ok {
			t.Error("the member that refused the run was kept")
		}
		// The cold Job gets a uid of its own, not that of the member being deleted.
		if job, ok := e.job(jobName(got)); ok && memberUID(job) == 200001 {
			t.Errorf("the cold Job runs as the given-up member's uid %d", memberUID(job))
		}
	})

	t.Run("stream broken after sending: the result comes from the member's termination message", func(t *testing.T) {
		runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{breakStream: true} })
		e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		if got.Status.Result != nil || got.Status.Path != execv1alpha1.PathWarm || got.Status.Phase != execv1alpha1.PhaseRunning || got.Status.StartTime == nil {
			t.Fatalf("phase %s path %q result %+v startTime %v, want a warm run waiting for its pod", got.Status.Phase, got.Status.Path, got.Status.Result, got.Status.StartTime)
		}
		if _, ok := e.job("r"); ok {
			t.Fatal("the run got a cold Job after its program was sent")
		}
		e.setPodState("python-aaaaa-pod", terminatedState(0, "Completed", reportMessage(helloReport())))
		got = e.settle("r")
		if got.Status.Phase != execv1alpha1.PhaseSucceeded || got.Status.Path != execv1alpha1.PathWarm || got.Status.JobName != "python-aaaaa" || got.Status.PodName != "python-aaaaa-pod" {
			t.Errorf("phase %s path %q jobName %q podName %q, want Succeeded from the member's pod", got.Status.Phase, got.Status.Path, got.Status.JobName, got.Status.PodName)
		}
		if diff := cmp.Diff(coldResult(t, helloReport(), nil), got.Status.Result); diff != "" {
			t.Errorf("(-cold +warm):\n%s", diff)
		}
		if n := runner.programsRun()["runs/r"]; n != 1 {
			t.Errorf("the program ran %d times, want 1", n)
		}
		if _, ok := e.job("r"); ok {
			t.Error("the run got a cold Job after its program was sent")
		}
	})

	t.Run("stream broken after sending, member still running past the time limit: SystemError, member deleted", func(t *testing.T) {
		// As after a restart of the node's containerd: the attach failed, the runner never
		// got the program and waits for one; its pod runs on.
		runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{breakStream: true} })
		e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		if got.Status.Result != nil || got.Status.Path != execv1alpha1.PathWarm {
			t.Fatalf("path %q result %+v, want a warm run waiting for its pod", got.Status.Path, got.Status.Result)
		}
		limit := time.Duration(*got.Status.Limits.TimeoutSeconds)*time.Second + memberStuckMargin
		if res := e.reconcile("r"); res.RequeueAfter <= 0 || res.RequeueAfter > limit {
			t.Fatalf("requeue after %s, want a look again within the time limit and margin (%s)", res.RequeueAfter, limit)
		}
		e.clock.SetTime(e.clock.Now().Add(limit / 2))
		if got = e.settle("r"); got.Status.Result != nil {
			t.Fatalf("result %+v before the time limit and margin passed", got.Status.Result)
		}
		e.clock.SetTime(e.clock.Now().Add(limit))
		got = e.settle("r")
		if got.Status.Phase != execv1alpha1.PhaseFailed || got.Status.Result == nil || got.Status.Result.Reason != execv1alpha1.ReasonSystemError ||
			!strings.Contains(got.Status.Result.Message, "python-aaaaa") || !strings.Contains(got.Status.Result.Message, "container runtime") {
			t.Fatalf("phase %s result %+v, want a SystemError naming the member and the runtime", got.Status.Phase, got.Status.Result)
		}
		if _, ok := e.job("python-aaaaa"); ok {
			t.Error("the member that never answered was kept")
		}
	})

	t.Run("stream broken after sending, NotRun in the termination message: retried cold", func(t *testing.T) {
		runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{mode: runnerNotRun, breakStream: true} })
		e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		if got.Status.Result != nil || got.Status.Path != execv1alpha1.PathWarm {
			t.Fatalf("path %q result %+v, want a warm run waiting for its pod", got.Status.Path, got.Status.Result)
		}
		e.setPodState("python-aaaaa-pod", terminatedState(0, "Completed", reportMessage(notRunReport("the request was incomplete"))))
		got = e.settle("r")
		e.assertCold(got)
		if got.Status.StartTime != nil || got.Status.PodName != "" {
			t.Errorf("startTime %v podName %q left from the member", got.Status.StartTime, got.Status.PodName)
		}
		if _, ok := e.job("python-aaaaa"); ok {
			t.Error("the member was kept")
		}
		if n := runner.programsRun()["runs/r"]; n != 0 {
			t.Errorf("the member ran the program %d times", n)
		}
	})

	t.Run("operator restarted after the claim: delivered again, run once", func(t *testing.T) {
		for name, sentBefore := range map[string]bool{"the first delivery arrived": true, "the first delivery was lost": false} {
			t.Run(name, func(t *testing.T) {
				run := withStatus(newRun("r", t0), execv1alpha1.CodeRunStatus{Limits: defaultLimits.DeepCopy()})
				objects := objs([]client.Object{run, pool}, member("python-aaaaa", t0.Add(-time.Minute)))
				claimedBy(objects[2].(*batchv1.Job), run)
				runner := newFakeRunner(nil)
				release := make(chan struct{})
				if sentBefore {
					runner.startedBefore(ns, "python-aaaaa-pod", requestFor(run, builtinPlan(tableConfig()), defaultLimits), release)
				} else {
					close(release)
				}
				e := newWarmEnv(t, runner, nil, objects...)
				e.reconcile("r")
				if s := e.r.deliveries.get(run); s == nil || !s.recovered || s.member.Name != "python-aaaaa" {
					t.Fatalf("session %+v, want a recovered delivery to the claimed member", s)
				}
				if sentBefore {
					// The program ends while the new stream is attached.
					for e.runner.attachCount() == 0 {
						time.Sleep(time.Millisecond)
					}
					close(release)
				}
				got := e.settle("r")
				if got.Status.Phase != execv1alpha1.PhaseSucceeded || got.Status.Path != execv1alpha1.PathWarm || got.Status.JobName != "python-aaaaa" {
					t.Errorf("phase %s path %q jobName %q, want Succeeded on the claimed member", got.Status.Phase, got.Status.Path, got.Status.JobName)
				}
				if frames, ran := runner.member(ns, "python-aaaaa-pod"); len(frames) != 1 || ran != 1 {
					t.Errorf("the member read %d frames and ran %d programs, want 1 and 1", len(frames), ran)
				}
				if _, ok := e.job("r"); ok {
					t.Error("the run also got a cold Job")
				}
			})
		}
	})

	t.Run("operator restarted after the program ended: the result comes from the pod", func(t *testing.T) {
		run := withStatus(newRun("r", t0), execv1alpha1.CodeRunStatus{Limits: defaultLimits.DeepCopy()})
		job := claimedBy(memberJobOf(pool, "python-aaaaa", 200001, t0.Add(-time.Minute)), run)
		runner := newFakeRunner(nil)
		release := make(chan struct{})
		close(release)
		runner.startedBefore(ns, "python-aaaaa-pod", requestFor(run, builtinPlan(tableConfig()), defaultLimits), release)
		e := newWarmEnv(t, runner, nil, run, pool, job, memberPodOf(job, terminatedState(0, "Completed", reportMessage(helloReport()))))
		got := e.settle("r")
		if got.Status.Phase != execv1alpha1.PhaseSucceeded || got.Status.Path != execv1alpha1.PathWarm || got.Status.Pool != "python" ||
			got.Status.JobName != "python-aaaaa" || got.Status.PodName != "python-aaaaa-pod" {
			t.Errorf("phase %s path %q pool %q jobName %q podName %q, want Succeeded on the claimed member", got.Status.Phase, got.Status.Path, got.Status.Pool, got.Status.JobName, got.Status.PodName)
		}
		if diff := cmp.Diff(coldResult(t, helloReport(), nil), got.Status.Result); diff != "" {
			t.Errorf("(-cold +warm):\n%s", diff)
		}
		if n := runner.attachCount(); n != 0 {
			t.Errorf("%d attaches to a member whose program ended", n)
		}
	})

	t.Run("a long run shows Running after a second", func(t *testing.T) {
		release := make(chan struct{})
		runner := newFakeRunner(func(string) fakeBehaviour { return fakeBehaviour{release: release} })
		e := newWarmEnv(t, runner, nil, objs([]client.Object{newRun("r", t0), pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		e.reconcile("r") // claims
		if res := e.reconcile("r"); res.RequeueAfter != time.Second {
			t.Errorf("requeue after %s, want 1s", res.RequeueAfter)
		}
		got := &execv1alpha1.CodeRun{}
		if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "r"}, got); err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase != "" || got.Status.Path != "" {
			t.Errorf("phase %q path %q before a second passed, want neither (one status write for quick runs)", got.Status.Phase, got.Status.Path)
		}
		e.clock.SetTime(e.clock.Now().Add(time.Second))
		e.reconcile("r")
		if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "r"}, got); err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase != execv1alpha1.PhaseRunning || got.Status.Path != execv1alpha1.PathWarm || got.Status.JobName != "python-aaaaa" || got.Status.PodName != "python-aaaaa-pod" {
			t.Errorf("phase %q path %q jobName %q podName %q, want Running on the member", got.Status.Phase, got.Status.Path, got.Status.JobName, got.Status.PodName)
		}
		if c := findCondition(got, execv1alpha1.ConditionFinished); c == nil || c.Reason != execv1alpha1.ReasonInProgress.String() {
			t.Errorf("Finished condition %+v, want InProgress", c)
		}
		if diff := cmp.Diff([]string{"Normal Started Program sent to member python-aaaaa of pool python"}, e.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		close(release)
		e.streamEnded()
		if got = e.settle("r"); got.Status.Phase != execv1alpha1.PhaseSucceeded {
			t.Errorf("phase %s after the program ended, want Succeeded", got.Status.Phase)
		}
	})

	t.Run("deleting a warm run deletes its member", func(t *testing.T) {
		// The garbage collector does it from the owner reference claim wrote.
		run := newRun("r", t0)
		e := newWarmEnv(t, newFakeRunner(nil), nil, objs([]client.Object{run, pool}, member("python-aaaaa", t0.Add(-time.Minute)))...)
		got := e.settle("r")
		job, _ := e.job("python-aaaaa")
		ref := metav1.GetControllerOf(job)
		if ref == nil || ref.UID != got.UID || ref.Kind != "CodeRun" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Errorf("controller reference %+v, want the CodeRun %s", ref, got.UID)
		}
	})
}

// coldResult is the result a cold run gets when its pod's runner reports rep (log: the
// pod's log, for a report too big for the termination message).
func coldResult(t *testing.T, rep report.Report, log []byte) *execv1alpha1.CodeRunResult {
	t.Helper()
	run := withStatus(newRun("r", t0), runningStatus())
	c := withRunIndex(fake.NewClientBuilder()).WithScheme(testScheme).
		WithObjects(run, jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "Completed", reportMessage(rep)))).
		WithStatusSubresource(&execv1alpha1.CodeRun{}).Build()
	logs := &fakeLogs{}
	if log != nil {
		logs.set("r-pod", log)
	}
	cfg := tableConfig()
	r := &CodeRunReconciler{
		Client: c, APIReader: c, Scheme: testScheme, Recorder: events.NewFakeRecorder(10), Config: cfg,
		Logs: logs, Clock: clocktesting.NewFakePassiveClock(now.Time), queue: newRunQueue(cfg.MaxConcurrentRuns),
	}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(run)}); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(run), run); err != nil {
		t.Fatal(err)
	}
	if run.Status.Result == nil {
		t.Fatal("the cold run has no result")
	}
	return run.Status.Result
}
