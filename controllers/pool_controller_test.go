package controllers

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
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
)

// poolEnv is a CodeRunPool reconciler on a fake client. hidden Jobs are in the API server
// but not yet in the cache (a stale watch).
type poolEnv struct {
	t        *testing.T
	c        client.WithWatch
	r        *CodeRunPoolReconciler
	clock    *clocktesting.FakePassiveClock
	recorder *events.FakeRecorder

	mu     sync.Mutex
	hidden map[string]bool
	hide   bool // new Jobs stay hidden
}

func newPoolEnv(t *testing.T, objects ...client.Object) *poolEnv {
	t.Helper()
	cfg := tableConfig()
	e := &poolEnv{t: t, clock: clocktesting.NewFakePassiveClock(now.Time), recorder: events.NewFakeRecorder(100), hidden: map[string]bool{}}
	e.c = withRunIndex(fake.NewClientBuilder()).
		WithScheme(testScheme).
		WithObjects(objects...).
		WithStatusSubresource(&execv1alpha1.CodeRun{}, &execv1alpha1.CodeRunPool{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				obj.SetCreationTimestamp(metav1.NewTime(e.clock.Now()))
				if _, ok := obj.(*batchv1.Job); ok {
					e.mu.Lock()
					if e.hide {
						e.hidden[obj.GetName()] = true
					}
					e.mu.Unlock()
				}
				return c.Create(ctx, obj, opts...)
			},
			List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
				if err := c.List(ctx, list, opts...); err != nil {
					return err
				}
				if jobs, ok := list.(*batchv1.JobList); ok {
					e.mu.Lock()
					jobs.Items = slices.DeleteFunc(jobs.Items, func(j batchv1.Job) bool { return e.hidden[j.Name] })
					e.mu.Unlock()
				}
				return nil
			},
		}).
		Build()
	e.r = &CodeRunPoolReconciler{
		Client: e.c, Scheme: testScheme, Recorder: e.recorder, Config: cfg, Clock: e.clock,
		queue: newRunQueue(cfg.MaxConcurrentRuns), pools: map[types.NamespacedName]*poolState{},
	}
	return e
}

func (e *poolEnv) reconcile() ctrl.Result {
	e.t.Helper()
	res, err := e.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "python"}})
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	return res
}

// members lists the pool's member Jobs in the API server (hidden ones too), by name.
func (e *poolEnv) members() map[string]*batchv1.Job {
	e.t.Helper()
	e.mu.Lock()
	hidden := e.hidden
	e.hidden = map[string]bool{}
	e.mu.Unlock()
	defer func() { e.mu.Lock(); e.hidden = hidden; e.mu.Unlock() }()
	jobs := &batchv1.JobList{}
	if err := e.c.List(context.Background(), jobs, client.InNamespace(ns), client.MatchingLabels{execv1alpha1.LabelPool: "python"}); err != nil {
		e.t.Fatal(err)
	}
	byName := map[string]*batchv1.Job{}
	for i := range jobs.Items {
		byName[jobs.Items[i].Name] = &jobs.Items[i]
	}
	return byName
}

func (e *poolEnv) names() []string {
	var names []string
	for name := range e.members() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (e *poolEnv) pool() *execv1alpha1.CodeRunPool {
	e.t.Helper()
	pool := &execv1alpha1.CodeRunPool{}
	if err := e.c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "python"}, pool); err != nil {
		e.t.Fatal(err)
	}
	return pool
}

func (e *poolEnv) setReplicas(n int32) {
	e.t.Helper()
	pool := e.pool()
	pool.Spec.Replicas = ptr.To(n)
	pool.Generation++
	if err := e.c.Update(context.Background(), pool); err != nil {
		e.t.Fatal(err)
	}
}

func (e *poolEnv) ready() *metav1.Condition {
	return meta.FindStatusCondition(e.pool().Status.Conditions, execv1alpha1.PoolConditionReady)
}

func (e *poolEnv) events() []string {
	var got []string
	for len(e.recorder.Events) > 0 {
		got = append(got, <-e.recorder.Events)
	}
	return got
}

// pendingMember is an idle member whose pod is still starting.
func pendingMember(pool *execv1alpha1.CodeRunPool, name string, uid int64, created time.Time) []client.Object {
	job := memberJobOf(pool, name, uid, created)
	return []client.Object{job, memberPodOf(job, waitingState("ContainerCreating", ""))}
}

