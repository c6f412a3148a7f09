// Package controllers holds the CodeRun controller: it queues runs, turns each into a
// locked-down Job, and records the program's result in the CodeRun's status.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/report"
)

// queuedRecheck is how often a queued run checks the queue on its own, as a safety net
// behind the wake-ups sent when slots free up.
const queuedRecheck = 15 * time.Second

// conflictRetry is how soon a reconcile whose status write lost a race tries again.
const conflictRetry = 100 * time.Millisecond

// CodeRunReconciler reconciles CodeRuns into Jobs and Jobs' pods into results.
type CodeRunReconciler struct {
	client.Client
	// APIReader reads from the API server, not the cache, to tell a deleted Job from one
	// the cache has not seen yet.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	Recorder  events.EventRecorder
	Config    config.Config
	// Logs reads a run pod's log when its report did not fit the termination message.
	Logs  LogReader
	Clock clock.PassiveClock
	// Attacher delivers programs to warm pool members (pods/attach). Without one, every
	// run takes the cold path.
	Attacher Attacher

	queue      *runQueue
	deliveries *deliveries
	// userns decides the hostUsers of run pods (usernamespaces.go).
	userns *userNamespaces
}

// LogReader reads the end of a container's log.
type LogReader interface {
	ReadLog(ctx context.Context, namespace, pod, container string) ([]byte, error)
}

