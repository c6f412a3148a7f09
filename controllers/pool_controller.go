package controllers

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

const (
	// maxCreatesPerPass bounds the members one reconcile creates; the rest follow on the
	// next pass, so that a pool scaled to hundreds does not flood the API server at once.
	maxCreatesPerPass = 8
	// creationInterval spaces member creations of one pool: on a small node, starting pods
	// competes with the programs that run, as the ReplicaSet controller's slow start does.
	creationInterval = 100 * time.Millisecond
	// expectationTimeout is how long a created member that the cache has not shown yet
	// still counts toward the pool, so that a slow watch does not make the pool overshoot.
	expectationTimeout = 30 * time.Second
	// maxFailureBackoff caps the wait before replacing members that failed to start.
	maxFailureBackoff = 5 * time.Minute
)

// CodeRunPoolReconciler keeps each CodeRunPool's idle members: it creates members up to
// spec.replicas, recycles those that exited unused or could not start, removes extras,
// and reports the counts in the pool's status.
type CodeRunPoolReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder
	Config   config.Config
	Clock    clock.PassiveClock

	queue *runQueue
	// deliveries holds a stream open to each ready member (nil: none).
	deliveries *deliveries
	// userns decides the hostUsers of members (usernamespaces.go); shared with the CodeRun
	// controller.
	userns *userNamespaces

	mu    sync.Mutex
	pools map[types.NamespacedName]*poolState
}

// poolState is what the reconciler remembers of one pool between passes.
type poolState struct {
	// expected are members created but not yet in the cache, with their creation time.
	expected map[string]time.Time
	// nextCreate is the earliest time of the next creation.
	nextCreate time.Time
	// failures counts members in a row that could not start; it sets the back-off.
	failures int
	// failedMembers are the members counted in failures: a failed member stays in the
	// cache for some passes after it was deleted, and must count once.
	failedMembers map[string]bool
}

// +kubebuilder:rbac:groups=exec.coderun.dev,resources=coderunpools,verbs=get;list;watch
// +kubebuilder:rbac:groups=exec.coderun.dev,resources=coderunpools/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=pods/attach,verbs=get;create

// Reconcile brings one pool to its wanted number of idle members.
func (r *CodeRunPoolReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pool := &execv1alpha1.CodeRunPool{}
	if err := r.Get(ctx, req.NamespacedName, pool); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting CodeRunPool: %w", err)
	}
	if !pool.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	list, err := listRuntimes(ctx, r.Client)
	if err != nil {
		return ctrl.Result{}, err
	}
	plan, invalid := r.planPool(list, pool)
	members, err := r.observe(ctx, pool, plan)
	if err != nil {
		return ctrl.Result{}, err
	}
	base := pool.DeepCopy()
	result, err := r.scale(ctx, pool, members, plan, invalid)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.setStatus(pool, members, invalid)
	if !equality.Semantic.DeepEqual(base.Status, pool.Status) {
		if err := r.Status().Patch(ctx, pool, client.MergeFrom(base)); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	return result, nil
}

// poolMembers is a pool's members as the cache shows them.
type poolMembers struct {
	idle    []*batchv1.Job // neither claimed, finished nor deleting
	ready   map[string]bool
	claimed int
	// stale are idle members to remove: finished (exited unused after maxIdleSeconds, or
	// failed) or unable to start. failed says why the last one could not start.
	stale  []*batchv1.Job
	failed string
	// failedNames are the members that could not start; newFailures counts those not
	// seen failing before.
	failedNames []string
	newFailures int
	// pending counts members created but not yet in the cache.
	pending int
}

