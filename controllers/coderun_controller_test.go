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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
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
	js := job.Spec
	if *js.BackoffLimit != 0 || *js.Completions != 1 || *js.Parallelism != 1 {
		t.Errorf("backoffLimit/completions/parallelism = %d/%d/%d, want 0/1/1", *js.BackoffLimit, *js.Completions, *js.Parallelism)
	}
	// 60 s start timeout + 10 s default run timeout + 30 s slack.
	if js.ActiveDeadlineSeconds == nil || *js.ActiveDeadlineSeconds != 100 {
		t.Errorf("activeDeadlineSeconds = %v, want 100", js.ActiveDeadlineSeconds)
	}
	if js.TTLSecondsAfterFinished == nil || *js.TTLSecondsAfterFinished != 600 {
		t.Errorf("ttlSecondsAfterFinished = %v, want 600", js.TTLSecondsAfterFinished)
	}
	pod := js.Template.Spec
	checks := map[string]bool{
		"restartPolicy Never":                    pod.RestartPolicy == corev1.RestartPolicyNever,
		"no service-account token":               pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken,
		"no service links":                       pod.EnableServiceLinks != nil && !*pod.EnableServiceLinks,
		"DNS policy None":                        pod.DNSPolicy == corev1.DNSNone,
		"DNS resolves nothing":                   pod.DNSConfig != nil && len(pod.DNSConfig.Nameservers) == 1 && pod.DNSConfig.Nameservers[0] == "127.0.0.1" && len(pod.DNSConfig.Searches) == 0,
		"no host namespaces":                     !pod.HostNetwork && !pod.HostPID && !pod.HostIPC,
		"no shared process namespace":            pod.ShareProcessNamespace != nil && !*pod.ShareProcessNamespace,
		"pod runAsNonRoot":                       *pod.SecurityContext.RunAsNonRoot,
		"pod RuntimeDefault seccomp":             pod.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"run uid in the configured range":        *pod.SecurityContext.RunAsUser >= 200000 && *pod.SecurityContext.RunAsUser < 300000,
		"gid equals uid":                         *pod.SecurityContext.RunAsGroup == *pod.SecurityContext.RunAsUser,
		"no runtime class unless configured":     pod.RuntimeClassName == nil,
		"one container":                          len(pod.Containers) == 1 && len(pod.InitContainers) == 0,
		"input and scratch volumes only":         len(pod.Volumes) == 2 && pod.Volumes[0].DownwardAPI != nil && pod.Volumes[1].EmptyDir != nil,
		"scratch is memory-backed and bounded":   pod.Volumes[1].EmptyDir.Medium == corev1.StorageMediumMemory && pod.Volumes[1].EmptyDir.SizeLimit.String() == "16Mi",
		"source and stdin travel as annotations": js.Template.Annotations[execv1alpha1.AnnotationSource] == run.Spec.Source && js.Template.Annotations[execv1alpha1.AnnotationStdin] == "some input\n",
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	for name, ok := range map[string]bool{
		"container runAsNonRoot":        *sc.RunAsNonRoot,
		"not privileged":                !*sc.Privileged,
		"no privilege escalation":       !*sc.AllowPrivilegeEscalation,
		"read-only root filesystem":     *sc.ReadOnlyRootFilesystem,
		"all capabilities dropped":      len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0,
		"container RuntimeDefault":      sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault,
		"runner image, fixed tag":       c.Image == "localhost/coderun-python:0.1.0" && c.ImagePullPolicy == corev1.PullIfNotPresent,
		"input mounted read-only":       c.VolumeMounts[0].MountPath == inputDir && c.VolumeMounts[0].ReadOnly,
		"termination message from file": c.TerminationMessagePath == "/dev/termination-log" && c.TerminationMessagePolicy == corev1.TerminationMessageReadFile,
	} {
		checks[name] = ok
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("lockdown check failed: %s", name)
		}
	}
	// Guaranteed QoS: limits equal requests, for CPU, memory and ephemeral storage. Memory is
	// the program's 256Mi + 16Mi scratch + 32Mi for the runner.
	wantRes := map[corev1.ResourceName]string{"cpu": "1", "memory": "304Mi", "ephemeral-storage": "64Mi"}
	for name, want := range wantRes {
		lim, req := c.Resources.Limits[name], c.Resources.Requests[name]
		if lim.String() != want || req.Cmp(lim) != 0 {
			t.Errorf("%s: limit %s request %s, want both %s", name, lim.String(), req.String(), want)
		}
	}
	for _, arg := range []string{"--timeout=10s", "--memory-limit=268435456", "--output-limit=65536", "--max-processes=64", "--report=/dev/termination-log"} {
		if !contains(c.Args, arg) {
			t.Errorf("runner args %v lack %s", c.Args, arg)
		}
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

func TestRuntimeClassAndPlacementFromConfig(t *testing.T) {
	cfg := testConfig()
	cfg.RuntimeClassName = "gvisor"
	cfg.NodeSelector = map[string]string{"sandbox": "true"}
	cfg.Tolerations = []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	op := startOperator(t, cfg)
	run := op.create(t, op.newRun("placed", "print(1)"))
	pod := waitForJob(t, run).Spec.Template.Spec
	if pod.RuntimeClassName == nil || *pod.RuntimeClassName != "gvisor" {
		t.Errorf("runtimeClassName = %v, want gvisor", pod.RuntimeClassName)
	}
	if pod.NodeSelector["sandbox"] != "true" || len(pod.Tolerations) != 1 || pod.Tolerations[0].Key != "sandbox" {
		t.Errorf("nodeSelector %v tolerations %v, want the configured ones", pod.NodeSelector, pod.Tolerations)
	}
}

// TestResults drives a run's pod through the states a kubelet reports and checks the
// result the CodeRun ends with.
func TestResults(t *testing.T) {
	op := startOperator(t, testConfig())
	big := strings.Repeat("0123456789abcdef", 1024) // 16 KiB: too big for a termination message
	bigReport := report.Report{Reason: report.Completed, Stdout: big, Output: big, WallTimeMicros: 1000, PeakMemoryBytes: 1 << 20}

	cases := []struct {
		name       string
		state      corev1.ContainerState
		log        []byte
		wantPhase  execv1alpha1.CodeRunPhase
		wantReason execv1alpha1.ResultReason
		wantExit   *int32
		check      func(t *testing.T, res *execv1alpha1.CodeRunResult)
	}{{
		name:      "hello world",
		state:     terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))),
		wantPhase: execv1alpha1.PhaseSucceeded, wantReason: execv1alpha1.ReasonCompleted, wantExit: ptr.To[int32](0),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Output != "Hello, World!\n" || res.Stdout != "Hello, World!\n" || res.Stderr != "" {
				t.Errorf("output %q stdout %q stderr %q", res.Output, res.Stdout, res.Stderr)
			}
			if res.WallTime.Duration != 22*time.Millisecond || res.CPUTime.Duration != 18*time.Millisecond || res.PeakMemory.String() != "9Mi" {
				t.Errorf("wallTime %s cpuTime %s peakMemory %s, want 22ms 18ms 9Mi", res.WallTime, res.CPUTime, res.PeakMemory)
			}
		},
	}, {
		name: "syntax error",
		state: terminated(0, "Completed", string(report.ForTerminationMessage(report.Report{
			Reason: report.NonZeroExit, ExitCode: 1,
			Stderr: "  File \"/coderun/input/main.py\", line 1\n    print('x'\nSyntaxError: '(' was never closed\n",
			Output: "  File \"/coderun/input/main.py\", line 1\n    print('x'\nSyntaxError: '(' was never closed\n",
		}))),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonNonZeroExit, wantExit: ptr.To[int32](1),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if !strings.Contains(res.Output, "SyntaxError") {
				t.Errorf("output %q lacks SyntaxError", res.Output)
			}
		},
	}, {
		name:      "output only in the log",
		state:     terminated(0, "Completed", string(report.ForTerminationMessage(bigReport))),
		log:       append([]byte("runner: starting\n"), append(report.Encode(bigReport), '\n')...),
		wantPhase: execv1alpha1.PhaseSucceeded, wantReason: execv1alpha1.ReasonCompleted, wantExit: ptr.To[int32](0),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Stdout != big || res.Output != big || res.OutputTruncated {
				t.Errorf("got %d bytes of stdout (truncated %v), want the %d from the log", len(res.Stdout), res.OutputTruncated, len(big))
			}
		},
	}, {
		name:      "log unreadable",
		state:     terminated(0, "Completed", string(report.ForTerminationMessage(bigReport))),
		wantPhase: execv1alpha1.PhaseSucceeded, wantReason: execv1alpha1.ReasonCompleted, wantExit: ptr.To[int32](0),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if !res.OutputTruncated || !strings.Contains(res.Message, "could not be read") {
				t.Errorf("truncated %v message %q, want the lost output flagged", res.OutputTruncated, res.Message)
			}
		},
	}, {
		name:      "runner OOM-killed",
		state:     terminated(137, "OOMKilled", ""),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonMemoryLimitExceeded, wantExit: ptr.To[int32](137),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Message != "memory limit of 256Mi exceeded" {
				t.Errorf("message %q", res.Message)
			}
		},
	}, {
		name: "program OOM-killed, runner reported",
		state: terminated(0, "OOMKilled", string(report.ForTerminationMessage(report.Report{
			Reason: report.Signaled, ExitCode: 137, Signal: "SIGKILL", Output: "allocating\n", Stdout: "allocating\n",
		}))),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonMemoryLimitExceeded, wantExit: ptr.To[int32](137),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Output != "allocating\n" {
				t.Errorf("output %q, want what was printed before the kill", res.Output)
			}
		},
	}, {
		name:      "no report",
		state:     terminated(2, "Error", "runner: bad flag"),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonSystemError,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if !strings.Contains(res.Message, "without a valid report") {
				t.Errorf("message %q", res.Message)
			}
		},
	}, {
		// The program wrote a report to the termination log and made the runner crash
		// before it could replace it: the runner's exit code gives it away.
		name: "forged termination message, runner crashed",
		state: terminated(2, "Error", string(report.ForTerminationMessage(report.Report{
			Reason: report.Completed, Output: "forged\n", Stdout: "forged\n",
		}))),
		log:       []byte("fatal error: runtime: cannot allocate memory\n"),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonSystemError,
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Output != "" || !strings.Contains(res.Message, "without a valid report") {
				t.Errorf("output %q message %q: the forged report was used", res.Output, res.Message)
			}
		},
	}, {
		// The runner could not write the termination message (exit 3) but printed its
		// report to the log.
		name: "termination message unwritten, report in the log",
		state: terminated(3, "Error", string(report.ForTerminationMessage(report.Report{
			Reason: report.Completed, Output: "forged\n", Stdout: "forged\n",
		}))),
		log:       append(report.Encode(report.Report{Reason: report.NonZeroExit, ExitCode: 5, Output: "real\n", Stdout: "real\n"}), '\n'),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonNonZeroExit, wantExit: ptr.To[int32](5),
		check: func(t *testing.T, res *execv1alpha1.CodeRunResult) {
			if res.Output != "real\n" {
				t.Errorf("output %q, want the runner's report from the log", res.Output)
			}
		},
	}, {
		name:      "forged reason",
		state:     terminated(0, "Completed", `{"coderun":"report/v1","reason":"Accepted","exitCode":0}`),
		wantPhase: execv1alpha1.PhaseFailed, wantReason: execv1alpha1.ReasonSystemError,
	}}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := op.create(t, op.newRun(fmt.Sprintf("result-%d", i), "print(1)"))
			job := waitForJob(t, run)
			pod := startPod(t, job)
			if tc.log != nil {
				op.logs.set(pod.Name, tc.log)
			}
			setContainerState(t, pod, running())
			eventually(t, 10*time.Second, "startTime", func() (bool, error) {
				return getRun(t, run).Status.StartTime != nil, nil
			})
			setContainerState(t, pod, tc.state)
			got := waitForResult(t, run)
			res := got.Status.Result
			if got.Status.Phase != tc.wantPhase || res.Reason != tc.wantReason {
				t.Fatalf("phase %s reason %s (message %q), want %s %s", got.Status.Phase, res.Reason, res.Message, tc.wantPhase, tc.wantReason)
			}
			if (res.ExitCode == nil) != (tc.wantExit == nil) || (res.ExitCode != nil && *res.ExitCode != *tc.wantExit) {
				t.Errorf("exit code %v, want %v", ptr.Deref(res.ExitCode, -1), ptr.Deref(tc.wantExit, -1))
			}
			if got.Status.PodName != pod.Name || got.Status.CompletionTime == nil {
				t.Errorf("podName %q completionTime %v", got.Status.PodName, got.Status.CompletionTime)
			}
			fin := findCondition(got, execv1alpha1.ConditionFinished)
			if fin == nil || fin.Status != metav1.ConditionTrue || fin.Reason != string(tc.wantReason) {
				t.Errorf("Finished condition %+v, want True/%s", fin, tc.wantReason)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

// TestRunsThatNeverReport covers what the runner cannot report: a deadline, a deleted Job
// or pod, and a pod that never starts.
func TestRunsThatNeverReport(t *testing.T) {
	t.Run("deadline exceeded after start", func(t *testing.T) {
		op := startOperator(t, testConfig())
		run := op.create(t, op.newRun("deadline", "while True: pass"))
		job := waitForJob(t, run)
		setContainerState(t, startPod(t, job), running())
		eventually(t, 10*time.Second, "startTime", func() (bool, error) { return getRun(t, run).Status.StartTime != nil, nil })
		failJob(t, job, batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
		got := waitForResult(t, run)
		if got.Status.Result.Reason != execv1alpha1.ReasonTimeLimitExceeded {
			t.Errorf("reason %s (%s), want TimeLimitExceeded", got.Status.Result.Reason, got.Status.Result.Message)
		}
	})
	t.Run("pod deleted mid-run", func(t *testing.T) {
		op := startOperator(t, testConfig())
		run := op.create(t, op.newRun("pod-deleted", "import time; time.sleep(5)"))
		job := waitForJob(t, run)
		pod := startPod(t, job)
		setContainerState(t, pod, running())
		eventually(t, 10*time.Second, "startTime", func() (bool, error) { return getRun(t, run).Status.StartTime != nil, nil })
		if err := k8sClient.Delete(context.Background(), pod, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
		failJob(t, job, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
		got := waitForResult(t, run)
		if r := got.Status.Result; r.Reason != execv1alpha1.ReasonSystemError || !strings.Contains(r.Message, "deleted") {
			t.Errorf("reason %s message %q, want SystemError about a deleted pod", r.Reason, r.Message)
		}
	})
	t.Run("Job deleted mid-run", func(t *testing.T) {
		op := startOperator(t, testConfig())
		run := op.create(t, op.newRun("job-deleted", "import time; time.sleep(5)"))
		job := waitForJob(t, run)
		eventually(t, 10*time.Second, "phase Running", func() (bool, error) {
			return getRun(t, run).Status.Phase == execv1alpha1.PhaseRunning, nil
		})
		if err := k8sClient.Delete(context.Background(), job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			t.Fatal(err)
		}
		got := waitForResult(t, run)
		if r := got.Status.Result; r.Reason != execv1alpha1.ReasonSystemError || !strings.Contains(r.Message, "was deleted") {
			t.Errorf("reason %s message %q, want SystemError about the deleted Job", r.Reason, r.Message)
		}
		// The operator must not quietly run the program again.
		time.Sleep(500 * time.Millisecond)
		err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("the Job came back (err %v)", err)
		}
	})
	t.Run("pod never starts", func(t *testing.T) {
		cfg := testConfig()
		cfg.StartTimeout = metav1.Duration{Duration: 3 * time.Second}
		op := startOperator(t, cfg)
		run := op.create(t, op.newRun("never-starts", "print(1)"))
		job := waitForJob(t, run)
		pod := startPod(t, job)
		err := retryOnConflict(func() error {
			if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(pod), pod); err != nil {
				return err
			}
			pod.Status.Phase = corev1.PodPending
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: "Unschedulable", Message: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}}
			return k8sClient.Status().Update(context.Background(), pod)
		})
		if err != nil {
			t.Fatal(err)
		}
		got := waitForResult(t, run)
		if r := got.Status.Result; r.Reason != execv1alpha1.ReasonSystemError || !strings.Contains(r.Message, "did not start within 3s") || !strings.Contains(r.Message, "Unschedulable") {
			t.Errorf("reason %s message %q, want SystemError naming the start timeout and Unschedulable", r.Reason, r.Message)
		}
		eventually(t, 10*time.Second, "the stuck Job to be deleted", func() (bool, error) {
			err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(job), &batchv1.Job{})
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		})
	})
	t.Run("image can never be pulled", func(t *testing.T) {
		op := startOperator(t, testConfig())
		run := op.create(t, op.newRun("never-pulled", "print(1)"))
		pod := startPod(t, waitForJob(t, run))
		setContainerState(t, pod, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "ErrImageNeverPull", Message: "Container image is not present with pull policy of Never"}})
		got := waitForResult(t, run)
		if r := got.Status.Result; r.Reason != execv1alpha1.ReasonSystemError || !strings.Contains(r.Message, "ErrImageNeverPull") {
			t.Errorf("reason %s message %q, want a fast SystemError naming ErrImageNeverPull", r.Reason, r.Message)
		}
	})
}