// +kubebuilder:rbac:groups=exec.coderun.dev,resources=coderuns,verbs=get;list;watch
// +kubebuilder:rbac:groups=exec.coderun.dev,resources=coderuns/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=exec.coderun.dev,resources=coderuns/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods/log,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile moves one CodeRun along: Queued → Running (Job created) → Succeeded/Failed.
// It computes the run's next status from what it observes, writes it, then records the
// end of a run that just finished.
func (r *CodeRunReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	run := &execv1alpha1.CodeRun{}
	if err := r.Get(ctx, req.NamespacedName, run); err != nil {
		if apierrors.IsNotFound(err) {
			r.queue.forget(req.NamespacedName)
			r.deliveries.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("getting CodeRun: %w", err)
	}
	if err := r.seedQueue(ctx); err != nil {
		return ctrl.Result{}, err
	}
	if !run.DeletionTimestamp.IsZero() {
		r.queue.release(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	if finished(run) {
		r.queue.release(req.NamespacedName)
		r.deliveries.forget(req.NamespacedName)
		return ctrl.Result{}, r.deleteUnstartedJob(ctx, run)
	}

	u := newStatusUpdate(run, metav1.NewTime(r.Clock.Now()))
	result, err := r.reconcileRun(ctx, u)
	if err != nil {
		return ctrl.Result{}, err
	}
	if finished(u.run) {
		// Free the slot before the status write: the write's watch event wakes the queue.
		r.queue.release(req.NamespacedName)
	}
	if retry, err := r.writeStatus(ctx, u); err != nil {
		return ctrl.Result{}, err
	} else if retry {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	if u.finishes() {
		recordFinished(ctx, u.run)
	}
	return result, nil
}

// reconcileRun computes the run's next status (into u) and creates the Job it needs.
func (r *CodeRunReconciler) reconcileRun(ctx context.Context, u *statusUpdate) (ctrl.Result, error) {
	run := u.run

	limits := r.Config.Effective(run.Spec.Limits)
	if run.Status.Limits == nil {
		run.Status.Limits = limits.DeepCopy()
	}
	if over := config.Exceeds(limits, r.Config.MaxLimits); over != "" {
		u.finish(&execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonRejected, Message: over})
		return ctrl.Result{}, nil
	}
	if warm, result, err := r.reconcileWarm(ctx, u, limits); warm || err != nil {
		return result, err
	}

	job := &batchv1.Job{}
	jobKey := types.NamespacedName{Namespace: run.Namespace, Name: jobName(run)}
	err := r.Get(ctx, jobKey, job)
	switch {
	case err == nil:
		if !metav1.IsControlledBy(job, run) {
			u.finish(systemError("a Job named %q already exists and does not belong to this CodeRun", jobKey.Name))
			return ctrl.Result{}, nil
		}
		return r.observeJob(ctx, u, job, limits)
	case !apierrors.IsNotFound(err):
		return ctrl.Result{}, fmt.Errorf("getting Job %s: %w", jobKey.Name, err)
	}

	if run.Status.JobName != "" {
		// The Job was created once. Ask the API server whether it is really gone or the
		// cache is only behind.
		if err := r.APIReader.Get(ctx, jobKey, &batchv1.Job{}); err == nil {
			return ctrl.Result{RequeueAfter: time.Second}, nil
		} else if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("getting Job %s from the API server: %w", jobKey.Name, err)
		}
		u.finish(systemError("the run's Job %s was deleted before the program finished", jobKey.Name))
		return ctrl.Result{}, nil
	}
	plan, err := r.planRun(ctx, run)
	if rej := (*errRejected)(nil); errors.As(err, &rej) {
		u.finish(&execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonRejected, Message: rej.message})
		return ctrl.Result{}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if run.Status.Runtime == nil || *run.Status.Runtime != plan.ref {
		run.Status.Runtime = plan.ref.DeepCopy()
	}
	return r.admit(ctx, u, limits, plan)
}

// admit gives the run a slot and creates its Job, or, when every slot is taken or older
// runs wait for the free ones, queues it.
func (r *CodeRunReconciler) admit(ctx context.Context, u *statusUpdate, limits execv1alpha1.Limits, plan *runPlan) (ctrl.Result, error) {
	run := u.run
	key := client.ObjectKeyFromObject(run)
	uid, admitted := r.queue.admit(key, run.CreationTimestamp, preferredUID(run, r.Config), r.Config.RunUIDMin, r.Config.RunUIDCount)
	if !admitted {
		if run.Status.Phase != execv1alpha1.PhaseQueued {
			u.event(corev1.EventTypeNormal, "Queued", "Queue",
				fmt.Sprintf("Waiting for one of %d run slots", r.Config.MaxConcurrentRuns))
		}
		run.Status.Phase = execv1alpha1.PhaseQueued
		u.setCondition(execv1alpha1.ConditionAdmitted, metav1.ConditionFalse, execv1alpha1.ReasonWaitingForSlot,
			fmt.Sprintf("all %d run slots are taken; runs start oldest first", r.Config.MaxConcurrentRuns))
		u.setCondition(execv1alpha1.ConditionFinished, metav1.ConditionFalse, execv1alpha1.ReasonInProgress, "the run is queued")
		return ctrl.Result{RequeueAfter: queuedRecheck}, nil
	}
	// A smoke test tests the Runtime's current spec in a pod of its own, not in a member
	// that may have been built before the spec changed.
	if r.Attacher != nil && run.Annotations[AnnotationSmokeTestOf] == "" {
		if warm, err := r.startWarm(ctx, u, limits, plan); err != nil {
			r.queue.release(key)
			return ctrl.Result{}, err
		} else if warm {
			return ctrl.Result{}, nil
		}
	}
	cfg, err := r.userns.apply(ctx, r.Config)
	if err != nil {
		r.queue.release(key)
		return ctrl.Result{}, err
	}
	job := buildRunJob(run, plan, limits, cfg, uid)
	if err := ctrl.SetControllerReference(run, job, r.Scheme); err != nil {
		r.queue.release(key)
		return ctrl.Result{}, fmt.Errorf("owning Job: %w", err)
	}
	if err := r.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		r.queue.release(key)
		return ctrl.Result{}, fmt.Errorf("creating Job %s: %w", job.Name, err)
	} else if err == nil {
		jobsCreated.Inc()
		logf.FromContext(ctx).Info("created Job", "job", job.Name, "uid", uid, "runtime", plan.runtimeName(), "image", plan.image, "timeoutSeconds", *limits.TimeoutSeconds,
			"memory", limits.Memory.String(), "cpu", limits.CPU.String())
	}
	run.Status.Phase = execv1alpha1.PhaseRunning
	run.Status.Path = execv1alpha1.PathCold
	run.Status.JobName = job.Name
	u.setCondition(execv1alpha1.ConditionAdmitted, metav1.ConditionTrue, execv1alpha1.ReasonSlotAssigned, "created Job "+job.Name)
	u.setCondition(execv1alpha1.ConditionFinished, metav1.ConditionFalse, execv1alpha1.ReasonInProgress, "the program is starting")
	u.event(corev1.EventTypeNormal, "JobCreated", "Admit", "Created Job "+job.Name)
	return ctrl.Result{RequeueAfter: r.Config.StartTimeout.Duration}, nil
}

// observeJob follows a run's Job and pod to the result.
func (r *CodeRunReconciler) observeJob(ctx context.Context, u *statusUpdate, job *batchv1.Job, limits execv1alpha1.Limits) (ctrl.Result, error) {
	run := u.run
	run.Status.Phase = execv1alpha1.PhaseRunning
	run.Status.JobName = job.Name
	// The Job says the path, not a status that a lost write may never have recorded.
	run.Status.Path, run.Status.Pool = execv1alpha1.PathCold, ""
	if isMember(job) {
		run.Status.Path, run.Status.Pool = execv1alpha1.PathWarm, job.Labels[execv1alpha1.LabelPool]
	}
	pod, err := r.runPod(ctx, run)
	if isMember(job) {
		pod, err = r.memberPod(ctx, job)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	var cs *corev1.ContainerStatus
	if pod != nil {
		run.Status.PodName = pod.Name
		cs = runContainerStatus(pod)
	}

	if cs != nil && run.Status.StartTime == nil {
		switch {
		case cs.State.Running != nil && !cs.State.Running.StartedAt.IsZero():
			started := cs.State.Running.StartedAt
			// As on the warm path, a run shows Running once its program has run for a
			// second: most programs end sooner, and then one status write records both
			// their start and their end instead of one write each. At thousands of runs,
			// writes are what the API server runs out of.
			if wait := started.Add(runningStatusWait).Sub(r.Clock.Now()); wait > 0 {
				u.run.Status = *u.base.Status.DeepCopy()
				return ctrl.Result{RequeueAfter: wait}, nil
			}
			run.Status.StartTime = started.DeepCopy()
			u.setCondition(execv1alpha1.ConditionFinished, metav1.ConditionFalse, execv1alpha1.ReasonInProgress, "the program is running")
			u.event(corev1.EventTypeNormal, "Started", "Run", "Program started in pod "+pod.Name)
		case cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero():
			// Started and ended between two looks: the event of its end says it all.
			run.Status.StartTime = cs.State.Terminated.StartedAt.DeepCopy()
		}
	}

	if cs != nil && cs.State.Terminated != nil {
		u.finish(r.resultFromPod(ctx, pod, cs.State.Terminated, limits))
		return ctrl.Result{}, nil
	}
	if cond := jobCondition(job, batchv1.JobFailed); cond != nil {
		u.finish(resultFromFailedJob(cond, run.Status.StartTime != nil, limits))
		return ctrl.Result{}, nil
	}
	if jobCondition(job, batchv1.JobComplete) != nil {
		u.finish(systemError("the Job completed but its pod is gone, so the result was lost"))
		return ctrl.Result{}, nil
	}
	if run.Status.StartTime != nil {
		return ctrl.Result{}, nil // the pod's next update brings the result
	}

	// Not started yet: scheduling and pulling the image get StartTimeout, no more.
	if why := cannotStart(pod); why != "" {
		return r.failUnstarted(u, "the run could not start: "+why)
	}
	wait := job.CreationTimestamp.Add(r.Config.StartTimeout.Duration).Sub(r.Clock.Now())
	if wait <= 0 {
		return r.failUnstarted(u, fmt.Sprintf("the run did not start within %s: %s", r.Config.StartTimeout.Duration, waitingMessage(pod)))
	}
	return ctrl.Result{RequeueAfter: wait}, nil
}

// failUnstarted fails a run whose pod cannot start, with a SystemError that says why. It
// does not delete the Job: the next reconcile does (deleteUnstartedJob), once the result is
// recorded, so that a failed status write cannot leave a run without its Job and without
// the reason why.
func (r *CodeRunReconciler) failUnstarted(u *statusUpdate, message string) (ctrl.Result, error) {
	u.finish(systemError("%s", message))
	return ctrl.Result{}, nil
}

// deleteUnstartedJob deletes the Job of a run that ended before its program started, so
// that its pod does not linger, pending, until the Job's deadline.
func (r *CodeRunReconciler) deleteUnstartedJob(ctx context.Context, run *execv1alpha1.CodeRun) error {
	if run.Status.StartTime != nil || run.Status.JobName == "" || run.Status.Result.Reason != execv1alpha1.ReasonSystemError {
		return nil
	}
	job := &batchv1.Job{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: run.Status.JobName}, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(job, run) || jobFinished(job) {
		return nil
	}
	err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting Job %s that could not start: %w", job.Name, err)
	}
	logf.FromContext(ctx).Info("deleted Job that could not start", "job", job.Name)
	return nil
}

// resultFromPod reads the result of a pod whose run container has terminated: the
// runner's report from the termination message, or from the log when it did not fit.
func (r *CodeRunReconciler) resultFromPod(ctx context.Context, pod *corev1.Pod, term *corev1.ContainerStateTerminated, limits execv1alpha1.Limits) *execv1alpha1.CodeRunResult {
	if term.ExitCode != 0 {
		// The runner exits 0 only once it has written the termination message itself. The
		// program can write there too (the file is writable by the container's user), so
		// after a runner that crashed or was killed only the log, where nothing but the
		// runner writes, is trusted.
		return r.resultFromLogOnly(ctx, pod, term, limits)
	}
	rep, fallback := reportFromTermination(term, limits)
	if fallback != nil {
		return fallback
	}
	var logErr error
	if rep.OutputInLog {
		var log []byte
		if log, logErr = r.Logs.ReadLog(ctx, pod.Namespace, pod.Name, containerName); logErr == nil {
			var full report.Report
			if full, logErr = report.FindInLog(log); logErr == nil {
				rep = full
			}
		}
	}
	res := resultFromReport(rep, term.Reason == "OOMKilled", limits)
	if logErr != nil {
		logf.FromContext(ctx).Error(logErr, "reading the run's output from its log", "pod", pod.Name)
		res.Message = joinSentences(res.Message, "the output could not be read from the pod's log: "+logErr.Error())
		res.OutputTruncated, res.StdoutTruncated, res.StderrTruncated = true, true, true
	}
	return res
}

// resultFromLogOnly reads the result of a run whose runner did not exit 0 from the last
// report line of the pod's log; without one, the container's state explains the end.
func (r *CodeRunReconciler) resultFromLogOnly(ctx context.Context, pod *corev1.Pod, term *corev1.ContainerStateTerminated, limits execv1alpha1.Limits) *execv1alpha1.CodeRunResult {
	log, err := r.Logs.ReadLog(ctx, pod.Namespace, pod.Name, containerName)
	if err == nil {
		var rep report.Report
		if rep, err = report.FindInLog(log); err == nil {
			return resultFromReport(rep, term.Reason == "OOMKilled", limits)
		}
	}
	return resultFromTermination(term, limits, err)
}

// runPod returns the run's pod: the one whose run container terminated if any, else the
// newest.
func (r *CodeRunReconciler) runPod(ctx context.Context, run *execv1alpha1.CodeRun) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(run.Namespace), client.MatchingFields{indexRunUID: string(run.UID)}); err != nil {
		return nil, fmt.Errorf("listing the run's pods: %w", err)
	}
	var newest *corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if cs := runContainerStatus(p); cs != nil && cs.State.Terminated != nil {
			return p, nil
		}
		if newest == nil || p.CreationTimestamp.After(newest.CreationTimestamp.Time) {
			newest = p
		}
	}
	return newest, nil
}

