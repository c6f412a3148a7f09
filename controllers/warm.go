package controllers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/delivery"
	"github.com/coderun-dev/coderun/internal/report"
)

// Claim outcomes, the label values of coderun_pool_claims_total.
const (
	claimWarm         = "warm"
	claimNoMember     = "cold-no-member"
	claimShape        = "cold-shape"
	claimRetried      = "retried"
	runningStatusWait = time.Second
	// deliveryMargin is added to a run's timeout to bound its attach stream: the runner
	// kills the program at its timeout and reports at once, so a stream that lasts longer
	// is stuck, and the result then comes from the pod, as on the cold path.
	deliveryMargin = 30 * time.Second
	// memberStuckMargin is how long past a warm run's time limit its member's pod may
	// still run after a broken stream before the run is given up as a SystemError: enough
	// for a runner that did get the program to end it and for its pod's end to reach the
	// cache from a busy node.
	memberStuckMargin = 2 * deliveryMargin
	// maxStreamOutput bounds what is kept of a member's stdout, where the runner writes
	// only its report.
	maxStreamOutput = report.MaxEncodedSize + 64*1024
	// discardMemory is how long a discarded member is remembered: far longer than the
	// cache takes to show its deletion.
	discardMemory = 10 * time.Minute
)

// deliveries holds the warm runs in flight (a nil *deliveries holds none): one attach stream per run, owned by a
// goroutine, so that no reconcile ever blocks on a program. A finished stream wakes its
// CodeRun through events, and the next reconcile writes the result in the one status path.
type deliveries struct {
	attacher Attacher
	clock    clock.PassiveClock
	events   chan event.GenericEvent
	// base bounds every stream: the manager's context once it runs, so that no stream
	// outlives the operator's leadership.
	base context.Context

	mu       sync.Mutex
	sessions map[types.NamespacedName]*session
	// discarded are members given up after a failed delivery, with when: the cache may
	// show them as claimed for a while after they were deleted. Entries older than
	// discardMemory are dropped, so that the map stays small however many runs pass.
	discarded map[types.NamespacedName]time.Time
	// held are streams opened ahead to idle members (held.go).
	held map[types.NamespacedName]*heldStream
}

func newDeliveries(a Attacher, c clock.PassiveClock) *deliveries {
	return &deliveries{
		attacher:  a,
		clock:     c,
		events:    make(chan event.GenericEvent, 1024),
		base:      context.Background(),
		sessions:  map[types.NamespacedName]*session{},
		discarded: map[types.NamespacedName]time.Time{},
		held:      map[types.NamespacedName]*heldStream{},
	}
}

// session is one delivery of a program to a member, and what came back.
type session struct {
	runUID types.UID
	member types.NamespacedName // the member's Job
	pod    string
	pool   string
	// claimed is when the run took the member.
	claimed time.Time
	// recovered: the delivery was made again after the operator lost the first one (a
	// restart). The runner takes one request only, so it cannot run the program twice; a
	// failed recovery never sends the run elsewhere.
	recovered bool

	mu   sync.Mutex
	done bool
	// ended is when the stream ended (or the report arrived).
	ended time.Time
	// sent is when the whole request was handed to the stream (zero: not all of it was).
	sent   time.Time
	report *report.Report
	err    error
}

// state returns what the session knows, under its lock.
func (s *session) state() (done bool, sent time.Time, rep *report.Report, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done, s.sent, s.report, s.err
}

// run bounds the streams by ctx until it ends (a manager Runnable).
func (d *deliveries) run(ctx context.Context) error {
	d.mu.Lock()
	d.base = ctx
	d.mu.Unlock()
	<-ctx.Done()
	return nil
}

// get returns the session of run (of this UID: a CodeRun deleted and created again under
// its name is another run).
func (d *deliveries) get(run *execv1alpha1.CodeRun) *session {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.sessions[client.ObjectKeyFromObject(run)]; s != nil && s.runUID == run.UID {
		return s
	}
	return nil
}

