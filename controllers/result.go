package controllers

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/textcut"
)

// resultBudget bounds the JSON size of a result written to status. Together with the spec
// (source and stdin, at most 64 KiB each but up to 6 times that once JSON-escaped) it keeps
// a CodeRun well under etcd's 1.5 MiB request limit, whatever bytes the program printed.
const resultBudget = 640 * 1024

// resultFromReport turns the runner's report into a result. oomKilled is the kubelet's word
// that the container hit its memory limit: the runner sees only a SIGKILL then, so a killed
// program in an OOM-killed container ran out of memory.
func resultFromReport(rep report.Report, oomKilled bool, limits execv1alpha1.Limits) *execv1alpha1.CodeRunResult {
	res := &execv1alpha1.CodeRunResult{
		Reason:          execv1alpha1.ResultReason(rep.Reason),
		Message:         rep.Message,
		ExitCode:        ptr.To(int32(rep.ExitCode)),
		Signal:          rep.Signal,
		Output:          rep.Output,
		Stdout:          rep.Stdout,
		Stderr:          rep.Stderr,
		OutputTruncated: rep.StdoutTruncated || rep.StderrTruncated,
		StdoutTruncated: rep.StdoutTruncated,
		StderrTruncated: rep.StderrTruncated,
		WallTime:        millis(time.Duration(rep.WallTimeMicros) * time.Microsecond),
		CPUTime:         millis(time.Duration(rep.CPUTimeMicros) * time.Microsecond),
		PeakMemory:      kibibytes(rep.PeakMemoryBytes),
	}
	if oomKilled && rep.Signal == "SIGKILL" && (rep.Reason == report.Signaled || rep.Reason == report.NonZeroExit) {
		res.Reason = execv1alpha1.ReasonMemoryLimitExceeded
		res.Message = memoryMessage(limits)
	}
	if rep.Compile != nil {
		res.Compile = compileResult(*rep.Compile)
	}
	if rep.Reason == report.CompileError {
		// The program did not run: it has no exit code, times or memory of its own.
		res.ExitCode, res.Signal, res.WallTime, res.CPUTime, res.PeakMemory = nil, "", nil, nil, nil
		res.Message = compileErrorMessage(res.Compile, rep.Message)
	}
	return res
}

// compileResult is the compile stage of a report, in the API's terms (as the program's).
func compileResult(st report.Stage) *execv1alpha1.CompileResult {
	return &execv1alpha1.CompileResult{
		Reason:          execv1alpha1.ResultReason(st.Reason),
		Message:         st.Message,
		ExitCode:        ptr.To(int32(st.ExitCode)),
		Signal:          st.Signal,
		Output:          st.Output,
		Stdout:          st.Stdout,
		Stderr:          st.Stderr,
		OutputTruncated: st.StdoutTruncated || st.StderrTruncated,
		WallTime:        millis(time.Duration(st.WallTimeMicros) * time.Microsecond),
		CPUTime:         millis(time.Duration(st.CPUTimeMicros) * time.Microsecond),
		PeakMemory:      kibibytes(st.PeakMemoryBytes),
	}
}

// compileErrorMessage is a CompileError's message: how the compiler ended, and that the
// program was not run.
func compileErrorMessage(c *execv1alpha1.CompileResult, runnerMessage string) string {
	if c == nil {
		return joinSentences(runnerMessage, "the program was not run")
	}
	how := string(c.Reason)
	switch {
	case c.Signal != "":
		how += ", " + c.Signal
	case c.ExitCode != nil && c.Reason == execv1alpha1.ReasonNonZeroExit:
		how += fmt.Sprintf(", exit code %d", *c.ExitCode)
	}
	msg := "compilation failed (" + how + ")"
	if c.Message != "" {
		msg += ": " + c.Message
	}
	return msg + "; the program was not run"
}

// reportFromTermination reads the runner's report from a terminated run container's
// termination message. When there is no valid report it returns, instead, the result that
// explains how the container ended.
func reportFromTermination(term *corev1.ContainerStateTerminated, limits execv1alpha1.Limits) (report.Report, *execv1alpha1.CodeRunResult) {
	rep, err := report.Parse([]byte(term.Message))
	if err != nil {
		return report.Report{}, resultFromTermination(term, limits, err)
	}
	return rep, nil
}

// resultFromTermination explains a run container that ended without a usable report.
func resultFromTermination(term *corev1.ContainerStateTerminated, limits execv1alpha1.Limits, reportErr error) *execv1alpha1.CodeRunResult {
	switch term.Reason {
	case "OOMKilled":
		return &execv1alpha1.CodeRunResult{
			Reason:   execv1alpha1.ReasonMemoryLimitExceeded,
			Message:  memoryMessage(limits),
			ExitCode: ptr.To(term.ExitCode),
			Signal:   "SIGKILL",
		}
	case "DeadlineExceeded":
		return timeLimitResult(limits)
	case "Unknown", "ContainerStatusUnknown":
		// What containerd (exit code 255, Unknown) or the kubelet reports for a container
		// whose state was lost: the runtime was restarted, or the node went away, while the
		// container started or ran.
		return systemError("the node lost the run container's state (exit code %d, %s), as when its container runtime restarts; the runner left no report",
			term.ExitCode, term.Reason)
	}
	return systemError("the runner ended (exit code %d, %s) without a valid report: %v", term.ExitCode, orUnknown(term.Reason), reportErr)
}

