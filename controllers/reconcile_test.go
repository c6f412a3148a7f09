package controllers

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/report"
)

// The table below runs the reconciler on a fake client: each row is the objects a
// reconcile finds (the CodeRun, its Job, its pod as the kubelet reported it, other runs),
// and what a user then sees: the CodeRun's status, its events and whether its Job exists.
// Times are whole seconds, as the API stores them.

const ns = "runs"

var (
	t0      = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // the run and its Job are created
	started = metav1.NewTime(t0.Add(1 * time.Second))      // the program starts
	ended   = metav1.NewTime(t0.Add(3 * time.Second))      // the program ends
	now     = metav1.NewTime(t0.Add(5 * time.Second))      // the reconcile
)

// tableConfig is the shipped configuration with a one-minute start timeout and 2 run slots.
func tableConfig() config.Config {
	cfg := config.Default()
	cfg.MaxConcurrentRuns = 2
	cfg.StartTimeout = metav1.Duration{Duration: time.Minute}
	// Runtimes are cluster-wide: only the tests of the Runtime controller manage them.
	cfg.ManageRuntimes = false
	return cfg
}

// defaultLimits are the limits a run without spec.limits gets.
var defaultLimits = tableConfig().Effective(execv1alpha1.Limits{})

// newRun is a CodeRun as created, before the operator saw it.
func newRun(name string, created time.Time) *execv1alpha1.CodeRun {
	return &execv1alpha1.CodeRun{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns, UID: types.UID("uid-" + name), Generation: 1,
			CreationTimestamp: metav1.NewTime(created),
		},
		Spec: execv1alpha1.CodeRunSpec{Language: execv1alpha1.LanguagePython, Source: "print(1)"},
	}
}

func condition(t execv1alpha1.ConditionType, status metav1.ConditionStatus, reason execv1alpha1.ConditionReason, message string) metav1.Condition {
	return metav1.Condition{Type: t.String(), Status: status, Reason: reason.String(), Message: message, ObservedGeneration: 1}
}

var (
	admittedCondition = condition(execv1alpha1.ConditionAdmitted, metav1.ConditionTrue, execv1alpha1.ReasonSlotAssigned, "created Job r")
	queuedConditions  = []metav1.Condition{
		condition(execv1alpha1.ConditionAdmitted, metav1.ConditionFalse, execv1alpha1.ReasonWaitingForSlot, "all 2 run slots are taken; runs start oldest first"),
		condition(execv1alpha1.ConditionFinished, metav1.ConditionFalse, execv1alpha1.ReasonInProgress, "the run is queued"),
	}
)

// builtinRef is the status.runtime of a run of the operator's built-in python.
func builtinRef() *execv1alpha1.RuntimeRef {
	return &execv1alpha1.RuntimeRef{Language: "python", Version: builtinPythonVersion, Image: tableConfig().RunnerImage}
}

// queuedStatus is the status of a run waiting for a slot.
func queuedStatus() execv1alpha1.CodeRunStatus {
	return execv1alpha1.CodeRunStatus{Phase: execv1alpha1.PhaseQueued, Limits: defaultLimits.DeepCopy(), Runtime: builtinRef(), Conditions: queuedConditions}
}

// admittedStatus is the status of a run whose Job was just created: the cold path.
func admittedStatus() execv1alpha1.CodeRunStatus {
	return execv1alpha1.CodeRunStatus{
		Phase: execv1alpha1.PhaseRunning, Limits: defaultLimits.DeepCopy(), JobName: "r", Path: execv1alpha1.PathCold, Runtime: builtinRef(),
		Conditions: []metav1.Condition{admittedCondition,
			condition(execv1alpha1.ConditionFinished, metav1.ConditionFalse, execv1alpha1.ReasonInProgress, "the program is starting")},
	}
}

// runningStatus is the status of a run whose program is running in pod r-pod.
func runningStatus() execv1alpha1.CodeRunStatus {
	s := admittedStatus()
	s.PodName, s.StartTime = "r-pod", started.DeepCopy()
	s.Conditions[1].Message = "the program is running"
	return s
}

