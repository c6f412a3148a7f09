package controllers

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/report"
)

func TestResultFromReport(t *testing.T) {
	limits := config.Default().Effective(execv1alpha1.Limits{})
	cases := []struct {
		name       string
		rep        report.Report
		oomKilled  bool
		wantReason execv1alpha1.ResultReason
		wantMsg    string
	}{
		{"completed", report.Report{Reason: report.Completed}, false, execv1alpha1.ReasonCompleted, ""},
		{"completed in an OOM-killed container stays completed", report.Report{Reason: report.Completed}, true, execv1alpha1.ReasonCompleted, ""},
		{"SIGKILL in an OOM-killed container", report.Report{Reason: report.Signaled, ExitCode: 137, Signal: "SIGKILL"}, true, execv1alpha1.ReasonMemoryLimitExceeded, "memory limit of 256Mi exceeded"},
		{"SIGKILL otherwise", report.Report{Reason: report.Signaled, ExitCode: 137, Signal: "SIGKILL"}, false, execv1alpha1.ReasonSignaled, ""},
		{"time limit keeps the runner's message", report.Report{Reason: report.TimeLimitExceeded, ExitCode: 137, Signal: "SIGKILL", Message: "time limit of 2s exceeded"}, true, execv1alpha1.ReasonTimeLimitExceeded, "time limit of 2s exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := resultFromReport(tc.rep, tc.oomKilled, limits)
			if res.Reason != tc.wantReason || res.Message != tc.wantMsg {
				t.Errorf("got %s %q, want %s %q", res.Reason, res.Message, tc.wantReason, tc.wantMsg)
			}
		})
	}
}

func TestResultFromTermination(t *testing.T) {
	limits := config.Default().Effective(execv1alpha1.Limits{})
	cases := []struct {
		reason     string
		wantReason execv1alpha1.ResultReason
	}{
		{"OOMKilled", execv1alpha1.ReasonMemoryLimitExceeded},
		{"DeadlineExceeded", execv1alpha1.ReasonTimeLimitExceeded},
		{"Error", execv1alpha1.ReasonSystemError},
		{"", execv1alpha1.ReasonSystemError},
	}
	for _, tc := range cases {
		res := resultFromTermination(&corev1.ContainerStateTerminated{ExitCode: 137, Reason: tc.reason}, limits, errors.New("no report"))
		if res.Reason != tc.wantReason || res.Message == "" {
			t.Errorf("%q: got %s %q, want %s with a message", tc.reason, res.Reason, res.Message, tc.wantReason)
		}
	}
}

// A container whose state the runtime lost (containerd killed while the container started:
// make test-faults) is a SystemError that says so, not a runner that failed to report.
func TestResultFromLostContainer(t *testing.T) {
	limits := config.Default().Effective(execv1alpha1.Limits{})
	for _, term := range []corev1.ContainerStateTerminated{{ExitCode: 255, Reason: "Unknown"}, {ExitCode: 137, Reason: "ContainerStatusUnknown"}} {
		res := resultFromTermination(&term, limits, errors.New("no coderun report found"))
		if res.Reason != execv1alpha1.ReasonSystemError || !strings.Contains(res.Message, "container runtime restarts") {
			t.Errorf("%d %s: got %s %q, want a SystemError naming the container runtime", term.ExitCode, term.Reason, res.Reason, res.Message)
		}
	}
}

func TestFitResult(t *testing.T) {
	nul := strings.Repeat("\x00", 64*1024) // 6 bytes each once JSON-escaped
	euro := strings.Repeat("€", 20000)
	cases := []struct {
		name          string
		res           execv1alpha1.CodeRunResult
		budget        int
		wantUntouched bool
	}{
		{"small result untouched", execv1alpha1.CodeRunResult{Output: "hi\n", Stdout: "hi\n"}, resultBudget, true},
		{"escaped flood shortened", execv1alpha1.CodeRunResult{Output: nul, Stdout: nul, Stderr: nul}, resultBudget, false},
		{"multibyte cut on a character boundary", execv1alpha1.CodeRunResult{Output: euro, Stdout: euro}, 50000, false},
		{"tiny budget empties every field", execv1alpha1.CodeRunResult{Output: euro, Stdout: euro, Stderr: euro}, 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.res
			res := tc.res
			fitResult(&res, tc.budget)
			if size := encodedSize(&res); size > tc.budget {
				t.Errorf("encoded size %d over budget %d", size, tc.budget)
			}
			if tc.wantUntouched {
				if res != before {
					t.Errorf("result changed: %+v", res)
				}
				return
			}
			for _, s := range []string{res.Output, res.Stdout, res.Stderr} {
				if !utf8.ValidString(s) {
					t.Errorf("a shortened field is not valid UTF-8")
				}
			}
			if !res.StdoutTruncated && !res.StderrTruncated && !res.OutputTruncated {
				t.Errorf("nothing marked truncated")
			}
			// Separate streams go first: output (both streams) is kept longest.
			if len(res.Output) < len(res.Stdout) {
				t.Errorf("output (%d bytes) shortened more than stdout (%d)", len(res.Output), len(res.Stdout))
			}
		})
	}
}

// FuzzResultFromTerminationMessage feeds the operator what a hostile program could leave in
// its container's termination message. Whatever it is, the result must use the API's
// reason vocabulary and fit the status budget, or the status write would fail forever.
func FuzzResultFromTerminationMessage(f *testing.F) {
	f.Add(string(report.ForTerminationMessage(report.Report{Reason: report.Completed, Output: "hi\n", Stdout: "hi\n"})), "Completed")
	f.Add(`{"coderun":"report/v1","reason":"Signaled","exitCode":137,"signal":"SIGKILL"}`, "OOMKilled")
	f.Add(`{"coderun":"report/v1","reason":"Accepted","exitCode":0}`, "Error")
	f.Add(`{"coderun":"report/v1","reason":"Completed","output":"\u0000\u0000"}`, "")
	f.Add("", "DeadlineExceeded")
	limits := config.Default().Effective(execv1alpha1.Limits{})
	valid := map[execv1alpha1.ResultReason]bool{}
	for _, r := range []execv1alpha1.ResultReason{
		execv1alpha1.ReasonCompleted, execv1alpha1.ReasonNonZeroExit, execv1alpha1.ReasonSignaled,
		execv1alpha1.ReasonTimeLimitExceeded, execv1alpha1.ReasonMemoryLimitExceeded,
		execv1alpha1.ReasonOutputLimitExceeded, execv1alpha1.ReasonRejected, execv1alpha1.ReasonSystemError,
	} {
		valid[r] = true
	}
	f.Fuzz(func(t *testing.T, message, containerReason string) {
		term := &corev1.ContainerStateTerminated{Message: message, Reason: containerReason, ExitCode: 1}
		rep, res := reportFromTermination(term, limits)
		if res == nil {
			res = resultFromReport(rep, containerReason == "OOMKilled", limits)
		}
		fitResult(res, resultBudget)
		if !valid[res.Reason] {
			t.Fatalf("reason %q is not in the API's vocabulary", res.Reason)
		}
		if size := encodedSize(res); size > resultBudget {
			t.Fatalf("result is %d bytes, over the %d budget", size, resultBudget)
		}
		if res.ExitCode != nil && (*res.ExitCode < 0 || *res.ExitCode > 255) {
			t.Fatalf("exit code %d", *res.ExitCode)
		}
	})
}