// failJob writes a Job status as the Job controller does when a Job fails.
func failJob(t *testing.T, job *batchv1.Job, reason, message string) {
	t.Helper()
	err := retryOnConflict(func() error {
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		now := metav1.Now()
		if job.Status.StartTime == nil {
			job.Status.StartTime = &now
		}
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now},
		}
		return k8sClient.Status().Update(context.Background(), job)
	})
	if err != nil {
		t.Fatalf("failing Job: %v", err)
	}
}

func TestLimitsAboveMaximaAreRejected(t *testing.T) {
	op := startOperator(t, testConfig())
	run := op.newRun("too-big", "print(1)")
	run.Spec.Limits = execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](120), Memory: ptr.To(resource.MustParse("2Gi"))}
	op.create(t, run)
	got := waitForResult(t, run)
	r := got.Status.Result
	if got.Status.Phase != execv1alpha1.PhaseFailed || r.Reason != execv1alpha1.ReasonRejected {
		t.Fatalf("phase %s reason %s, want Failed Rejected", got.Status.Phase, r.Reason)
	}
	if r.Message != "timeoutSeconds 120 is above the maximum of 60; memory 2Gi is above the maximum of 1Gi" {
		t.Errorf("message %q", r.Message)
	}
	if r.ExitCode != nil {
		t.Errorf("exit code %d for a run that never ran", *r.ExitCode)
	}
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: run.Namespace, Name: jobName(run)}, &batchv1.Job{}); !apierrors.IsNotFound(err) {
		t.Errorf("a rejected run got a Job (err %v)", err)
	}
}