// endedStatus is the status of a run that started and ended with res. summary is the
// Finished condition's message, which the run's last event repeats.
func endedStatus(res execv1alpha1.CodeRunResult, summary string) execv1alpha1.CodeRunStatus {
	s := runningStatus()
	s.Phase = execv1alpha1.PhaseFailed
	if res.Reason == execv1alpha1.ReasonCompleted {
		s.Phase = execv1alpha1.PhaseSucceeded
	}
	s.Result, s.CompletionTime = &res, now.DeepCopy()
	s.Conditions[1] = condition(execv1alpha1.ConditionFinished, metav1.ConditionTrue, res.Reason.ConditionReason(), summary)
	return s
}

// unstartedFailure is the status of a run that failed with a SystemError before its
// program started.
func unstartedFailure(pod, message string) execv1alpha1.CodeRunStatus {
	s := admittedStatus()
	s.Phase, s.PodName = execv1alpha1.PhaseFailed, pod
	s.Result = &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonSystemError, Message: message}
	s.CompletionTime = now.DeepCopy()
	s.Conditions[1] = condition(execv1alpha1.ConditionFinished, metav1.ConditionTrue, "SystemError", "SystemError: "+message)
	return s
}

// withStatus returns run with status s.
func withStatus(run *execv1alpha1.CodeRun, s execv1alpha1.CodeRunStatus) *execv1alpha1.CodeRun {
	run.Status = s
	return run
}

// jobOf is the Job the operator creates for run, created at t0, with conditions set by
// the Job controller.
func jobOf(run *execv1alpha1.CodeRun, conditions ...batchv1.JobCondition) *batchv1.Job {
	job := buildJob(run, defaultLimits, tableConfig(), 200000)
	job.CreationTimestamp = metav1.NewTime(t0)
	if err := ctrl.SetControllerReference(run, job, testScheme); err != nil {
		panic(err)
	}
	job.Status.Conditions = conditions
	return job
}

func jobFailed(reason, message string) batchv1.JobCondition {
	return batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: message}
}

// podOf is the pod of run's Job, r-pod, with its run container in state (nil: not reported).
func podOf(run *execv1alpha1.CodeRun, state *corev1.ContainerState) *corev1.Pod {
	job := jobOf(run)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: run.Name + "-pod", Namespace: ns, CreationTimestamp: metav1.NewTime(t0),
			Labels: job.Spec.Template.Labels, Annotations: job.Spec.Template.Annotations,
		},
		Spec:   job.Spec.Template.Spec,
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	if state != nil {
		pod.Status.Phase = corev1.PodRunning
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: containerName, State: *state}}
	}
	return pod
}

func runningState() *corev1.ContainerState {
	return &corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
}

func terminatedState(exitCode int32, reason, message string) *corev1.ContainerState {
	return &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: exitCode, Reason: reason, Message: message, StartedAt: started, FinishedAt: ended,
	}}
}