// seedQueue, on the first reconcile, gives a slot to each run that was already running
// when the operator started (its Job exists, it has no result), with the uid its Job runs
// as. It looks for the Jobs rather than trusting status.jobName, which a crash between
// creating a Job and writing the status would leave unset.
func (r *CodeRunReconciler) seedQueue(ctx context.Context) error {
	if r.queue.isSeeded() {
		return nil
	}
	all := &execv1alpha1.CodeRunList{}
	if err := r.List(ctx, all, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing CodeRuns: %w", err)
	}
	running := map[types.NamespacedName]int64{}
	for i := range all.Items {
		run := &all.Items[i]
		if finished(run) || !run.DeletionTimestamp.IsZero() {
			continue
		}
		job := &batchv1.Job{}
		err := r.Get(ctx, types.NamespacedName{Namespace: run.Namespace, Name: jobName(run)}, job)
		if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(job, run)) {
			continue
		} else if err != nil {
			return fmt.Errorf("getting the Job of %s: %w", run.Name, err)
		}
		running[client.ObjectKeyFromObject(run)] = memberUID(job)
	}
	// Runs on the warm path run in a member they claimed, which has another name.
	members := &batchv1.JobList{}
	if err := r.List(ctx, members, client.MatchingLabels{execv1alpha1.LabelMember: execv1alpha1.MemberClaimed}); err != nil {
		return fmt.Errorf("listing claimed pool members: %w", err)
	}
	for i := range members.Items {
		job := &members.Items[i]
		if name := job.Annotations[execv1alpha1.AnnotationRun]; name != "" && !jobFinished(job) {
			running[types.NamespacedName{Namespace: job.Namespace, Name: name}] = memberUID(job)
		}
	}
	r.queue.seed(running)
	return nil
}