// forget drops the session of a run that is finished or gone.
func (d *deliveries) forget(run types.NamespacedName) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sessions, run)
}

// discard drops run's session and remembers that its member must not be used again.
func (d *deliveries) discard(run types.NamespacedName, member types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sessions, run)
	now := d.clock.Now()
	for m, at := range d.discarded {
		if now.Sub(at) > discardMemory {
			delete(d.discarded, m)
		}
	}
	d.discarded[member] = now
}

func (d *deliveries) isDiscarded(member types.NamespacedName) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.discarded[member]
	return ok
}

// inUse reports whether a session of this process holds member (the cache may not show
// the claim yet).
func (d *deliveries) inUse(member types.NamespacedName) bool {
	if d == nil {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.inUseLocked(member)
}

// inUseLocked is inUse with d.mu held.
func (d *deliveries) inUseLocked(member types.NamespacedName) bool {
	if _, ok := d.discarded[member]; ok {
		return true
	}
	for _, s := range d.sessions {
		if s.member == member {
			return true
		}
	}
	return false
}

// start delivers req to the member's pod in a goroutine and records the session.
func (d *deliveries) start(run *execv1alpha1.CodeRun, s *session, req delivery.Request) {
	s.runUID = run.UID
	d.mu.Lock()
	d.sessions[client.ObjectKeyFromObject(run)] = s
	d.mu.Unlock()
	wake := run.DeepCopy()
	go func() {
		if h := d.take(s.member); h != nil && h.pod == s.pod {
			rep, err := d.deliverHeld(s, req, h)
			s.mu.Lock()
			s.done, s.report, s.err, s.ended = true, rep, err, d.clock.Now()
			s.mu.Unlock()
		} else {
			if h != nil {
				h.cancel()
			}
			d.deliver(s, req)
		}
		d.events <- event.GenericEvent{Object: wake}
	}()
}

// deliver sends the request over one attach stream and reads the runner's report back.
func (d *deliveries) deliver(s *session, req delivery.Request) {
	frame, err := delivery.Encode(req)
	if err != nil {
		s.mu.Lock()
		s.done, s.err = true, err
		s.mu.Unlock()
		return
	}
	in := &sentReader{data: frame, onEnd: func() {
		s.mu.Lock()
		s.sent = d.clock.Now()
		s.mu.Unlock()
	}}
	d.mu.Lock()
	base := d.base
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(base, time.Duration(req.TimeoutSeconds)*time.Second+deliveryMargin)
	defer cancel()
	// The report is the runner's last word: once a line of it arrives, the stream has
	// nothing more to say, and waiting for the container to exit would only add the
	// runtime's teardown to every answer.
	stdout := &boundedBuffer{limit: maxStreamOutput, onReport: cancel}
	err = d.attacher.Attach(ctx, s.member.Namespace, s.pod, containerName, in, stdout, io.Discard)
	var rep *report.Report
	if found, ferr := report.FindInLog(stdout.Bytes()); ferr == nil {
		rep = &found
		err = nil // the report is all the stream was for; a close after it does not matter
	} else if err == nil {
		err = fmt.Errorf("the stream ended without a report: %w", ferr)
	}
	s.mu.Lock()
	s.done, s.report, s.err, s.ended = true, rep, err, d.clock.Now()
	s.mu.Unlock()
}

// sentReader hands data to the stream and notes when all of it was taken: as soon as
// the last byte is handed out, since the stream may deliver it and fail before it reads
// again (a reader of exactly one frame never asks for the EOF).
type sentReader struct {
	data  []byte
	off   int
	onEnd func()
	ended bool
}

func (r *sentReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		r.end()
		return 0, io.EOF
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	if r.off >= len(r.data) {
		r.end()
	}
	return n, nil
}

func (r *sentReader) end() {
	if !r.ended {
		r.ended = true
		r.onEnd()
	}
}

// boundedBuffer keeps the first limit bytes written to it and drops the rest. It calls
// onReport (if set) once a complete line of it holds a valid report.
type boundedBuffer struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	limit    int
	onReport func()
	scanned  int // bytes of buf already checked for whole lines
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	if b.onReport == nil {
		return len(p), nil
	}
	for {
		data := b.buf.Bytes()
		end := bytes.IndexByte(data[b.scanned:], '\n')
		if end < 0 {
			return len(p), nil
		}
		line := data[b.scanned : b.scanned+end]
		b.scanned += end + 1
		if _, err := report.Parse(line); err == nil {
			b.onReport()
			b.onReport = nil
			return len(p), nil
		}
	}
}