func waitingState(reason, message string) *corev1.ContainerState {
	return &corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

func reportMessage(rep report.Report) string { return string(report.ForTerminationMessage(rep)) }

func logWith(rep report.Report) []byte {
	return append([]byte("runner: starting\n"), append(report.Encode(rep), '\n')...)
}

type reconcileCase struct {
	name string
	// config changes tableConfig.
	config func(*config.Config)
	// run is the CodeRun reconciled, r unless named otherwise.
	run *execv1alpha1.CodeRun
	// objects are the other objects in the cluster, as the operator's cache shows them.
	objects []client.Object
	// uncached are objects the API server has but the cache does not show yet.
	uncached []client.Object
	// logs are the pods' logs by pod name (no entry: reading it fails).
	logs map[string][]byte

	wantStatus execv1alpha1.CodeRunStatus
	// wantEvents are the events about the run, as "type reason note".
	wantEvents []string
	// wantJob tells whether the run's Job exists once the reconciles are done.
	wantJob bool
	// wantRequeue is when the last reconcile asks to look again.
	wantRequeue time.Duration
}

func TestReconcile(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	hello := report.Report{
		Reason: report.Completed, ExitCode: 0, Stdout: "Hello, World!\n", Output: "Hello, World!\n",
		WallTimeMicros: 21500, CPUTimeMicros: 18000, PeakMemoryBytes: 9 << 20,
	}
	syntaxError := "  File \"/coderun/input/main.py\", line 1\n    print('x'\nSyntaxError: '(' was never closed\n"
	big := strings.Repeat("0123456789abcdef", 1024) // 16 KiB: too big for a termination message
	bigReport := report.Report{Reason: report.Completed, Stdout: big, Output: big, WallTimeMicros: 1000, PeakMemoryBytes: 1 << 20}

	// A Job failure message of 40000 bytes in 2-byte characters: the condition keeps the
	// API's 32768 bytes of it, the event the API's 1024.
	longMessage := strings.Repeat("é", 20000)
	longSummary := "SystemError: the run's pod failed or was deleted before the program finished (BackoffLimitExceeded: " + longMessage + ")"
	start := longSummary[:strings.Index(longSummary, "é")]
	longNote := start + strings.Repeat("é", (1024-len("...")-len(start))/2) + "..."
	longStatus := endedStatus(execv1alpha1.CodeRunResult{
		Reason:  execv1alpha1.ReasonSystemError,
		Message: "the run's pod failed or was deleted before the program finished (BackoffLimitExceeded: " + longMessage + ")",
	}, "")
	longStatus.Conditions[1].Message = start + strings.Repeat("é", (32768-len(start))/2)

	cases := []reconcileCase{
		// Results: the pod's run container has terminated.
		{
			// The status write after the Job was created lost a race, and the run reads its
			// path from the Job: a cold run's status never misses it.
			name:    "a Job whose creation the status never recorded",
			run:     newRun("r", t0),
			objects: []client.Object{jobOf(newRun("r", t0))},
			// status.runtime is written with the Job's creation: it is lost with that write.
			wantStatus: execv1alpha1.CodeRunStatus{
				Phase: execv1alpha1.PhaseRunning, Limits: defaultLimits.DeepCopy(), JobName: "r", Path: execv1alpha1.PathCold,
			},
			wantJob:     true,
			wantRequeue: time.Minute - 5*time.Second, // the start timeout, from the Job's creation at t0
		},
		{
			name:    "hello world",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "Completed", reportMessage(hello)))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonCompleted, ExitCode: ptr.To[int32](0),
				Output: "Hello, World!\n", Stdout: "Hello, World!\n",
				WallTime: &metav1.Duration{Duration: 22 * time.Millisecond}, CPUTime: &metav1.Duration{Duration: 18 * time.Millisecond},
				PeakMemory: ptr.To(resource.MustParse("9Mi")),
			}, "Completed, exit code 0"),
			wantEvents: []string{"Normal Completed Completed, exit code 0"},
			wantJob:    true,
		},
		{
			name: "syntax error",
			run:  withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "Completed", reportMessage(report.Report{
				Reason: report.NonZeroExit, ExitCode: 1, Stderr: syntaxError, Output: syntaxError,
			})))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonNonZeroExit, ExitCode: ptr.To[int32](1), Output: syntaxError, Stderr: syntaxError,
				WallTime: &metav1.Duration{}, CPUTime: &metav1.Duration{}, PeakMemory: ptr.To(resource.MustParse("0")),
			}, "NonZeroExit, exit code 1"),
			wantEvents: []string{"Warning NonZeroExit NonZeroExit, exit code 1"},
			wantJob:    true,
		},
		{
			name:    "output only in the log",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "Completed", reportMessage(bigReport)))},
			logs:    map[string][]byte{"r-pod": logWith(bigReport)},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonCompleted, ExitCode: ptr.To[int32](0), Output: big, Stdout: big,
				WallTime: &metav1.Duration{Duration: time.Millisecond}, CPUTime: &metav1.Duration{}, PeakMemory: ptr.To(resource.MustParse("1Mi")),
			}, "Completed, exit code 0"),
			wantEvents: []string{"Normal Completed Completed, exit code 0"},
			wantJob:    true,
		},
		{
			name:    "output only in the log, which cannot be read",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "Completed", reportMessage(bigReport)))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonCompleted, ExitCode: ptr.To[int32](0),
				Message:         "the output could not be read from the pod's log: no log for pod r-pod",
				OutputTruncated: true, StdoutTruncated: true, StderrTruncated: true,
				WallTime: &metav1.Duration{Duration: time.Millisecond}, CPUTime: &metav1.Duration{}, PeakMemory: ptr.To(resource.MustParse("1Mi")),
			}, "Completed, exit code 0: the output could not be read from the pod's log: no log for pod r-pod"),
			wantEvents: []string{"Normal Completed Completed, exit code 0: the output could not be read from the pod's log: no log for pod r-pod"},
			wantJob:    true,
		},
		{
			name:    "runner OOM-killed",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(137, "OOMKilled", ""))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonMemoryLimitExceeded, Message: "memory limit of 256Mi exceeded", ExitCode: ptr.To[int32](137), Signal: "SIGKILL",
			}, "MemoryLimitExceeded, exit code 137: memory limit of 256Mi exceeded"),
			wantEvents: []string{"Warning MemoryLimitExceeded MemoryLimitExceeded, exit code 137: memory limit of 256Mi exceeded"},
			wantJob:    true,
		},
		{
			name: "program OOM-killed, runner reported",
			run:  withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "OOMKilled", reportMessage(report.Report{
				Reason: report.Signaled, ExitCode: 137, Signal: "SIGKILL", Output: "allocating\n", Stdout: "allocating\n",
			})))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonMemoryLimitExceeded, Message: "memory limit of 256Mi exceeded", ExitCode: ptr.To[int32](137), Signal: "SIGKILL",
				Output: "allocating\n", Stdout: "allocating\n",
				WallTime: &metav1.Duration{}, CPUTime: &metav1.Duration{}, PeakMemory: ptr.To(resource.MustParse("0")),
			}, "MemoryLimitExceeded, exit code 137: memory limit of 256Mi exceeded"),
			wantEvents: []string{"Warning MemoryLimitExceeded MemoryLimitExceeded, exit code 137: memory limit of 256Mi exceeded"},
			wantJob:    true,
		},
		{
			name:    "runner ended without a report",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(2, "Error", "runner: bad flag"))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonSystemError, Message: "the runner ended (exit code 2, Error) without a valid report: no log for pod r-pod",
			}, "SystemError: the runner ended (exit code 2, Error) without a valid report: no log for pod r-pod"),
			wantEvents: []string{"Warning SystemError SystemError: the runner ended (exit code 2, Error) without a valid report: no log for pod r-pod"},
			wantJob:    true,
		},
		{
			// The program wrote a report to the termination log and made the runner crash
			// before it could replace it: the runner's exit code gives it away.
			name: "forged termination message, runner crashed",
			run:  withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(2, "Error", reportMessage(report.Report{
				Reason: report.Completed, Output: "forged\n", Stdout: "forged\n",
			})))},
			logs: map[string][]byte{"r-pod": []byte("fatal error: runtime: cannot allocate memory\n")},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonSystemError, Message: "the runner ended (exit code 2, Error) without a valid report: no coderun report found",
			}, "SystemError: the runner ended (exit code 2, Error) without a valid report: no coderun report found"),
			wantEvents: []string{"Warning SystemError SystemError: the runner ended (exit code 2, Error) without a valid report: no coderun report found"},
			wantJob:    true,
		},
		{
			// The runner could not write the termination message (exit 3) but printed its
			// report to the log.
			name: "termination message unwritten, report in the log",
			run:  withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(3, "Error", reportMessage(report.Report{
				Reason: report.Completed, Output: "forged\n", Stdout: "forged\n",
			})))},
			logs: map[string][]byte{"r-pod": logWith(report.Report{Reason: report.NonZeroExit, ExitCode: 5, Output: "real\n", Stdout: "real\n"})},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonNonZeroExit, ExitCode: ptr.To[int32](5), Output: "real\n", Stdout: "real\n",
				WallTime: &metav1.Duration{}, CPUTime: &metav1.Duration{}, PeakMemory: ptr.To(resource.MustParse("0")),
			}, "NonZeroExit, exit code 5"),
			wantEvents: []string{"Warning NonZeroExit NonZeroExit, exit code 5"},
			wantJob:    true,
		},
		{
			name:    "forged reason",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(0, "Completed", `{"coderun":"report/v1","reason":"Accepted","exitCode":0}`))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonSystemError, Message: `the runner ended (exit code 0, Completed) without a valid report: invalid report: unknown reason "Accepted"`,
			}, `SystemError: the runner ended (exit code 0, Completed) without a valid report: invalid report: unknown reason "Accepted"`),
			wantEvents: []string{`Warning SystemError SystemError: the runner ended (exit code 0, Completed) without a valid report: invalid report: unknown reason "Accepted"`},
			wantJob:    true,
		},
		{
			name:    "terminated pod not seen running: the run starts and ends in one update",
			run:     withStatus(newRun("r", t0), admittedStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), terminatedState(137, "OOMKilled", ""))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonMemoryLimitExceeded, Message: "memory limit of 256Mi exceeded", ExitCode: ptr.To[int32](137), Signal: "SIGKILL",
			}, "MemoryLimitExceeded, exit code 137: memory limit of 256Mi exceeded"),
			wantEvents: []string{"Warning MemoryLimitExceeded MemoryLimitExceeded, exit code 137: memory limit of 256Mi exceeded"},
			wantJob:    true,
		},

		// Runs that never report: the Job or pod ends or goes away without a result.
		{
			name:    "deadline exceeded after the start",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0), jobFailed(batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")), podOf(newRun("r", t0), runningState())},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonTimeLimitExceeded, Message: "time limit of 10s exceeded; the pod was stopped",
			}, "TimeLimitExceeded: time limit of 10s exceeded; the pod was stopped"),
			wantEvents: []string{"Warning TimeLimitExceeded TimeLimitExceeded: time limit of 10s exceeded; the pod was stopped"},
			wantJob:    true,
		},
		{
			name:    "pod deleted mid-run",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0), jobFailed(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"))},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonSystemError, Message: "the run's pod failed or was deleted before the program finished (BackoffLimitExceeded: Job has reached the specified backoff limit)",
			}, "SystemError: the run's pod failed or was deleted before the program finished (BackoffLimitExceeded: Job has reached the specified backoff limit)"),
			wantEvents: []string{"Warning SystemError SystemError: the run's pod failed or was deleted before the program finished (BackoffLimitExceeded: Job has reached the specified backoff limit)"},
			wantJob:    true,
		},
		{
			// The API server refuses an event note over 1024 bytes: the event would be lost.
			name:       "long failure message: the condition and the event keep what the API allows",
			run:        withStatus(newRun("r", t0), runningStatus()),
			objects:    []client.Object{jobOf(newRun("r", t0), jobFailed(batchv1.JobReasonBackoffLimitExceeded, longMessage))},
			wantStatus: longStatus,
			wantEvents: []string{"Warning SystemError " + longNote},
			wantJob:    true,
		},
		{
			name: "Job deleted mid-run: the run fails and the Job is not created again",
			run:  withStatus(newRun("r", t0), runningStatus()),
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonSystemError, Message: "the run's Job r was deleted before the program finished",
			}, "SystemError: the run's Job r was deleted before the program finished"),
			wantEvents: []string{"Warning SystemError SystemError: the run's Job r was deleted before the program finished"},
			wantJob:    false,
		},
		{
			name:        "Job not in the cache yet: look again soon",
			run:         withStatus(newRun("r", t0), admittedStatus()),
			uncached:    []client.Object{jobOf(newRun("r", t0))},
			wantStatus:  admittedStatus(),
			wantJob:     false, // in the cache, which is what this checks
			wantRequeue: time.Second,
		},
		{
			name:    "Job completed but its pod is gone",
			run:     withStatus(newRun("r", t0), runningStatus()),
			objects: []client.Object{jobOf(newRun("r", t0), batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue})},
			wantStatus: endedStatus(execv1alpha1.CodeRunResult{
				Reason: execv1alpha1.ReasonSystemError, Message: "the Job completed but its pod is gone, so the result was lost",
			}, "SystemError: the Job completed but its pod is gone, so the result was lost"),
			wantEvents: []string{"Warning SystemError SystemError: the Job completed but its pod is gone, so the result was lost"},
			wantJob:    true,
		},
		{
			name:       "Job failed before the program started: the failed Job is kept",
			run:        withStatus(newRun("r", t0), admittedStatus()),
			objects:    []client.Object{jobOf(newRun("r", t0), jobFailed("PodFailurePolicy", "the pod was evicted"))},
			wantStatus: unstartedFailure("", "the run's Job failed before the program started (PodFailurePolicy: the pod was evicted)"),
			wantEvents: []string{"Warning SystemError SystemError: the run's Job failed before the program started (PodFailurePolicy: the pod was evicted)"},
			wantJob:    true,
		},
		{
			name: "pod not scheduled within the start timeout: the run fails and its Job is deleted",
			config: func(c *config.Config) {
				c.StartTimeout = metav1.Duration{Duration: 3 * time.Second}
			},
			run: withStatus(newRun("r", t0), admittedStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), func() *corev1.Pod {
				pod := podOf(newRun("r", t0), nil)
				pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: "Unschedulable", Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}
				return pod
			}()},
			wantStatus: unstartedFailure("r-pod", "the run did not start within 3s: the pod was not scheduled: Unschedulable 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."),
			wantEvents: []string{"Warning SystemError SystemError: the run did not start within 3s: the pod was not scheduled: Unschedulable 0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
			wantJob:    false,
		},
		{
			name:        "pod pulling its image within the start timeout: wait for the rest of it",
			run:         withStatus(newRun("r", t0), admittedStatus()),
			objects:     []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), waitingState("ContainerCreating", ""))},
			wantStatus:  func() execv1alpha1.CodeRunStatus { s := admittedStatus(); s.PodName = "r-pod"; return s }(),
			wantJob:     true,
			wantRequeue: time.Minute - 5*time.Second,
		},
		{
			name:       "image can never be pulled: the run fails at once and its Job is deleted",
			run:        withStatus(newRun("r", t0), admittedStatus()),
			objects:    []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), waitingState("ErrImageNeverPull", "Container image is not present with pull policy of Never"))},
			wantStatus: unstartedFailure("r-pod", "the run could not start: the container is waiting: ErrImageNeverPull Container image is not present with pull policy of Never"),
			wantEvents: []string{"Warning SystemError SystemError: the run could not start: the container is waiting: ErrImageNeverPull Container image is not present with pull policy of Never"},
			wantJob:    false,
		},
		{
			name:    "a Job of the same name that another owner holds",
			run:     newRun("r", t0),
			objects: []client.Object{func() *batchv1.Job { j := jobOf(newRun("r", t0)); j.OwnerReferences = nil; return j }()},
			wantStatus: func() execv1alpha1.CodeRunStatus {
				msg := `a Job named "r" already exists and does not belong to this CodeRun`
				return execv1alpha1.CodeRunStatus{
					Phase: execv1alpha1.PhaseFailed, Limits: defaultLimits.DeepCopy(), CompletionTime: now.DeepCopy(),
					Result:     &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonSystemError, Message: msg},
					Conditions: []metav1.Condition{condition(execv1alpha1.ConditionFinished, metav1.ConditionTrue, "SystemError", "SystemError: "+msg)},
				}
			}(),
			wantEvents: []string{`Warning SystemError SystemError: a Job named "r" already exists and does not belong to this CodeRun`},
			wantJob:    true,
		},
		{
			name: "limits above the maxima: rejected without a Job",
			run: func() *execv1alpha1.CodeRun {
				run := newRun("r", t0)
				run.Spec.Limits = execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](120), Memory: ptr.To(resource.MustParse("2Gi"))}
				return run
			}(),
			wantStatus: func() execv1alpha1.CodeRunStatus {
				msg := "timeoutSeconds 120 is above the maximum of 60; memory 2Gi is above the maximum of 1Gi"
				return execv1alpha1.CodeRunStatus{
					Phase: execv1alpha1.PhaseFailed, CompletionTime: now.DeepCopy(),
					Limits: &execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](120), Memory: ptr.To(resource.MustParse("2Gi")), CPU: defaultLimits.CPU},
					Result: &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonRejected, Message: msg},
					Conditions: []metav1.Condition{
						condition(execv1alpha1.ConditionAdmitted, metav1.ConditionFalse, "Rejected", msg),
						condition(execv1alpha1.ConditionFinished, metav1.ConditionTrue, "Rejected", "Rejected: "+msg),
					},
				}
			}(),
			wantEvents: []string{"Warning Rejected Rejected: timeoutSeconds 120 is above the maximum of 60; memory 2Gi is above the maximum of 1Gi"},
			wantJob:    false,
		},

		// Progress short of a result.
		{
			name:       "the program starts",
			run:        withStatus(newRun("r", t0), admittedStatus()),
			objects:    []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0), runningState())},
			wantStatus: runningStatus(),
			wantEvents: []string{"Normal Started Program started in pod r-pod"},
			wantJob:    true,
		},
		{
			// Most programs end within a second: then one write records start and end.
			name: "a program running for less than a second: no write yet, a look when the second is up",
			run:  withStatus(newRun("r", t0), admittedStatus()),
			objects: []client.Object{jobOf(newRun("r", t0)), podOf(newRun("r", t0),
				&corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}})},
			wantStatus:  admittedStatus(),
			wantJob:     true,
			wantRequeue: time.Second,
		},

		// The queue: 2 run slots, oldest first.
		{
			name:        "a new run with a free slot gets its Job",
			run:         newRun("r", t0),
			wantStatus:  admittedStatus(),
			wantEvents:  []string{"Normal JobCreated Created Job r"},
			wantJob:     true,
			wantRequeue: time.Minute, // the start timeout, from the Job's creation
		},
		{
			name: "a new run while both slots are taken waits",
			run:  newRun("r", t0),
			objects: []client.Object{
				newRun("a", t0.Add(-time.Minute)), jobOf(newRun("a", t0.Add(-time.Minute))),
				newRun("b", t0.Add(-time.Minute)), jobOf(newRun("b", t0.Add(-time.Minute))),
			},
			wantStatus:  queuedStatus(),
			wantEvents:  []string{"Normal Queued Waiting for one of 2 run slots"},
			wantJob:     false,
			wantRequeue: queuedRecheck,
		},
		{
			name: "a queued run still waiting says so once",
			run:  withStatus(newRun("r", t0), queuedStatus()),
			objects: []client.Object{
				newRun("a", t0.Add(-time.Minute)), jobOf(newRun("a", t0.Add(-time.Minute))),
				newRun("b", t0.Add(-time.Minute)), jobOf(newRun("b", t0.Add(-time.Minute))),
			},
			wantStatus:  queuedStatus(),
			wantJob:     false,
			wantRequeue: queuedRecheck,
		},
		{
			name: "a free slot goes to the older waiting run first",
			run:  withStatus(newRun("r", t0), queuedStatus()),
			objects: []client.Object{
				newRun("a", t0.Add(-time.Minute)), jobOf(newRun("a", t0.Add(-time.Minute))),
				withStatus(newRun("older", t0.Add(-time.Second)), queuedStatus()),
			},
			wantStatus:  queuedStatus(),
			wantJob:     false,
			wantRequeue: queuedRecheck,
		},
		{
			name: "a queued run gets a slot freed by a finished run",
			run:  withStatus(newRun("r", t0), queuedStatus()),
			objects: []client.Object{
				newRun("a", t0.Add(-time.Minute)), jobOf(newRun("a", t0.Add(-time.Minute))),
				withStatus(newRun("b", t0.Add(-time.Minute)), execv1alpha1.CodeRunStatus{
					Phase: execv1alpha1.PhaseSucceeded, JobName: "b", Result: &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompleted},
				}),
				jobOf(newRun("b", t0.Add(-time.Minute)), batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}),
			},
			wantStatus:  admittedStatus(),
			wantEvents:  []string{"Normal JobCreated Created Job r"},
			wantJob:     true,
			wantRequeue: time.Minute,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runReconcileCase(t, tc)
		})
	}
}