func TestPoolScaleUp(t *testing.T) {
	pool := newPool("python", 3)
	e := newPoolEnv(t, pool)
	e.reconcile()
	members := e.members()
	if len(members) != 3 {
		t.Fatalf("%d members after the first pass, want 3", len(members))
	}
	uids := map[int64]bool{}
	for name, job := range members {
		if !strings.HasPrefix(name, "python-") || !metav1.IsControlledBy(job, pool) {
			t.Errorf("member %s owners %+v, want a python- name owned by the pool", name, job.OwnerReferences)
		}
		if job.Labels[execv1alpha1.LabelMember] != execv1alpha1.MemberIdle || job.Labels[execv1alpha1.LabelPool] != "python" ||
			job.Spec.Template.Labels[execv1alpha1.LabelPool] != "python" {
			t.Errorf("member %s labels %v, pod labels %v", name, job.Labels, job.Spec.Template.Labels)
		}
		uid := memberUID(job)
		if uids[uid] {
			t.Errorf("uid %d is shared by two members", uid)
		}
		uids[uid] = true
		// A run admitted now does not get a member's uid.
		if q := e.r.queue.members[client.ObjectKeyFromObject(job)]; q != uid {
			t.Errorf("member %s runs as %d but the queue holds %d for it", name, uid, q)
		}
	}
	for i := range 20 {
		run := newRun("r"+string(rune('a'+i)), t0)
		uid, ok := e.r.queue.admit(client.ObjectKeyFromObject(run), run.CreationTimestamp, memberUID(members[e.names()[0]]), e.r.Config.RunUIDMin, e.r.Config.RunUIDCount)
		if ok && uids[uid] {
			t.Errorf("run %s was admitted with member uid %d", run.Name, uid)
		}
		e.r.queue.release(client.ObjectKeyFromObject(run))
	}

	e.reconcile()
	st := e.pool().Status
	if len(e.members()) != 3 || st.Replicas != 3 || st.Ready != 0 {
		t.Errorf("%d members, status replicas %d ready %d, want 3 3 0", len(e.members()), st.Replicas, st.Ready)
	}
	if c := e.ready(); c == nil || c.Status != metav1.ConditionFalse || c.Reason != execv1alpha1.PoolReasonFilling || c.Message != "0 of 3 members are ready" {
		t.Errorf("Ready condition %+v, want False Filling", c)
	}
}

func TestPoolCreatesNoMoreWhileTheCacheIsBehind(t *testing.T) {
	e := newPoolEnv(t, newPool("python", 3))
	e.hide = true
	for range 3 {
		e.reconcile()
		e.clock.SetTime(e.clock.Now().Add(time.Second))
	}
	if n := len(e.members()); n != 3 {
		t.Fatalf("%d members after three passes with a stale cache, want 3", n)
	}
	e.mu.Lock()
	e.hide, e.hidden = false, map[string]bool{}
	e.mu.Unlock()
	e.reconcile()
	if n := len(e.members()); n != 3 {
		t.Errorf("%d members once the cache caught up, want 3", n)
	}
}

func TestPoolScaleDown(t *testing.T) {
	pool := newPool("python", 4)
	objects := []client.Object{pool}
	objects = append(objects, idleMember(pool, "python-a", 200001, t0.Add(-4*time.Second))...)
	objects = append(objects, pendingMember(pool, "python-b", 200002, t0.Add(-3*time.Second))...)
	objects = append(objects, idleMember(pool, "python-c", 200003, t0.Add(-2*time.Second))...)
	objects = append(objects, pendingMember(pool, "python-d", 200004, t0.Add(-time.Second))...)
	for _, tc := range []struct {
		replicas int32
		want     []string
	}{
		{4, []string{"python-a", "python-b", "python-c", "python-d"}},
		{3, []string{"python-a", "python-b", "python-c"}}, // the newest member that is not ready
		{2, []string{"python-a", "python-c"}},             // both that are not ready
		{1, []string{"python-a"}},                         // then the newest ready one
		{0, nil},
	} {
		e := newPoolEnv(t, objects...)
		e.setReplicas(tc.replicas)
		e.reconcile()
		if got := e.names(); !slices.Equal(got, tc.want) {
			t.Errorf("replicas %d: members %v, want %v", tc.replicas, got, tc.want)
		}
	}
}