func (b *boundedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.buf.Bytes())
}

// fitsPool reports whether a run with limits (complete) that runs under plan can run in
// the members of pool, whose members run poolPlan: the same Runtime (both the built-in
// python, or one Runtime object by name) and a shape that holds the run. The built-in
// python's members take the program alone (the legacy request), not other files.
func fitsPool(pool *execv1alpha1.CodeRunPool, poolPlan, plan *runPlan, run *execv1alpha1.CodeRun, limits execv1alpha1.Limits, shape execv1alpha1.Limits) bool {
	return pool.DeletionTimestamp.IsZero() && poolPlan != nil && poolPlan.runtimeName() == plan.runtimeName() &&
		(!plan.builtin() || len(run.Spec.Files) == 0) &&
		limits.CPU.Cmp(*shape.CPU) == 0 &&
		limits.Memory.Cmp(*shape.Memory) <= 0 &&
		*limits.TimeoutSeconds <= *shape.TimeoutSeconds
}

// claimedMember is a member this run claimed, as the cache shows it, or nil.
type claimedMember struct {
	job  *batchv1.Job
	pod  *corev1.Pod
	pool string
}

// claim takes one ready, idle member of a pool that fits the run, with one write guarded
// by the member's resourceVersion: when two runs race for a member, one write fails and
// that run tries the next member. It returns nil and the outcome for the metric when no
// member could be taken.
func (r *CodeRunReconciler) claim(ctx context.Context, run *execv1alpha1.CodeRun, limits execv1alpha1.Limits, plan *runPlan) (*claimedMember, string, error) {
	pools := &execv1alpha1.CodeRunPoolList{}
	if err := r.List(ctx, pools, client.InNamespace(run.Namespace)); err != nil {
		return nil, "", fmt.Errorf("listing CodeRunPools: %w", err)
	}
	if len(pools.Items) == 0 {
		return nil, claimShape, nil
	}
	list, err := listRuntimes(ctx, r.Client)
	if err != nil {
		return nil, "", err
	}
	var fitting []*execv1alpha1.CodeRunPool
	poolPlans := map[string]*runPlan{}
	for i := range pools.Items {
		p := &pools.Items[i]
		shape := poolShape(p, r.Config)
		poolPlan, _ := planPool(list, p, r.Config)
		if config.Exceeds(shape, r.Config.MaxLimits) == "" && fitsPool(p, poolPlan, plan, run, limits, shape) {
			fitting = append(fitting, p)
			poolPlans[p.Name] = poolPlan
		}
	}
	if len(fitting) == 0 {
		return nil, claimShape, nil
	}
	// The smallest fitting shape first, so that small runs leave the big members to the
	// runs that need them.
	slices.SortStableFunc(fitting, func(a, b *execv1alpha1.CodeRunPool) int {
		return poolShape(a, r.Config).Memory.Cmp(*poolShape(b, r.Config).Memory)
	})
	for _, pool := range fitting {
		m, err := r.claimFrom(ctx, run, pool, poolPlans[pool.Name])
		if m != nil || err != nil {
			return m, claimWarm, err
		}
	}
	return nil, claimNoMember, nil
}

