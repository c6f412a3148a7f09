package controllers

import (
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// withRunIndex gives a fake client the index the reconcilers find runs' Jobs and pods by,
// as setupIndexes gives the manager's cache.
func withRunIndex(b *fake.ClientBuilder) *fake.ClientBuilder {
	return b.WithIndex(&corev1.Pod{}, indexRunUID, runUIDIndex).WithIndex(&batchv1.Job{}, indexRunUID, runUIDIndex)
}

// The transforms keep what the operator reads (names, labels, owners, the run
// annotation, statuses, the uid in the template) and drop the program, its output and
// managed fields.
func TestTrimKeepsWhatTheOperatorReads(t *testing.T) {
	run := newRun("r", t0)
	run.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "front"}}
	job := buildJob(run, tableConfig().Effective(run.Spec.Limits), tableConfig(), 200001)
	job.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "operator"}}
	pod := &corev1.Pod{ObjectMeta: *job.Spec.Template.ObjectMeta.DeepCopy(), Spec: *job.Spec.Template.Spec.DeepCopy(),
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	pod.ManagedFields = job.ManagedFields

	trimmedJob, err := TrimJob(job)
	if err != nil {
		t.Fatal(err)
	}
	trimmedPod, err := TrimPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	job, pod = trimmedJob.(*batchv1.Job), trimmedPod.(*corev1.Pod)
	if job.Spec.Template.Spec.Containers != nil || pod.Spec.Containers != nil {
		t.Error("the Job's template and the pod keep their containers, which the operator never reads")
	}
	for what, m := range map[string]metav1.ObjectMeta{"job": job.ObjectMeta, "pod": pod.ObjectMeta} {
		if _, ok := m.Annotations[execv1alpha1.AnnotationSource]; ok {
			t.Errorf("%s keeps the program", what)
		}
		if m.Annotations[execv1alpha1.AnnotationRun] != "r" || m.Labels[execv1alpha1.LabelRunUID] != string(run.UID) {
			t.Errorf("%s lost its run: %v %v", what, m.Annotations, m.Labels)
		}
	}
	if job.ManagedFields != nil || pod.ManagedFields != nil {
		t.Error("managed fields kept")
	}
	if memberUID(job) != 200001 || pod.Status.Phase != corev1.PodRunning {
		t.Errorf("uid %d, phase %s: lost what the operator reads", memberUID(job), pod.Status.Phase)
	}

	running := run.DeepCopy()
	if _, err := TrimRun(running); err != nil {
		t.Fatal(err)
	}
	if running.Spec.Source != run.Spec.Source || running.ManagedFields != nil {
		t.Error("a run that has not finished must keep its program (its Job is built from it) and lose managed fields")
	}
	done := withStatus(run.DeepCopy(), runningStatus())
	done.Status.Result = &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompleted, Stdout: "hi\n", Output: "hi\n"}
	if _, err := TrimRun(done); err != nil {
		t.Fatal(err)
	}
	if done.Spec.Source != "" || done.Status.Result.Output != "" || done.Status.Result.Reason != execv1alpha1.ReasonCompleted ||
		!finished(done) || done.Status.JobName == "" {
		t.Errorf("finished run trimmed to %+v / %+v: want its result reason and Job, no program or output", done.Spec, done.Status)
	}
}

// A member given up after a failed delivery is never taken again while the cache may
// still show it, but it is not remembered for ever: at 10,000 runs a remembered name per
// retry would only grow.
func TestDiscardedMembersAreForgottenLater(t *testing.T) {
	clock := clocktesting.NewFakePassiveClock(t0)
	d := newDeliveries(nil, clock)
	first := types.NamespacedName{Namespace: ns, Name: "python-aaaaa"}
	d.discard(types.NamespacedName{Namespace: ns, Name: "r1"}, first)
	if !d.isDiscarded(first) || !d.inUse(first) {
		t.Fatal("a discarded member must not be used again")
	}
	clock.SetTime(t0.Add(discardMemory + time.Second))
	second := types.NamespacedName{Namespace: ns, Name: "python-bbbbb"}
	d.discard(types.NamespacedName{Namespace: ns, Name: "r2"}, second)
	if d.isDiscarded(first) || len(d.discarded) != 1 || !d.isDiscarded(second) {
		t.Errorf("after %s: discarded %v, want only %s", discardMemory, d.discarded, second.Name)
	}
}