func TestPoolScaleToZeroAndBack(t *testing.T) {
	pool := newPool("python", 2)
	objects := []client.Object{pool}
	objects = append(objects, idleMember(pool, "python-a", 200001, t0.Add(-time.Minute))...)
	objects = append(objects, idleMember(pool, "python-b", 200002, t0.Add(-time.Minute))...)
	e := newPoolEnv(t, objects...)
	e.reconcile()
	if st := e.pool().Status; st.Replicas != 2 || st.Ready != 2 {
		t.Errorf("status replicas %d ready %d, want 2 2", st.Replicas, st.Ready)
	}
	if c := e.ready(); c == nil || c.Status != metav1.ConditionTrue || c.Reason != execv1alpha1.PoolReasonFull {
		t.Errorf("Ready condition %+v, want True Full", c)
	}

	e.setReplicas(0)
	e.reconcile()
	if names := e.names(); len(names) != 0 {
		t.Fatalf("members %v at replicas 0, want none", names)
	}
	for _, key := range []string{"python-a", "python-b"} {
		if _, ok := e.r.queue.members[types.NamespacedName{Namespace: ns, Name: key}]; ok {
			t.Errorf("the queue still holds the uid of deleted member %s", key)
		}
	}
	e.reconcile()
	if st, c := e.pool().Status, e.ready(); st.Replicas != 0 || c == nil || c.Status != metav1.ConditionTrue || c.Message != "0 of 0 members are ready" {
		t.Errorf("status replicas %d, Ready %+v, want 0 and True", st.Replicas, c)
	}

	e.setReplicas(2)
	e.reconcile()
	if names := e.names(); len(names) != 2 {
		t.Errorf("members %v after scaling back to 2, want 2 new ones", names)
	}
}

func TestPoolRecyclesIdleMembers(t *testing.T) {
	// An idle member's runner exits unused after maxIdleSeconds, with a NotRun report.
	idleExit := terminatedState(0, "Completed", reportMessage(notRunReport("no request arrived within 10m0s")))
	cases := []struct {
		name     string
		complete bool // the Job controller has marked the Job complete
	}{
		{"the Job completed", true},
		{"the pod ended, the Job controller has not caught up", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool("python", 2)
			old := memberJobOf(pool, "python-old", 200001, t0.Add(-11*time.Minute))
			if tc.complete {
				old.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
			}
			objects := []client.Object{pool, old, memberPodOf(old, idleExit)}
			objects = append(objects, idleMember(pool, "python-b", 200002, t0.Add(-time.Minute))...)
			e := newPoolEnv(t, objects...)
			res := e.reconcile()
			members := e.members()
			if _, ok := members["python-old"]; ok || len(members) != 2 {
				t.Errorf("members %v, want python-old replaced by a new member", e.names())
			}
			if res.RequeueAfter > creationInterval {
				t.Errorf("requeue after %s: the replacement waits for a back-off", res.RequeueAfter)
			}
			if c := e.ready(); c == nil || c.Reason == execv1alpha1.PoolReasonMembersFailing {
				t.Errorf("Ready condition %+v: a member that idled out is not a failure", c)
			}
			if evs := e.events(); len(evs) != 0 {
				t.Errorf("events %v, want none", evs)
			}
		})
	}
}