// claimFrom tries pool's ready members, oldest first.
func (r *CodeRunReconciler) claimFrom(ctx context.Context, run *execv1alpha1.CodeRun, pool *execv1alpha1.CodeRunPool, poolPlan *runPlan) (*claimedMember, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(pool.Namespace), client.MatchingLabels{execv1alpha1.LabelPool: pool.Name}); err != nil {
		return nil, fmt.Errorf("listing the members of pool %s: %w", pool.Name, err)
	}
	candidates := make([]*corev1.Pod, 0, len(pods.Items))
	for i := range pods.Items {
		if podRunning(&pods.Items[i]) && jobOfPod(&pods.Items[i]) != "" {
			candidates = append(candidates, &pods.Items[i])
		}
	}
	// Members with a stream held open first (they answer soonest), then the oldest.
	held := func(p *corev1.Pod) bool {
		return r.deliveries.isHeld(types.NamespacedName{Namespace: p.Namespace, Name: jobOfPod(p)})
	}
	slices.SortStableFunc(candidates, func(a, b *corev1.Pod) int {
		if ha, hb := held(a), held(b); ha != hb {
			if ha {
				return -1
			}
			return 1
		}
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	cfg, err := r.userns.apply(ctx, r.Config)
	if err != nil {
		return nil, err
	}
	digest := memberSpecDigest(pool, poolPlan, cfg)
	for _, pod := range candidates {
		key := types.NamespacedName{Namespace: pool.Namespace, Name: jobOfPod(pod)}
		if r.deliveries.inUse(key) {
			continue
		}
		job := &batchv1.Job{}
		if err := r.Get(ctx, key, job); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("getting member %s: %w", key.Name, err)
		}
		if job.Annotations[annotationMemberSpec] != digest {
			// Built for an older shape or operator configuration (an operator that just
			// started after an upgrade, before its pool controller replaced the member).
			continue
		}
		claimed, err := r.claimJob(ctx, run, job)
		if err != nil {
			return nil, err
		}
		if !claimed {
			continue
		}
		return &claimedMember{job: job, pod: pod, pool: pool.Name}, nil
	}
	return nil, nil
}

// claimJob writes the claim onto an idle member, guarded by its resourceVersion. When the
// write loses because the cache was behind (the Job controller updated the Job's status,
// say), it reads the member from the API server and tries once more if it is still idle;
// when another run took it, it reports false.
func (r *CodeRunReconciler) claimJob(ctx context.Context, run *execv1alpha1.CodeRun, job *batchv1.Job) (bool, error) {
	for attempt := 0; ; attempt++ {
		if job.Labels[execv1alpha1.LabelMember] != execv1alpha1.MemberIdle || jobFinished(job) || !job.DeletionTimestamp.IsZero() {
			return false, nil
		}
		base := job.DeepCopy()
		job.Labels[execv1alpha1.LabelMember] = execv1alpha1.MemberClaimed
		job.Labels[execv1alpha1.LabelRunUID] = string(run.UID)
		if job.Annotations == nil {
			job.Annotations = map[string]string{}
		}
		job.Annotations[execv1alpha1.AnnotationRun] = run.Name
		// The member now belongs to the run: deleting the CodeRun deletes it.
		job.OwnerReferences = nil
		if err := ctrl.SetControllerReference(run, job, r.Scheme); err != nil {
			return false, fmt.Errorf("owning member %s: %w", job.Name, err)
		}
		err := r.Patch(ctx, job, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			return true, nil
		case apierrors.IsNotFound(err):
			return false, nil
		case !apierrors.IsConflict(err):
			return false, fmt.Errorf("claiming member %s: %w", job.Name, err)
		case attempt > 0:
			return false, nil
		}
		*job = batchv1.Job{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(base), job); err != nil {
			return false, client.IgnoreNotFound(err)
		}
	}
}

