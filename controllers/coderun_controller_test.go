package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/report"
)

func helloReport() report.Report {
	return report.Report{
		Reason: report.Completed, ExitCode: 0,
		Stdout: "Hello, World!\n", Output: "Hello, World!\n",
		WallTimeMicros: 21500, CPUTimeMicros: 18000, PeakMemoryBytes: 9 << 20,
	}
}

// TestJobIsLockedDown checks every security-relevant field of the Job a run gets, and that
// a namespace enforcing the restricted Pod Security Standard admits its pod.
func TestJobIsLockedDown(t *testing.T) {
	op := startOperator(t, testConfig())
	run := op.newRun("hello", "print('Hello, World!')")
	run.Spec.Stdin = "some input\n"
	op.create(t, run)
	job := waitForJob(t, run)
	run = getRun(t, run)

	if !metav1.IsControlledBy(job, run) {
		t.Errorf("Job is not controlled by the CodeRun: %+v", job.OwnerReferences)
	}
	assertLockedDown(t, job.Spec)
	js := job.Spec
	// 60 s start timeout + 10 s default run timeout + 30 s slack.
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds != 100 {
		t.Errorf("activeDeadlineSeconds = %v, want 100", js.ActiveDeadlineSeconds)
	}
	pod := js.Template.Spec
	c := pod.Containers[0]
	for name, ok := range map[string]bool{
		"input from the downward API":            pod.Volumes[0].DownwardAPI != nil,
		"input mounted read-only":                c.VolumeMounts[0].ReadOnly,
		"source and stdin travel as annotations": js.Template.Annotations[execv1alpha1.AnnotationSource] == run.Spec.Source && js.Template.Annotations[execv1alpha1.AnnotationStdin] == "some input\n",
		"no stdin":                               !c.Stdin && !c.StdinOnce,
	} {
		if !ok {
			t.Errorf("lockdown check failed: %s", name)
		}
	}
	// Guaranteed QoS: the CPU request equals the limit too.
	if lim, req := c.Resources.Limits[corev1.ResourceCPU], c.Resources.Requests[corev1.ResourceCPU]; req.Cmp(lim) != 0 {
		t.Errorf("cpu: request %s, want the limit %s", req.String(), lim.String())
	}

	// The restricted namespace admits the Job's pod...
	startPod(t, job)
	// ...and rejects a pod that is not locked down, so the check above means something.
	plain := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: op.namespace},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "localhost/coderun-python:0.1.0"}}},
	}
	if err := k8sClient.Create(context.Background(), plain); err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("the restricted namespace admitted a plain pod (err %v)", err)
	}

	got := getRun(t, run)
	if got.Status.Phase != execv1alpha1.PhaseRunning || got.Status.JobName != job.Name {
		t.Errorf("phase %q jobName %q, want Running and %s", got.Status.Phase, got.Status.JobName, job.Name)
	}
	if l := got.Status.Limits; l == nil || *l.TimeoutSeconds != 10 || l.Memory.String() != "256Mi" || l.CPU.String() != "1" {
		t.Errorf("status.limits = %+v, want the defaults 10s/256Mi/1", l)
	}
	admitted := findCondition(got, execv1alpha1.ConditionAdmitted)
	if admitted == nil || admitted.Status != metav1.ConditionTrue || admitted.ObservedGeneration != got.Generation {
		t.Errorf("Admitted condition = %+v, want True for generation %d", admitted, got.Generation)
	}
}

// TestOperatorRestart stops the operator while two runs hold both slots and a third waits,
// and starts a new one: it must count the running runs (and not start the third), and
// carry every run to its result.
func TestOperatorRestart(t *testing.T) {
	namespace := newRunsNamespace(t)
	first, stopFirst := runOperator(t, testConfig(), namespace) // 2 slots
	defer stopFirst()
	runs := []*execv1alpha1.CodeRun{
		first.create(t, first.newRun("restart-a", "print(1)")),
		first.create(t, first.newRun("restart-b", "print(2)")),
		first.create(t, first.newRun("restart-c", "print(3)")),
	}
	jobA, jobB := waitForJob(t, runs[0]), waitForJob(t, runs[1])
	eventually(t, 10*time.Second, "the third run to be Queued", func() (bool, error) {
		return getRun(t, runs[2]).Status.Phase == execv1alpha1.PhaseQueued, nil
	})

	// Replace the operator, as a rolled Deployment or a new leader would. Reconciling the
	// third run reads the Jobs that exist from the new operator's synced cache, so once
	// that reconcile returns, the new operator has decided about it.
	stopFirst()
	second, stopSecond := runOperator(t, testConfig(), namespace)
	defer stopSecond()
	if _, err := second.reconciler.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(runs[2])}); err != nil {
		t.Fatalf("reconciling %s: %v", runs[2].Name, err)
	}
	jobs := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), jobs, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 2 {
		t.Fatalf("%d Jobs after the restart, want the 2 of the runs that hold both slots", len(jobs.Items))
	}
	if got := getRun(t, runs[2]); got.Status.Phase != execv1alpha1.PhaseQueued {
		t.Fatalf("%s is %s after the restart, want Queued: the new operator did not count the running runs", runs[2].Name, got.Status.Phase)
	}

	setContainerState(t, startPod(t, jobA), terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))))
	waitForResult(t, runs[0])
	jobC := waitForJob(t, runs[2])
	for _, job := range []*batchv1.Job{jobB, jobC} {
		setContainerState(t, startPod(t, job), terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))))
	}
	for _, run := range runs[1:] {
		if got := waitForResult(t, run); got.Status.Phase != execv1alpha1.PhaseSucceeded {
			t.Errorf("%s ended %s after the restart, want Succeeded", run.Name, got.Status.Phase)
		}
	}
}