// TestQueue creates more runs than there are slots and checks that at most 2 run at once
// and that they start in creation order as slots free up.
func TestQueue(t *testing.T) {
	op := startOperator(t, testConfig()) // 2 slots
	// Runs created before the operator's watch starts rank by name; wait for
	// the watch, so that creations below arrive as they do in a live cluster.
	warmup := op.create(t, op.newRun("warmup", "print(0)"))
	setContainerState(t, startPod(t, waitForJob(t, warmup)), terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))))
	waitForResult(t, warmup)

	const n = 6
	runs := make([]*execv1alpha1.CodeRun, n)
	for i := range runs {
		// Names in reverse alphabetical order, created within the same second: only the
		// order of creation can give the right answer.
		runs[i] = op.create(t, op.newRun(fmt.Sprintf("q-%c", 'z'-i), fmt.Sprintf("print(%d)", i)))
	}

	for next := 0; next < n; next++ {
		// runs[next] must get a Job while exactly the runs before it are done or running.
		job := waitForJob(t, runs[next])
		assertJobs(t, op, runs, min(next+2, n))
		if next+2 < n {
			q := getRun(t, runs[next+2])
			eventually(t, 10*time.Second, runs[next+2].Name+" to show Queued", func() (bool, error) {
				q = getRun(t, runs[next+2])
				return q.Status.Phase == execv1alpha1.PhaseQueued, nil
			})
			if c := findCondition(q, execv1alpha1.ConditionAdmitted); c == nil || c.Reason != execv1alpha1.ReasonWaitingForSlot.String() {
				t.Errorf("queued run's Admitted condition %+v", c)
			}
		}
		pod := startPod(t, job)
		setContainerState(t, pod, terminated(0, "Completed", string(report.ForTerminationMessage(helloReport()))))
		waitForResult(t, runs[next])
	}
}