// startWarm tries to run an admitted run in a pool member. It reports whether it did;
// when not, the run takes the cold path.
func (r *CodeRunReconciler) startWarm(ctx context.Context, u *statusUpdate, limits execv1alpha1.Limits, plan *runPlan) (bool, error) {
	run := u.run
	m, outcome, err := r.claim(ctx, run, limits, plan)
	if err != nil {
		return false, err
	}
	poolClaims.WithLabelValues(outcome).Inc()
	if m == nil {
		return false, nil
	}
	key := client.ObjectKeyFromObject(m.job)
	r.queue.claimMember(client.ObjectKeyFromObject(run), key, memberUID(m.job))
	logf.FromContext(ctx).V(1).Info("claimed pool member", "pool", m.pool, "job", m.job.Name, "pod", m.pod.Name)
	r.deliveries.start(run, &session{member: key, pod: m.pod.Name, pool: m.pool, claimed: r.Clock.Now()}, requestFor(run, plan, limits))
	return true, nil
}

// requestFor is the request that delivers run to a member running plan's Runtime. With
// the built-in python it is the program alone, as before Runtimes; with a Runtime, the
// program goes among files under the Runtime's sourceFile, with the args and the compile
// limits (the member's runner has the Runtime's commands in its own flags).
func requestFor(run *execv1alpha1.CodeRun, plan *runPlan, limits execv1alpha1.Limits) delivery.Request {
	req := delivery.Request{
		Source:         run.Spec.Source,
		Stdin:          run.Spec.Stdin,
		TimeoutSeconds: *limits.TimeoutSeconds,
		MemoryBytes:    limits.Memory.Value(),
		Run:            client.ObjectKeyFromObject(run).String(),
	}
	if plan.builtin() {
		return req // fitsPool keeps runs with files off the built-in python's members
	}
	req.Source = ""
	req.Files = append(req.Files, delivery.File{Name: plan.sourceFile, Content: run.Spec.Source})
	for _, f := range run.Spec.Files {
		req.Files = append(req.Files, delivery.File{Name: f.Name, Content: f.Content})
	}
	req.Args = run.Spec.Args
	if c := plan.compile; c != nil {
		req.CompileTimeoutSeconds = c.timeoutSeconds
		req.CompileMemoryBytes = c.memory.Value()
	}
	return req
}