// TestRepeatedReconcilesAreIdempotent reconciles one run many times at once, as watch
// storms and resyncs do, and expects one Job, no errors and no status churn.
func TestRepeatedReconcilesAreIdempotent(t *testing.T) {
	op := startOperator(t, testConfig())
	run := op.create(t, op.newRun("idempotent", "print(1)"))
	job := waitForJob(t, run)
	eventually(t, 10*time.Second, "phase Running", func() (bool, error) {
		return getRun(t, run).Status.Phase == execv1alpha1.PhaseRunning, nil
	})
	before := getRun(t, run)

	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			_, err := op.reconciler.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(run)})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("reconcile: %v", err)
		}
	}
	jobs := &batchv1.JobList{}
	if err := k8sClient.List(context.Background(), jobs, client.InNamespace(op.namespace)); err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 || jobs.Items[0].UID != job.UID {
		t.Errorf("%d Jobs after repeated reconciles, want the one original", len(jobs.Items))
	}
	if after := getRun(t, run); after.ResourceVersion != before.ResourceVersion {
		t.Errorf("repeated reconciles rewrote an unchanged status: %+v", after.Status)
	}
}

func TestEventsAndMetricsRecordEachStep(t *testing.T) {
	op := startOperator(t, testConfig())
	completedBefore := testutil.ToFloat64(runsFinished.WithLabelValues("Completed"))
	jobsBefore := testutil.ToFloat64(jobsCreated)
	run := op.create(t, op.newRun("events", "print('Hello, World!')"))
	pod := startPod(t, waitForJob(t, run))
	setContainerState(t, pod, running())
	eventually(t, 10*time.Second, "startTime", func() (bool, error) { return getRun(t, run).Status.StartTime != nil, nil })
	setContainerState(t, pod, terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))))
	waitForResult(t, run)
	eventually(t, 10*time.Second, "events JobCreated, Started and Completed", func() (bool, error) {
		list := &eventsv1.EventList{}
		if err := k8sClient.List(context.Background(), list, client.InNamespace(op.namespace)); err != nil {
			return false, err
		}
		seen := map[string]bool{}
		for _, e := range list.Items {
			if e.Regarding.Name == run.Name {
				seen[e.Reason] = true
			}
		}
		return seen["JobCreated"] && seen["Started"] && seen["Completed"], nil
	})
	// What `kubectl get coderuns` prints: the server-side table of the printer columns.
	row := kubectlGetRow(t, run)
	for column, want := range map[string]string{"Phase": "Succeeded", "Exit": "0", "Reason": "Completed", "Time": "22ms", "Memory": "9Mi"} {
		if row[column] != want {
			t.Errorf("kubectl get column %s = %q, want %q (row %v)", column, row[column], want, row)
		}
	}

	// The counters are process-wide and other tests add to them too: check the rise.
	if got := testutil.ToFloat64(runsFinished.WithLabelValues("Completed")) - completedBefore; got < 1 {
		t.Errorf("coderun_runs_finished_total{reason=Completed} rose by %v, want at least 1", got)
	}
	if got := testutil.ToFloat64(jobsCreated) - jobsBefore; got < 1 {
		t.Errorf("coderun_jobs_created_total rose by %v, want at least 1", got)
	}
}

func findCondition(run *execv1alpha1.CodeRun, t execv1alpha1.ConditionType) *metav1.Condition {
	for i := range run.Status.Conditions {
		if run.Status.Conditions[i].Type == t.String() {
			return &run.Status.Conditions[i]
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// kubectlGetRow asks the API server for the table that `kubectl get coderun` prints and
// returns the run's row by column name.
func kubectlGetRow(t *testing.T, run *execv1alpha1.CodeRun) map[string]string {
	t.Helper()
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		t.Fatal(err)
	}
	data, err := clientset.RESTClient().Get().
		AbsPath("/apis/exec.coderun.dev/v1alpha1/namespaces", run.Namespace, "coderuns", run.Name).
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(context.Background())
	if err != nil {
		t.Fatalf("getting the table: %v", err)
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(data, table); err != nil || len(table.Rows) != 1 {
		t.Fatalf("decoding the table (%v): %s", err, data)
	}
	row := map[string]string{}
	for i, col := range table.ColumnDefinitions {
		row[col.Name] = fmt.Sprint(table.Rows[0].Cells[i])
	}
	return row
}
