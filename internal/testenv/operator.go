package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// Behaviour tells the fake operator what to do with a new CodeRun: finish it with Result
// after Delay, or, when Result is nil, leave it running (Admitted, no result) for ever.
type Behaviour struct {
	Result *execv1alpha1.CodeRunResult
	Delay  time.Duration
}

// Operator plays the coderun operator in one namespace: it watches CodeRuns and writes the
// status the operator would, through the status subresource. envtest runs no controllers.
type Operator struct {
	mu   sync.Mutex
	seen []string
}

// Seen returns the names of the CodeRuns the operator saw created, in order.
func (o *Operator) Seen() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen...)
}

// RunOperator plays the operator in namespace until the test ends. decide chooses what
// each new CodeRun does.
func RunOperator(t testing.TB, namespace string, decide func(*execv1alpha1.CodeRun) Behaviour) *Operator {
	t.Helper()
	_, c := Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := c.Watch(ctx, &execv1alpha1.CodeRunList{}, client.InNamespace(namespace))
	if err != nil {
		cancel()
		t.Fatalf("watching CodeRuns: %v", err)
	}
	op := &Operator{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range w.ResultChan() {
			run, ok := ev.Object.(*execv1alpha1.CodeRun)
			if !ok || ev.Type != watch.Added {
				continue
			}
			op.mu.Lock()
			op.seen = append(op.seen, run.Name)
			op.mu.Unlock()
			b := decide(run)
			wg.Go(func() { op.play(ctx, t, c, run, b) })
		}
	})
	t.Cleanup(func() {
		cancel()
		w.Stop()
		wg.Wait()
	})
	return op
}

func (o *Operator) play(ctx context.Context, t testing.TB, c client.Client, run *execv1alpha1.CodeRun, b Behaviour) {
	now := metav1.Now()
	if err := writeStatus(ctx, c, run, func(s *execv1alpha1.CodeRunStatus) {
		s.Phase = execv1alpha1.PhaseRunning
		s.JobName = run.Name
		s.StartTime = &now
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{
			Type: execv1alpha1.ConditionAdmitted.String(), Status: metav1.ConditionTrue,
			Reason: execv1alpha1.ReasonSlotAssigned.String(), ObservedGeneration: run.Generation,
		})
	}); err != nil {
		if ctx.Err() == nil {
			t.Logf("fake operator: admitting %s: %v", run.Name, err)
		}
		return
	}
	if b.Result == nil {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(b.Delay):
	}
	if err := writeStatus(ctx, c, run, func(s *execv1alpha1.CodeRunStatus) {
		done := metav1.Now()
		s.CompletionTime = &done
		s.Result = b.Result.DeepCopy()
		s.Phase = execv1alpha1.PhaseFailed
		if b.Result.Reason == execv1alpha1.ReasonCompleted {
			s.Phase = execv1alpha1.PhaseSucceeded
		}
		meta.SetStatusCondition(&s.Conditions, metav1.Condition{
			Type: execv1alpha1.ConditionFinished.String(), Status: metav1.ConditionTrue,
			Reason: string(b.Result.Reason), ObservedGeneration: run.Generation,
		})
	}); err != nil && ctx.Err() == nil {
		t.Logf("fake operator: finishing %s: %v", run.Name, err) // deleted meanwhile, say
	}
}

func writeStatus(ctx context.Context, c client.Client, run *execv1alpha1.CodeRun, mutate func(*execv1alpha1.CodeRunStatus)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &execv1alpha1.CodeRun{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(run), cur); err != nil {
			return err
		}
		mutate(&cur.Status)
		return c.Status().Update(ctx, cur)
	})
}

// Completed is the result of a program that printed stdout and exited 0.
func Completed(stdout string) *execv1alpha1.CodeRunResult {
	return &execv1alpha1.CodeRunResult{
		Reason: execv1alpha1.ReasonCompleted, ExitCode: ptr.To[int32](0),
		Output: stdout, Stdout: stdout,
		WallTime:   &metav1.Duration{Duration: 39 * time.Millisecond},
		CPUTime:    &metav1.Duration{Duration: 16 * time.Millisecond},
		PeakMemory: ptr.To(resource.MustParse("8240Ki")),
	}
}

// Failed is the result of a program that ended with reason and exit code (nil: never ran).
func Failed(reason execv1alpha1.ResultReason, exitCode *int32, stderr, message string) *execv1alpha1.CodeRunResult {
	r := &execv1alpha1.CodeRunResult{
		Reason: reason, ExitCode: exitCode, Message: message,
		Output: stderr, Stderr: stderr,
	}
	if exitCode != nil {
		r.WallTime = &metav1.Duration{Duration: 41 * time.Millisecond}
		r.CPUTime = &metav1.Duration{Duration: 20 * time.Millisecond}
		r.PeakMemory = ptr.To(resource.MustParse("9000Ki"))
	}
	return r
}