// reconcileWarm moves a run that took a member along. It reports whether the run is on
// the warm path; when not (no member, or a delivery that provably never sent the
// program), the caller goes on with the cold path.
func (r *CodeRunReconciler) reconcileWarm(ctx context.Context, u *statusUpdate, limits execv1alpha1.Limits) (bool, ctrl.Result, error) {
	run := u.run
	s := r.deliveries.get(run)
	if s == nil {
		m, err := r.ownMember(ctx, run)
		if err != nil || m == nil {
			return false, ctrl.Result{}, err
		}
		if !podRunning(m.pod) {
			return r.observeMember(ctx, u, m.job, limits)
		}
		// The operator restarted after the claim. Deliver again: the runner reads one
		// request only, so if the first delivery reached it this one is ignored and the
		// result arrives on this stream or from the pod.
		plan, err := r.planRun(ctx, run)
		if rej := (*errRejected)(nil); errors.As(err, &rej) {
			u.finish(systemError("the run's Runtime changed while it ran in member %s: %s", m.job.Name, rej.message))
			return true, ctrl.Result{}, nil
		} else if err != nil {
			return true, ctrl.Result{}, err
		}
		s = &session{member: client.ObjectKeyFromObject(m.job), pod: m.pod.Name, pool: m.pool, claimed: r.Clock.Now(), recovered: true}
		r.deliveries.start(run, s, requestFor(run, plan, limits))
		return true, ctrl.Result{}, nil
	}
	done, sent, rep, streamErr := s.state()
	if !done {
		// A run that lasts shows Running after a second; quick ones write one status only.
		if wait := s.claimed.Add(runningStatusWait).Sub(r.Clock.Now()); wait > 0 {
			return true, ctrl.Result{RequeueAfter: wait}, nil
		}
		warmStatus(u, s, sent)
		markRunning(u, s)
		return true, ctrl.Result{}, nil
	}
	warmStatus(u, s, sent)
	switch {
	case rep != nil && !rep.NotRun:
		claimLatency.Observe(r.Clock.Since(s.claimed).Seconds())
		s.mu.Lock()
		ended := s.ended
		s.mu.Unlock()
		// Where a warm run's time went, for tuning: claim to request sent (attach), sent
		// to report (the runner and the program), report to this reconcile (the wake-up).
		logf.FromContext(ctx).V(1).Info("warm run reported", "pool", s.pool, "job", s.member.Name,
			"attachMs", sent.Sub(s.claimed).Milliseconds(), "runMs", ended.Sub(sent).Milliseconds(),
			"wakeMs", r.Clock.Since(ended).Milliseconds())
		u.finish(resultFromReport(*rep, false, limits))
		return true, ctrl.Result{}, nil
	case rep != nil || (sent.IsZero() && !s.recovered):
		// The program provably never started: the runner said so, or the stream failed
		// before the whole request was handed over. Give the member up; the run goes on
		// with another member or the cold path.
		why := "the runner did not run it"
		if rep == nil {
			why = streamErr.Error()
		}
		return false, ctrl.Result{}, r.retryElsewhere(ctx, run, s, why)
	}
	// The stream broke after the request went out: the pod tells how the run ended.
	logf.FromContext(ctx).Info("attach stream ended without a report; reading the result from the pod", "pod", s.pod, "error", streamErr)
	job := &batchv1.Job{}
	if err := r.Get(ctx, s.member, job); err != nil {
		if apierrors.IsNotFound(err) {
			u.finish(systemError("the run's member Job %s was deleted before the program finished", s.member.Name))
			return true, ctrl.Result{}, nil
		}
		return true, ctrl.Result{}, fmt.Errorf("getting member %s: %w", s.member.Name, err)
	}
	onWarm, res, err := r.observeMember(ctx, u, job, limits)
	if !onWarm || err != nil || finished(u.run) {
		return onWarm, res, err
	}
	// The pod has not ended. A runner that got the program ends it at its time limit and
	// its pod right after, so a member still running well past that never got it: the
	// attach failed as the node's container runtime restarted, say, and its runner still
	// waits for a request, until its idle timeout minutes later. End the run then, not
	// minutes later.
	from := sent
	if from.IsZero() {
		from = s.claimed
	}
	stuck := from.Add(time.Duration(*limits.TimeoutSeconds)*time.Second + memberStuckMargin)
	if wait := stuck.Sub(r.Clock.Now()); wait > 0 {
		if res.RequeueAfter == 0 || wait < res.RequeueAfter {
			res.RequeueAfter = wait
		}
		return true, res, nil
	}
	u.finish(systemError("the pool member %s (pod %s) never answered over attach (%v) and was still running %s past the run's time limit; "+
		"the node's container runtime may have restarted", s.member.Name, s.pod, streamErr, memberStuckMargin))
	err = r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return true, ctrl.Result{}, fmt.Errorf("deleting member %s that never answered: %w", s.member.Name, err)
	}
	return true, ctrl.Result{}, nil
}

// observeMember reads the result of a warm run from its member's pod, as the cold path
// does, unless the runner reported that it never ran the program.
func (r *CodeRunReconciler) observeMember(ctx context.Context, u *statusUpdate, job *batchv1.Job, limits execv1alpha1.Limits) (bool, ctrl.Result, error) {
	pod, err := r.memberPod(ctx, job)
	if err != nil {
		return true, ctrl.Result{}, err
	}
	if cs := runContainerStatus(pod); cs != nil && cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
		if rep, fallback := reportFromTermination(cs.State.Terminated, limits); fallback == nil && rep.NotRun {
			s := &session{member: client.ObjectKeyFromObject(job), pod: pod.Name}
			return false, ctrl.Result{}, r.retryElsewhere(ctx, u.run, s, rep.Message)
		}
	}
	res, err := r.observeJob(ctx, u, job, limits)
	return true, res, err
}