// assertJobs checks that exactly the first want runs have Jobs, after giving the operator a
// moment to (wrongly) create more.
func assertJobs(t *testing.T, op *operator, runs []*execv1alpha1.CodeRun, want int) {
	t.Helper()
	have := map[string]bool{}
	listJobs := func() {
		jobs := &batchv1.JobList{}
		if err := k8sClient.List(context.Background(), jobs, client.InNamespace(op.namespace)); err != nil {
			t.Fatal(err)
		}
		clear(have)
		for _, j := range jobs.Items {
			have[j.Name] = true
		}
	}
	eventually(t, 10*time.Second, fmt.Sprintf("the first %d runs to have Jobs", want), func() (bool, error) {
		listJobs()
		for _, run := range runs[:want] {
			if !have[jobName(run)] {
				return false, nil
			}
		}
		return true, nil
	})
	time.Sleep(300 * time.Millisecond)
	listJobs()
	for i, run := range runs {
		if have[jobName(run)] != (i < want) {
			t.Fatalf("after %d runs were admitted, run %d (%s) has a Job: %v; Jobs: %v", want, i, run.Name, have[jobName(run)], have)
		}
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

	// Replace the operator, as a rolled Deployment or a new leader would.
	stopFirst()
	second, stopSecond := runOperator(t, testConfig(), namespace)
	defer stopSecond()
	assertJobs(t, second, runs, 2)

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