// observe sorts the pool's member Jobs by state.
func (r *CodeRunPoolReconciler) observe(ctx context.Context, pool *execv1alpha1.CodeRunPool, plan *runPlan) (poolMembers, error) {
	sel := client.MatchingLabels{execv1alpha1.LabelPool: pool.Name}
	jobs := &batchv1.JobList{}
	if err := r.List(ctx, jobs, client.InNamespace(pool.Namespace), sel); err != nil {
		return poolMembers{}, fmt.Errorf("listing the pool's Jobs: %w", err)
	}
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(pool.Namespace), sel); err != nil {
		return poolMembers{}, fmt.Errorf("listing the pool's pods: %w", err)
	}
	podOf := map[string]*corev1.Pod{}
	for i := range pods.Items {
		if name := jobOfPod(&pods.Items[i]); name != "" {
			podOf[name] = &pods.Items[i]
		}
	}
	m := poolMembers{ready: map[string]bool{}}
	now := r.Clock.Now()
	cfg, err := r.userns.apply(ctx, r.Config)
	if err != nil {
		return poolMembers{}, err
	}
	// Without a Runtime to run, no member fits: each is replaced (by none).
	digest := ""
	if plan != nil {
		digest = memberSpecDigest(pool, plan, cfg)
	}
	seen := map[string]bool{}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		seen[job.Name] = true
		key := client.ObjectKeyFromObject(job)
		switch {
		case job.Labels[execv1alpha1.LabelMember] == execv1alpha1.MemberClaimed:
			// Its uid now belongs to the run that claimed it (runQueue.claimMember); a pass
			// that saw it idle in a stale cache may have recorded it as a member again.
			r.queue.forgetMember(key)
			if !jobFinished(job) && job.DeletionTimestamp.IsZero() {
				m.claimed++
			}
			continue
		case !job.DeletionTimestamp.IsZero():
			r.queue.forgetMember(key)
			continue
		case jobFinished(job):
			m.stale = append(m.stale, job)
			continue
		case job.Annotations[annotationMemberSpec] != digest:
			// Built for an older shape or operator configuration (image, limits): replaced,
			// unless a run claims it first (the delete's precondition fails then).
			m.stale = append(m.stale, job)
			continue
		}
		pod := podOf[job.Name]
		if cs := runContainerStatus(pod); cs != nil && cs.State.Terminated != nil {
			// The runner exited (unused after maxIdleSeconds, most likely) and the Job
			// controller has not marked the Job finished yet: a member that started.
			m.stale = append(m.stale, job)
			continue
		}
		if why := cannotStart(pod); why != "" {
			m.stale, m.failed = append(m.stale, job), why
			m.failedNames = append(m.failedNames, job.Name)
			continue
		}
		if !podRunning(pod) && now.Sub(job.CreationTimestamp.Time) > r.Config.StartTimeout.Duration {
			m.stale = append(m.stale, job)
			m.failed = fmt.Sprintf("the member did not start within %s: %s", r.Config.StartTimeout.Duration, waitingMessage(pod))
			m.failedNames = append(m.failedNames, job.Name)
			continue
		}
		r.queue.seedMember(key, memberUID(job))
		m.idle = append(m.idle, job)
		if podRunning(pod) {
			m.ready[job.Name] = true
			r.deliveries.hold(key, pod.Name)
		}
	}
	st := r.state(client.ObjectKeyFromObject(pool))
	r.mu.Lock()
	for name, created := range st.expected {
		if seen[name] || now.Sub(created) > expectationTimeout {
			delete(st.expected, name)
		}
	}
	m.pending = len(st.expected)
	for _, name := range m.failedNames {
		if !st.failedMembers[name] {
			st.failedMembers[name] = true
			m.newFailures++
		}
	}
	st.failures += m.newFailures
	if m.failed == "" && len(m.ready) > 0 {
		st.failures = 0
		clear(st.failedMembers)
	}
	r.mu.Unlock()
	return m, nil
}