// runReconcileCase reconciles the row's run until its status settles, as the watch of
// the operator's own status writes would, and checks what a user then sees.
func runReconcileCase(t *testing.T, tc reconcileCase) {
	t.Helper()
	cfg := tableConfig()
	if tc.config != nil {
		tc.config(&cfg)
	}
	clock := clocktesting.NewFakePassiveClock(now.Time)
	objects := append([]client.Object{tc.run}, tc.objects...)
	c := withRunIndex(fake.NewClientBuilder()).
		WithScheme(testScheme).
		WithObjects(objects...).
		WithStatusSubresource(&execv1alpha1.CodeRun{}).
		WithInterceptorFuncs(interceptor.Funcs{
			// The API server stamps new objects with their creation time.
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				obj.SetCreationTimestamp(metav1.NewTime(clock.Now()))
				return c.Create(ctx, obj, opts...)
			},
		}).
		Build()
	var inAPIServer []client.Object
	for _, obj := range append(objects, tc.uncached...) {
		inAPIServer = append(inAPIServer, obj.DeepCopyObject().(client.Object))
	}
	apiServer := fake.NewClientBuilder().WithScheme(testScheme).WithObjects(inAPIServer...).Build()
	recorder := events.NewFakeRecorder(100)
	logs := &fakeLogs{}
	for pod, log := range tc.logs {
		logs.set(pod, log)
	}
	r := &CodeRunReconciler{
		Client: c, APIReader: apiServer, Scheme: testScheme, Recorder: recorder,
		Config: cfg, Logs: logs, Clock: clock,
		queue: newRunQueue(cfg.MaxConcurrentRuns),
	}
	for _, obj := range objects {
		if run, ok := obj.(*execv1alpha1.CodeRun); ok {
			r.queue.observe(run, true)
		}
	}

	key := client.ObjectKeyFromObject(tc.run)
	var result ctrl.Result
	var got execv1alpha1.CodeRun
	for i := range 4 {
		var err error
		if result, err = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: key}); err != nil {
			t.Fatalf("reconcile %d: %v", i+1, err)
		}
		before := got.ResourceVersion
		if err := c.Get(context.Background(), key, &got); err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion == before {
			break
		}
	}

	if diff := cmp.Diff(tc.wantStatus, got.Status, cmpopts.IgnoreFields(metav1.Condition{}, "LastTransitionTime")); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	var gotEvents []string
	for len(recorder.Events) > 0 {
		gotEvents = append(gotEvents, <-recorder.Events)
	}
	if diff := cmp.Diff(tc.wantEvents, gotEvents, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, e := range gotEvents {
		if note := strings.SplitN(e, " ", 3)[2]; len(note) > 1024 || !utf8.ValidString(note) {
			t.Errorf("event note %.80q... is not valid UTF-8 of at most 1024 bytes", note)
		}
	}
	err := c.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "r"}, &batchv1.Job{})
	if hasJob := err == nil; hasJob != tc.wantJob || (err != nil && !apierrors.IsNotFound(err)) {
		t.Errorf("the run's Job exists: %v (err %v), want %v", hasJob, err, tc.wantJob)
	}
	if result.RequeueAfter != tc.wantRequeue {
		t.Errorf("last reconcile requeues after %s, want %s", result.RequeueAfter, tc.wantRequeue)
	}
}
