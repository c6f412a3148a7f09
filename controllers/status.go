package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/textcut"
)

// statusUpdate is the next status of one run and the events that announce it. A reconcile
// computes it without writing anything; writeStatus then writes it in one patch and emits
// its events only once the write succeeded, so that no event tells of a change that was
// not recorded (a lost write is computed, and announced, again on the retry).
type statusUpdate struct {
	base   *execv1alpha1.CodeRun // the run as read
	run    *execv1alpha1.CodeRun // the run with its next status
	now    metav1.Time           // of this reconcile, for transition and completion times
	events []pendingEvent
}

// pendingEvent is an event to emit once the status write that it describes succeeded.
type pendingEvent struct {
	eventType, reason, action, note string
}

func newStatusUpdate(run *execv1alpha1.CodeRun, now metav1.Time) *statusUpdate {
	return &statusUpdate{base: run, run: run.DeepCopy(), now: now}
}

// event queues an event about the run.
func (u *statusUpdate) event(eventType, reason, action, note string) {
	u.events = append(u.events, pendingEvent{eventType, reason, action, note})
}

// setCondition sets a condition of the run for its current generation. The message is
// cut to the API's limit: a longer one would make the status write fail on every retry.
func (u *statusUpdate) setCondition(t execv1alpha1.ConditionType, status metav1.ConditionStatus, reason execv1alpha1.ConditionReason, message string) {
	meta.SetStatusCondition(&u.run.Status.Conditions, metav1.Condition{
		Type: t.String(), Status: status, Reason: reason.String(),
		Message:            textcut.Prefix(message, textcut.MaxConditionMessage),
		ObservedGeneration: u.run.Generation,
		LastTransitionTime: u.now,
	})
}

// finish records res as the run's result: phase, result, Finished condition (and Admitted,
// for a run that was rejected) and the event that says how the run ended.
func (u *statusUpdate) finish(res *execv1alpha1.CodeRunResult) {
	fitResult(res, resultBudget)
	s := &u.run.Status
	s.Result = res
	s.CompletionTime = u.now.DeepCopy()
	eventType := corev1.EventTypeNormal
	s.Phase = execv1alpha1.PhaseSucceeded
	if res.Reason != execv1alpha1.ReasonCompleted {
		s.Phase = execv1alpha1.PhaseFailed
		eventType = corev1.EventTypeWarning
	}
	summary := string(res.Reason)
	if res.ExitCode != nil {
		summary += fmt.Sprintf(", exit code %d", *res.ExitCode)
	}
	if res.Message != "" {
		summary += ": " + res.Message
	}
	if res.Reason == execv1alpha1.ReasonRejected {
		u.setCondition(execv1alpha1.ConditionAdmitted, metav1.ConditionFalse, res.Reason.ConditionReason(), res.Message)
	}
	u.setCondition(execv1alpha1.ConditionFinished, metav1.ConditionTrue, res.Reason.ConditionReason(), summary)
	u.event(eventType, string(res.Reason), "Finish", summary)
}

// finishes reports whether this update gives the run its result.
func (u *statusUpdate) finishes() bool {
	return finished(u.run) && !finished(u.base)
}

// writeStatus patches the run's status when it changed, then emits the update's events.
// It reports retry when the status changed meanwhile: the optimistic lock makes a write
// computed from a stale cache fail instead of overwriting a newer status (a recorded
// result above all), and the retry reads anew.
func (r *CodeRunReconciler) writeStatus(ctx context.Context, u *statusUpdate) (retry bool, err error) {
	if !equality.Semantic.DeepEqual(u.base.Status, u.run.Status) {
		err := r.Status().Patch(ctx, u.run, client.MergeFromWithOptions(u.base, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) {
			logf.FromContext(ctx).V(1).Info("status changed meanwhile; retrying")
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("writing CodeRun status: %w", err)
		}
	}
	for _, e := range u.events {
		// The API server refuses a longer note, and the event would be lost.
		r.Recorder.Eventf(u.run, nil, e.eventType, e.reason, e.action, "%s", textcut.Shorten(e.note, textcut.MaxEventNote))
	}
	return false, nil
}