// scale removes stale and surplus members and creates missing ones, paced.
func (r *CodeRunPoolReconciler) scale(ctx context.Context, pool *execv1alpha1.CodeRunPool, m poolMembers, plan *runPlan, invalid string) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	for _, job := range m.stale {
		if err := r.deleteMember(ctx, job); err != nil {
			return ctrl.Result{}, err
		}
	}
	if m.failed != "" {
		r.Recorder.Eventf(pool, nil, corev1.EventTypeWarning, execv1alpha1.PoolReasonMembersFailing, "Replace", "%s", m.failed)
	}
	want := wanted(pool, invalid)
	have := len(m.idle) + m.pending
	if have > want {
		// Remove members that are not ready first, then the newest: the oldest ready ones
		// are the likeliest to be claimed next.
		surplus := slices.Clone(m.idle)
		slices.SortStableFunc(surplus, func(a, b *batchv1.Job) int {
			if m.ready[a.Name] != m.ready[b.Name] {
				if m.ready[a.Name] {
					return 1
				}
				return -1
			}
			return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
		})
		for _, job := range surplus[:min(have-want, len(surplus))] {
			if err := r.deleteMember(ctx, job); err != nil {
				return ctrl.Result{}, err
			}
		}
		return ctrl.Result{}, nil
	}
	missing := want - have
	if missing == 0 {
		return ctrl.Result{}, nil
	}
	st := r.state(client.ObjectKeyFromObject(pool))
	now := r.Clock.Now()
	r.mu.Lock()
	wait := st.nextCreate.Sub(now)
	if m.newFailures > 0 {
		backoff := min(time.Duration(1<<min(st.failures, 16))*time.Second, maxFailureBackoff)
		st.nextCreate = now.Add(backoff)
		wait = backoff
	}
	r.mu.Unlock()
	if wait > 0 {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	created := 0
	for created < min(missing, maxCreatesPerPass) {
		job, err := r.createMember(ctx, pool, plan)
		if err != nil {
			return ctrl.Result{}, err
		}
		created++
		r.mu.Lock()
		st.expected[job.Name] = now
		r.mu.Unlock()
		log.V(1).Info("created pool member", "job", job.Name, "uid", memberUID(job))
	}
	r.mu.Lock()
	st.nextCreate = now.Add(time.Duration(created) * creationInterval)
	r.mu.Unlock()
	if created < missing {
		return ctrl.Result{RequeueAfter: time.Duration(created) * creationInterval}, nil
	}
	return ctrl.Result{}, nil
}

// wanted is the number of idle members pool should have: none when its shape is invalid.
func wanted(pool *execv1alpha1.CodeRunPool, invalid string) int {
	if invalid != "" || pool.Spec.Replicas == nil {
		return 0
	}
	return int(*pool.Spec.Replicas)
}

// planPool returns what pool's members run, or why none can be built (its InvalidShape
// message): no Runtime for its language and version, one that is not Ready, or a shape
// above the operator's maxima.
func (r *CodeRunPoolReconciler) planPool(list []execv1alpha1.Runtime, pool *execv1alpha1.CodeRunPool) (*runPlan, string) {
	plan, err := planPool(list, pool, r.Config)
	if err != nil {
		return nil, err.Error()
	}
	if over := config.Exceeds(poolShape(pool, r.Config), r.Config.MaxLimits); over != "" {
		return nil, over
	}
	return plan, ""
}

// planPool resolves pool's language and version as a run's are: the plan its members
// run, or an error that says why there is none.
func planPool(list []execv1alpha1.Runtime, pool *execv1alpha1.CodeRunPool, cfg config.Config) (*runPlan, error) {
	rt, err := selectRuntime(list, pool.Spec.Language, pool.Spec.Version)
	if err != nil {
		return nil, err
	}
	if rt == nil {
		return builtinPlan(cfg), nil
	}
	if why := notReady(rt); why != "" {
		return nil, rejected("%s", why)
	}
	return runtimePlan(rt, nil, nil, cfg), nil
}

// createMember creates one member Job, owned by pool, with a uid of its own.
func (r *CodeRunPoolReconciler) createMember(ctx context.Context, pool *execv1alpha1.CodeRunPool, plan *runPlan) (*batchv1.Job, error) {
	name := memberNamePrefix(pool.Name) + utilrand.String(5)
	key := types.NamespacedName{Namespace: pool.Namespace, Name: name}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key.String()))
	uid := r.queue.reserveMember(key, r.Config.RunUIDMin+int64(h.Sum64()%uint64(r.Config.RunUIDCount)), r.Config.RunUIDMin, r.Config.RunUIDCount)
	cfg, err := r.userns.apply(ctx, r.Config)
	if err != nil {
		r.queue.forgetMember(key)
		return nil, err
	}
	job := buildMemberJob(pool, plan, cfg, uid)
	job.GenerateName, job.Name = "", name
	if err := ctrl.SetControllerReference(pool, job, r.Scheme); err != nil {
		r.queue.forgetMember(key)
		return nil, fmt.Errorf("owning member Job: %w", err)
	}
	if err := r.Create(ctx, job); err != nil {
		r.queue.forgetMember(key)
		return nil, fmt.Errorf("creating member Job %s: %w", name, err)
	}
	poolMembersCreated.WithLabelValues(pool.Name).Inc()
	return job, nil
}