// wakeQueue enqueues the oldest waiting runs that fit in the free slots.
func (r *CodeRunReconciler) wakeQueue(q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	for _, key := range r.queue.next(r.queue.freeSlots()) {
		q.Add(reconcile.Request{NamespacedName: key})
	}
}

// runEvents handles CodeRun events: it records arrivals (for queue order) and, when a run
// gives up its slot, wakes the runs next in line.
func (r *CodeRunReconciler) runEvents() handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj client.Object) {
		q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		// The queue learns of every change before the run is enqueued, so that the reconcile
		// finds it in the queue's view of the waiting runs.
		CreateFunc: func(ctx context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if run, ok := e.Object.(*execv1alpha1.CodeRun); ok {
				r.queue.observe(run, e.IsInInitialList)
			}
			enqueue(q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			run, ok := e.ObjectNew.(*execv1alpha1.CodeRun)
			if ok {
				r.queue.track(run)
			}
			enqueue(q, e.ObjectNew)
			if ok && (finished(run) || !run.DeletionTimestamp.IsZero()) {
				r.queue.release(client.ObjectKeyFromObject(run))
				r.wakeQueue(q)
			}
		},
		DeleteFunc: func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.queue.forget(client.ObjectKeyFromObject(e.Object))
			r.wakeQueue(q)
		},
		GenericFunc: func(ctx context.Context, e event.TypedGenericEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object)
		},
	}
}