// retryElsewhere gives up a member whose delivery never started the program.
func (r *CodeRunReconciler) retryElsewhere(ctx context.Context, run *execv1alpha1.CodeRun, s *session, why string) error {
	logf.FromContext(ctx).Info("the program never reached the member; trying again elsewhere", "job", s.member.Name, "why", why)
	poolClaims.WithLabelValues(claimRetried).Inc()
	// The run starts over: the cold path takes a set jobName for its own Job, deleted.
	st := &run.Status
	st.Path, st.Pool, st.JobName, st.PodName, st.StartTime = "", "", "", "", nil
	r.deliveries.discard(client.ObjectKeyFromObject(run), s.member)
	r.queue.renewUID(client.ObjectKeyFromObject(run), preferredUID(run, r.Config), r.Config.RunUIDMin, r.Config.RunUIDCount)
	err := r.Delete(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: s.member.Namespace, Name: s.member.Name}},
		client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting member %s: %w", s.member.Name, err)
	}
	return nil
}

// ownMember finds a member that this run claimed earlier (before a restart), skipping
// members given up.
func (r *CodeRunReconciler) ownMember(ctx context.Context, run *execv1alpha1.CodeRun) (*claimedMember, error) {
	jobs := &batchv1.JobList{}
	if err := r.List(ctx, jobs, client.InNamespace(run.Namespace), client.MatchingFields{indexRunUID: string(run.UID)}); err != nil {
		return nil, fmt.Errorf("listing the run's Jobs: %w", err)
	}
	for i := range jobs.Items {
		job := &jobs.Items[i]
		if !isMember(job) || !metav1.IsControlledBy(job, run) || r.deliveries.isDiscarded(client.ObjectKeyFromObject(job)) {
			continue
		}
		pod, err := r.memberPod(ctx, job)
		if err != nil {
			return nil, err
		}
		return &claimedMember{job: job, pod: pod, pool: job.Labels[execv1alpha1.LabelPool]}, nil
	}
	return nil, nil
}

// memberPod is the pod of a member Job, or nil.
func (r *CodeRunReconciler) memberPod(ctx context.Context, job *batchv1.Job) (*corev1.Pod, error) {
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.InNamespace(job.Namespace), client.MatchingLabels{execv1alpha1.LabelPool: job.Labels[execv1alpha1.LabelPool]}); err != nil {
		return nil, fmt.Errorf("listing the pods of member %s: %w", job.Name, err)
	}
	for i := range pods.Items {
		if jobOfPod(&pods.Items[i]) == job.Name {
			return &pods.Items[i], nil
		}
	}
	return nil, nil
}

// warmStatus fills in where a warm run runs.
func warmStatus(u *statusUpdate, s *session, sent time.Time) {
	st := &u.run.Status
	st.Path = execv1alpha1.PathWarm
	st.Pool = s.pool
	st.JobName = s.member.Name
	st.PodName = s.pod
	if !sent.IsZero() && st.StartTime == nil {
		st.StartTime = &metav1.Time{Time: sent}
	}
	u.setCondition(execv1alpha1.ConditionAdmitted, metav1.ConditionTrue, execv1alpha1.ReasonMemberClaimed,
		fmt.Sprintf("took member %s of pool %s", s.member.Name, s.pool))
}

// markRunning shows a warm run that lasts as Running.
func markRunning(u *statusUpdate, s *session) {
	if u.run.Status.Phase == execv1alpha1.PhaseRunning {
		return
	}
	u.run.Status.Phase = execv1alpha1.PhaseRunning
	u.setCondition(execv1alpha1.ConditionFinished, metav1.ConditionFalse, execv1alpha1.ReasonInProgress, "the program is running")
	u.event(corev1.EventTypeNormal, "Started", "Run", fmt.Sprintf("Program sent to member %s of pool %s", s.member.Name, s.pool))
}