// deleteMember deletes an idle member, unless a CodeRun claimed it meanwhile (the
// resourceVersion precondition fails then).
func (r *CodeRunPoolReconciler) deleteMember(ctx context.Context, job *batchv1.Job) error {
	err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{ResourceVersion: ptr.To(job.ResourceVersion)})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("deleting member Job %s: %w", job.Name, err)
	}
	if err == nil || apierrors.IsNotFound(err) {
		r.queue.forgetMember(client.ObjectKeyFromObject(job))
	}
	return nil
}

// setStatus writes the counts and the Ready condition into pool's status.
func (r *CodeRunPoolReconciler) setStatus(pool *execv1alpha1.CodeRunPool, m poolMembers, invalid string) {
	want := wanted(pool, invalid)
	pool.Status.Replicas = int32(len(m.idle))
	pool.Status.Ready = int32(len(m.ready))
	pool.Status.Claimed = int32(m.claimed)
	pool.Status.Selector = labels.SelectorFromSet(labels.Set{execv1alpha1.LabelPool: pool.Name}).String()
	pool.Status.ObservedGeneration = pool.Generation
	cond := metav1.Condition{Type: execv1alpha1.PoolConditionReady, ObservedGeneration: pool.Generation,
		LastTransitionTime: metav1.NewTime(r.Clock.Now())}
	switch why := invalid; {
	case why != "":
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, execv1alpha1.PoolReasonInvalidShape, why
	case m.failed != "":
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, execv1alpha1.PoolReasonMembersFailing, m.failed
	case len(m.ready) >= want:
		cond.Status, cond.Reason = metav1.ConditionTrue, execv1alpha1.PoolReasonFull
		cond.Message = fmt.Sprintf("%d of %d members are ready", len(m.ready), want)
	default:
		cond.Status, cond.Reason = metav1.ConditionFalse, execv1alpha1.PoolReasonFilling
		cond.Message = fmt.Sprintf("%d of %d members are ready", len(m.ready), want)
	}
	meta.SetStatusCondition(&pool.Status.Conditions, cond)
	poolMemberGauge.WithLabelValues(pool.Name, "idle").Set(float64(len(m.idle)))
	poolMemberGauge.WithLabelValues(pool.Name, "ready").Set(float64(len(m.ready)))
	poolMemberGauge.WithLabelValues(pool.Name, "claimed").Set(float64(m.claimed))
}

func (r *CodeRunPoolReconciler) state(key types.NamespacedName) *poolState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st, ok := r.pools[key]
	if !ok {
		st = &poolState{expected: map[string]time.Time{}, failedMembers: map[string]bool{}}
		r.pools[key] = st
	}
	return st
}

func (r *CodeRunPoolReconciler) forget(key types.NamespacedName) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pools, key)
}

// memberToPool maps a member's Job or pod to its pool.
func memberToPool(_ context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetLabels()[execv1alpha1.LabelPool]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// SetupWithManager registers the pool controller. It shares queue with the CodeRun
// controller, which hands out the uids of runs and members alike.
func (r *CodeRunPoolReconciler) SetupWithManager(mgr ctrl.Manager, queue *runQueue) error {
	r.queue = queue
	r.pools = map[types.NamespacedName]*poolState{}
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named("coderunpool").
		For(&execv1alpha1.CodeRunPool{}).
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(memberToPool)).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(memberToPool)).
		// A Runtime appeared, changed or became Ready: pools may resolve to another one, and
		// members built on an old image are replaced.
		Watches(&execv1alpha1.Runtime{}, handler.EnqueueRequestsFromMapFunc(r.allPools))
	if r.userns != nil {
		// Run pods' hostUsers changed: every pool replaces its idle members.
		b = b.WatchesRawSource(source.Channel(r.userns.changed, handler.EnqueueRequestsFromMapFunc(r.allPools)))
	}
	return b.Complete(r)
}

// allPools asks for a pass over every pool.
func (r *CodeRunPoolReconciler) allPools(ctx context.Context, _ client.Object) []reconcile.Request {
	pools := &execv1alpha1.CodeRunPoolList{}
	if err := r.List(ctx, pools); err != nil {
		logf.FromContext(ctx).Error(err, "listing CodeRunPools")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(pools.Items))
	for i := range pools.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pools.Items[i])})
	}
	return reqs
}