// podToRun maps a run pod to its CodeRun.
func (r *CodeRunReconciler) podToRun(ctx context.Context, obj client.Object) []reconcile.Request {
	name := obj.GetAnnotations()[execv1alpha1.AnnotationRun]
	if pod, ok := obj.(*corev1.Pod); ok && name == "" && jobOfPod(pod) != "" && pod.Labels[execv1alpha1.LabelPool] != "" {
		// A pool member's pod was created before any run claimed it; its Job says which.
		job := &batchv1.Job{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: jobOfPod(pod)}, job); err == nil {
			name = job.Annotations[execv1alpha1.AnnotationRun]
		}
	}
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}}}
}

// SetupWithManager registers the controller. maxConcurrentReconciles bounds parallel
// reconciles (the queue itself is safe under any).
func (r *CodeRunReconciler) SetupWithManager(mgr ctrl.Manager, maxConcurrentReconciles int) error {
	r.queue = newRunQueue(r.Config.MaxConcurrentRuns)
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	r.deliveries = newDeliveries(r.Attacher, r.Clock)
	r.userns = newUserNamespaces(r.Config)
	if err := r.userns.setupWithManager(mgr); err != nil {
		return err
	}
	if err := setupIndexes(context.Background(), mgr); err != nil {
		return err
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("coderun").
		WatchesRawSource(source.Kind(mgr.GetCache(), client.Object(&execv1alpha1.CodeRun{}), r.runEvents())).
		// A warm run's attach stream ended: its result is waiting in r.deliveries.
		WatchesRawSource(source.Channel(r.deliveries.events, &handler.EnqueueRequestForObject{})).
		Watches(&batchv1.Job{}, handler.EnqueueRequestForOwner(mgr.GetScheme(), mgr.GetRESTMapper(), &execv1alpha1.CodeRun{}, handler.OnlyControllerOwner())).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.podToRun)).
		WithOptions(controller.Options{MaxConcurrentReconciles: maxConcurrentReconciles}).
		Complete(r)
	if err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(r.deliveries.run)); err != nil {
		return err
	}
	// The pool controller shares the queue, which hands out the uids of runs and members.
	pools := &CodeRunPoolReconciler{Client: r.Client, Scheme: r.Scheme, Recorder: r.Recorder, Config: r.Config, Clock: r.Clock,
		deliveries: r.deliveries, userns: r.userns}
	if err := pools.SetupWithManager(mgr, r.queue); err != nil {
		return err
	}
	if !r.Config.ManageRuntimes {
		return nil
	}
	rts := &RuntimeReconciler{Client: r.Client, APIReader: r.APIReader, Scheme: r.Scheme, Recorder: r.Recorder, Config: r.Config, Clock: r.Clock}
	return rts.SetupWithManager(mgr)
}

// finished reports whether run has its result.
func finished(run *execv1alpha1.CodeRun) bool {
	return run.Status.Result != nil
}

func joinSentences(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