// resultFromFailedJob explains a Job that failed with no terminated run container to
// read: its pod was deleted, or never ran.
func resultFromFailedJob(cond *batchv1.JobCondition, started bool, limits execv1alpha1.Limits) *execv1alpha1.CodeRunResult {
	if cond.Reason == batchv1.JobReasonDeadlineExceeded && started {
		return timeLimitResult(limits)
	}
	if started {
		return systemError("the run's pod failed or was deleted before the program finished (%s: %s)", cond.Reason, cond.Message)
	}
	return systemError("the run's Job failed before the program started (%s: %s)", cond.Reason, cond.Message)
}

func timeLimitResult(limits execv1alpha1.Limits) *execv1alpha1.CodeRunResult {
	return &execv1alpha1.CodeRunResult{
		Reason:  execv1alpha1.ReasonTimeLimitExceeded,
		Message: fmt.Sprintf("time limit of %ds exceeded; the pod was stopped", *limits.TimeoutSeconds),
	}
}

func memoryMessage(limits execv1alpha1.Limits) string {
	return fmt.Sprintf("memory limit of %s exceeded", limits.Memory)
}

func systemError(format string, args ...any) *execv1alpha1.CodeRunResult {
	return &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonSystemError, Message: fmt.Sprintf(format, args...)}
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// millis rounds d to the millisecond, which is what `kubectl get` shows and clients need.
func millis(d time.Duration) *metav1.Duration {
	return &metav1.Duration{Duration: d.Round(time.Millisecond)}
}

// kibibytes rounds n bytes up to whole KiB, so that it prints as e.g. "9612Ki".
func kibibytes(n int64) *resource.Quantity {
	return resource.NewQuantity((n+1023)/1024*1024, resource.BinarySI)
}

// fitResult shortens res so that its JSON encoding is at most budget bytes: first the
// separate stdout and stderr (output still has both), then output itself. Shortened fields
// keep their beginning and are marked truncated.
func fitResult(res *execv1alpha1.CodeRunResult, budget int) {
	fields := []struct {
		text      *string
		truncated *bool
	}{
		{&res.Stderr, &res.StderrTruncated},
		{&res.Stdout, &res.StdoutTruncated},
		{&res.Output, &res.OutputTruncated},
	}
	if c := res.Compile; c != nil {
		// The compiler's output goes first: a program that ran says more with its own.
		fields = append([]struct {
			text      *string
			truncated *bool
		}{{&c.Stderr, &c.OutputTruncated}, {&c.Stdout, &c.OutputTruncated}, {&c.Output, &c.OutputTruncated}}, fields...)
	}
	for _, f := range fields {
		over := encodedSize(res) - budget
		if over <= 0 {
			return
		}
		// Escaping can make a byte up to 6 bytes long; cutting that much input is enough.
		*f.text = textcut.Prefix(*f.text, len(*f.text)-over)
		*f.truncated = true
		for encodedSize(res) > budget && *f.text != "" {
			*f.text = textcut.Prefix(*f.text, len(*f.text)/2)
		}
	}
}

func encodedSize(res *execv1alpha1.CodeRunResult) int {
	data, err := json.Marshal(res)
	if err != nil {
		return 0
	}
	return len(data)
}

// waitingMessage says why a pod has not started, from its scheduling condition or its
// container's waiting state.
func waitingMessage(pod *corev1.Pod) string {
	if pod == nil {
		return "no pod was created for the Job"
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return strings.TrimSpace(fmt.Sprintf("the pod was not scheduled: %s %s", c.Reason, c.Message))
		}
	}
	if cs := runContainerStatus(pod); cs != nil && cs.State.Waiting != nil {
		return strings.TrimSpace(fmt.Sprintf("the container is waiting: %s %s", cs.State.Waiting.Reason, cs.State.Waiting.Message))
	}
	return "the pod is " + strings.ToLower(string(pod.Status.Phase))
}

// permanentWaitingReasons are container waiting reasons that will not resolve by waiting.
var permanentWaitingReasons = map[string]bool{
	"ErrImageNeverPull": true,
	"InvalidImageName":  true,
}

// cannotStart returns why pod will never start, or "" if it still may.
func cannotStart(pod *corev1.Pod) string {
	if cs := runContainerStatus(pod); cs != nil && cs.State.Waiting != nil && permanentWaitingReasons[cs.State.Waiting.Reason] {
		return waitingMessage(pod)
	}
	return ""
}

// runContainerStatus returns the status of the run container of pod, if reported.
func runContainerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	if pod == nil {
		return nil
	}
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == containerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// jobCondition returns the Job's condition of type t when it is True.
func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if c := &job.Status.Conditions[i]; c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}