func TestPoolMembersThatCannotStart(t *testing.T) {
	pool := newPool("python", 1)
	neverPulled := func(job *batchv1.Job) *corev1.Pod {
		return memberPodOf(job, waitingState("ErrImageNeverPull", "Container image is not present with pull policy of Never"))
	}
	bad := memberJobOf(pool, "python-bad", 200001, t0.Add(-time.Second))
	e := newPoolEnv(t, pool, bad, neverPulled(bad))

	res := e.reconcile()
	if names := e.names(); len(names) != 0 {
		t.Errorf("members %v, want the failed member deleted and no replacement yet", names)
	}
	if res.RequeueAfter != 2*time.Second {
		t.Errorf("requeue after %s, want a 2s back-off", res.RequeueAfter)
	}
	msg := "the container is waiting: ErrImageNeverPull Container image is not present with pull policy of Never"
	if c := e.ready(); c == nil || c.Status != metav1.ConditionFalse || c.Reason != execv1alpha1.PoolReasonMembersFailing || c.Message != msg {
		t.Errorf("Ready condition %+v, want False MembersFailing: %s", c, msg)
	}
	if diff := cmp.Diff([]string{"Warning MembersFailing " + msg}, e.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	// Within the back-off, nothing is created, whatever wakes the pool.
	e.clock.SetTime(e.clock.Now().Add(time.Second))
	if res := e.reconcile(); len(e.names()) != 0 || res.RequeueAfter != time.Second {
		t.Errorf("members %v, requeue %s within the back-off, want none and 1s", e.names(), res.RequeueAfter)
	}
	e.clock.SetTime(e.clock.Now().Add(time.Second))
	e.reconcile()
	names := e.names()
	if len(names) != 1 {
		t.Fatalf("members %v after the back-off, want 1", names)
	}

	// The replacement fails too: the back-off doubles.
	failed := e.members()[names[0]].DeepCopy()
	pod := neverPulled(failed)
	if err := e.c.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	if res := e.reconcile(); res.RequeueAfter != 4*time.Second {
		t.Errorf("requeue after %s for the second failure in a row, want 4s", res.RequeueAfter)
	}
	// A cache that still shows the deleted member on the next pass does not count it
	// again: the back-off runs out as set, it is neither doubled nor restarted.
	failed.ResourceVersion = ""
	if err := e.c.Create(context.Background(), failed); err != nil {
		t.Fatal(err)
	}
	e.clock.SetTime(e.clock.Now().Add(time.Second))
	if res := e.reconcile(); res.RequeueAfter != 3*time.Second {
		t.Errorf("requeue after %s with the failed member seen again, want the 3s left of its back-off", res.RequeueAfter)
	}

	t.Run("a member that does not start within the start timeout", func(t *testing.T) {
		slow := memberJobOf(pool, "python-slow", 200001, now.Add(-2*time.Minute))
		pod := memberPodOf(slow, nil)
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available"}}
		e := newPoolEnv(t, pool, slow, pod)
		e.reconcile()
		if names := e.names(); len(names) != 0 {
			t.Errorf("members %v, want the stuck member deleted", names)
		}
		want := "the member did not start within 1m0s: the pod was not scheduled: Unschedulable 0/1 nodes are available"
		if c := e.ready(); c == nil || c.Reason != execv1alpha1.PoolReasonMembersFailing || c.Message != want {
			t.Errorf("Ready condition %+v, want MembersFailing: %s", c, want)
		}
	})
}

func TestPoolInvalidShape(t *testing.T) {
	for name, spec := range map[string]func(*execv1alpha1.CodeRunPool){
		"memory above the maximum":  func(p *execv1alpha1.CodeRunPool) { p.Spec.Limits.Memory = ptr.To(resource.MustParse("2Gi")) },
		"timeout above the maximum": func(p *execv1alpha1.CodeRunPool) { p.Spec.Limits.TimeoutSeconds = ptr.To[int32](120) },
		"unknown language":          func(p *execv1alpha1.CodeRunPool) { p.Spec.Language = "cobol" },
	} {
		t.Run(name, func(t *testing.T) {
			pool := newPool("python", 2)
			spec(pool)
			e := newPoolEnv(t, pool)
			e.reconcile()
			e.reconcile()
			if names := e.names(); len(names) != 0 {
				t.Errorf("members %v of a pool with an invalid shape", names)
			}
			if c := e.ready(); c == nil || c.Status != metav1.ConditionFalse || c.Reason != execv1alpha1.PoolReasonInvalidShape || c.Message == "" {
				t.Errorf("Ready condition %+v, want False InvalidShape with a message", c)
			}
		})
	}
	t.Run("members of a pool whose shape became invalid are removed", func(t *testing.T) {
		pool := newPool("python", 1)
		objects := append([]client.Object{pool}, idleMember(pool, "python-a", 200001, t0)...)
		e := newPoolEnv(t, objects...)
		p := e.pool()
		p.Spec.Limits.Memory = ptr.To(resource.MustParse("2Gi"))
		if err := e.c.Update(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		e.reconcile()
		if names := e.names(); len(names) != 0 {
			t.Errorf("members %v, want none", names)
		}
	})
}

func TestPoolStatus(t *testing.T) {
	pool := newPool("python", 3)
	pool.Generation = 7
	run := newRun("r", t0)
	objects := []client.Object{pool, run}
	objects = append(objects, idleMember(pool, "python-a", 200001, t0)...)
	objects = append(objects, idleMember(pool, "python-b", 200002, t0)...)
	objects = append(objects, pendingMember(pool, "python-c", 200003, t0)...)
	busy := claimedBy(memberJobOf(pool, "python-d", 200004, t0), run)
	done := claimedBy(memberJobOf(pool, "python-e", 200005, t0), newRun("s", t0))
	done.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
	objects = append(objects, busy, memberPodOf(busy, runningState()), done)
	e := newPoolEnv(t, objects...)
	e.reconcile()

	got := e.pool().Status
	want := execv1alpha1.CodeRunPoolStatus{
		Replicas: 3, Ready: 2, Claimed: 1, Selector: "exec.coderun.dev/pool=python", ObservedGeneration: 7,
		Conditions: []metav1.Condition{{
			Type: execv1alpha1.PoolConditionReady, Status: metav1.ConditionFalse, Reason: execv1alpha1.PoolReasonFilling,
			Message: "2 of 3 members are ready", ObservedGeneration: 7, LastTransitionTime: metav1.NewTime(now.Time),
		}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	if names := e.names(); len(names) != 5 {
		t.Errorf("members %v: the pool created or deleted some, want the 5 as they were", names)
	}
}

func TestMemberIsLockedDown(t *testing.T) {
	cfg := tableConfig()
	pool := newPool("python", 1)
	job := buildMemberJob(pool, builtinPlan(cfg), cfg, 200123)
	assertLockedDown(t, job.Spec)

	js := job.Spec
	// 60 s start timeout + 600 s of waiting + 10 s run timeout + 30 s slack: a member
	// claimed at the end of its wait still has its whole run.
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds != 700 {
		t.Errorf("activeDeadlineSeconds = %v, want 700", js.ActiveDeadlineSeconds)
	}
	pod := js.Template.Spec
	c := pod.Containers[0]
	for name, ok := range map[string]bool{
		"stdin for one attach":             c.Stdin && c.StdinOnce && !c.TTY,
		"input is a bounded memory dir":    pod.Volumes[0].EmptyDir != nil && pod.Volumes[0].EmptyDir.Medium == corev1.StorageMediumMemory && pod.Volumes[0].EmptyDir.SizeLimit.String() == "1Mi",
		"no program in the pod's metadata": js.Template.Annotations[execv1alpha1.AnnotationSource] == "" && js.Template.Annotations[execv1alpha1.AnnotationStdin] == "",
		"uid as given":                     *pod.SecurityContext.RunAsUser == 200123,
		"pod labelled with its pool":       js.Template.Labels[execv1alpha1.LabelPool] == "python" && js.Template.Labels[execv1alpha1.LabelRunUID] == "",
	} {
		if !ok {
			t.Errorf("member check failed: %s", name)
		}
	}
	for _, arg := range []string{"--request=stdin", "--input-dir=" + inputDir, "--idle-timeout=600s"} {
		if !contains(c.Args, arg) {
			t.Errorf("runner args %v lack %s", c.Args, arg)
		}
	}
	for _, arg := range c.Args {
		if strings.HasPrefix(arg, "--source") || strings.HasPrefix(arg, "--stdin") {
			t.Errorf("runner arg %s: a member gets its program on stdin", arg)
		}
	}

	for _, tc := range []struct {
		cpuRequest *resource.Quantity
		want       string
	}{
		{nil, "1"}, // Guaranteed by default
		{ptr.To(resource.MustParse("100m")), "100m"},
		{ptr.To(resource.MustParse("2")), "1"}, // never above the limit
	} {
		pool.Spec.CPURequest = tc.cpuRequest
		c := buildMemberJob(pool, builtinPlan(cfg), cfg, 200123).Spec.Template.Spec.Containers[0]
		if req := c.Resources.Requests[corev1.ResourceCPU]; req.String() != tc.want || c.Resources.Limits.Cpu().String() != "1" {
			t.Errorf("cpuRequest %v: request %s limit %s, want %s and 1", tc.cpuRequest, req.String(), c.Resources.Limits.Cpu(), tc.want)
		}
	}
	if name := buildMemberJob(newPool(strings.Repeat("p", 70), 1), builtinPlan(cfg), cfg, 1).GenerateName; len(name)+5 > maxJobNameLength {
		t.Errorf("generateName %q leaves no room for a valid Job name", name)
	}
}
