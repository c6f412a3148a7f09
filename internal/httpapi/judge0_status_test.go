package httpapi

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// TestJudge0VerdictOf maps each way a run ends onto Judge0's status and fields, as Judge0's
// worker maps isolate's (isolate_job.rb verify and determine_status).
func TestJudge0VerdictOf(t *testing.T) {
	ran := func(reason execv1alpha1.ResultReason, exit *int32, signal, stdout, stderr string) *execv1alpha1.CodeRunResult {
		return &execv1alpha1.CodeRunResult{
			Reason: reason, ExitCode: exit, Signal: signal, Stdout: stdout, Stderr: stderr, Output: stdout + stderr,
			WallTime: &metav1.Duration{Duration: 1500 * time.Millisecond}, CPUTime: &metav1.Duration{Duration: 1234567 * time.Microsecond},
			PeakMemory: ptr.To(resource.MustParse("1025")), // bytes: rounds up to 2 KB
		}
	}
	times := func(v judge0Verdict) judge0Verdict {
		v.Time, v.WallTime, v.Memory = ptr.To(1.235), ptr.To(1.5), ptr.To[int64](2)
		return v
	}
	signaled := func(n int32, name string) *execv1alpha1.CodeRunResult {
		return ran(execv1alpha1.ReasonSignaled, ptr.To(128+n), name, "", "")
	}
	compile := func(reason execv1alpha1.ResultReason, output string) *execv1alpha1.CodeRunResult {
		return &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonCompileError, Message: "the compile step failed",
			Compile: &execv1alpha1.CompileResult{Reason: reason, Output: output, Message: "the compiler ran longer than 10s"}}
	}
	for _, tc := range []struct {
		name     string
		res      *execv1alpha1.CodeRunResult
		expected *string
		redirect bool
		want     judge0Verdict
	}{
		{"completed", ran(execv1alpha1.ReasonCompleted, ptr.To[int32](0), "", "hi\n", ""), nil, false,
			times(judge0Verdict{StatusID: 3, Stdout: ptr.To("hi\n"), ExitCode: ptr.To[int32](0)})},
		{"completed, expected matches", ran(execv1alpha1.ReasonCompleted, ptr.To[int32](0), "", "hi  \n\n", "warn"), ptr.To("hi"), false,
			times(judge0Verdict{StatusID: 3, Stdout: ptr.To("hi  \n\n"), Stderr: ptr.To("warn"), ExitCode: ptr.To[int32](0)})},
		{"completed, expected differs", ran(execv1alpha1.ReasonCompleted, ptr.To[int32](0), "", "hi\n", ""), ptr.To("ho"), false,
			times(judge0Verdict{StatusID: 4, Stdout: ptr.To("hi\n"), ExitCode: ptr.To[int32](0)})},
		{"redirected stderr is compared too", ran(execv1alpha1.ReasonCompleted, ptr.To[int32](0), "", "a\n", "b\n"), ptr.To("a\nb"), true,
			times(judge0Verdict{StatusID: 3, Stdout: ptr.To("a\nb\n"), ExitCode: ptr.To[int32](0)})},
		{"non-zero exit", ran(execv1alpha1.ReasonNonZeroExit, ptr.To[int32](3), "", "", "oops\n"), ptr.To("x"), false,
			times(judge0Verdict{StatusID: 11, Stderr: ptr.To("oops\n"), ExitCode: ptr.To[int32](3), Message: ptr.To("Exited with error status 3")})},
		{"time limit", ran(execv1alpha1.ReasonTimeLimitExceeded, ptr.To[int32](137), "SIGKILL", "partial", ""), nil, false,
			times(judge0Verdict{StatusID: 5, Stdout: ptr.To("partial"), ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](9), Message: ptr.To("Time limit exceeded")})},
		{"memory limit: NZEC 137, as Judge0 shows an OOM kill", ran(execv1alpha1.ReasonMemoryLimitExceeded, ptr.To[int32](137), "SIGKILL", "", ""), nil, false,
			times(judge0Verdict{StatusID: 11, ExitCode: ptr.To[int32](137), Message: ptr.To("Memory limit exceeded")})},
		{"output limit: SIGXFSZ", ran(execv1alpha1.ReasonOutputLimitExceeded, ptr.To[int32](137), "SIGKILL", "yyyy", ""), nil, false,
			times(judge0Verdict{StatusID: 8, Stdout: ptr.To("yyyy"), ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](25), Message: ptr.To("Output limit exceeded")})},
		{"SIGSEGV", signaled(11, "SIGSEGV"), nil, false,
			times(judge0Verdict{StatusID: 7, ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](11), Message: ptr.To("Caught fatal signal 11")})},
		{"SIGXFSZ", signaled(25, "SIGXFSZ"), nil, false,
			times(judge0Verdict{StatusID: 8, ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](25), Message: ptr.To("Caught fatal signal 25")})},
		{"SIGFPE", signaled(8, "SIGFPE"), nil, false,
			times(judge0Verdict{StatusID: 9, ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](8), Message: ptr.To("Caught fatal signal 8")})},
		{"SIGABRT", signaled(6, "SIGABRT"), nil, false,
			times(judge0Verdict{StatusID: 10, ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](6), Message: ptr.To("Caught fatal signal 6")})},
		{"another signal", signaled(15, "SIGTERM"), nil, false,
			times(judge0Verdict{StatusID: 12, ExitCode: ptr.To[int32](0), ExitSignal: ptr.To[int32](15), Message: ptr.To("Caught fatal signal 15")})},
		{"compile error", compile(execv1alpha1.ReasonNonZeroExit, "main.c:1: error\n"), nil, false,
			judge0Verdict{StatusID: 6, CompileOutput: ptr.To("main.c:1: error\n")}},
		{"compile time limit", compile(execv1alpha1.ReasonTimeLimitExceeded, "partial"), nil, false,
			judge0Verdict{StatusID: 6, CompileOutput: ptr.To("Compilation time limit exceeded.")}},
		{"compile memory limit, silent", compile(execv1alpha1.ReasonMemoryLimitExceeded, ""), nil, false,
			judge0Verdict{StatusID: 6, CompileOutput: ptr.To("the compiler ran longer than 10s")}},
		{"warnings of a compile that passed stay", func() *execv1alpha1.CodeRunResult {
			r := ran(execv1alpha1.ReasonCompleted, ptr.To[int32](0), "", "", "")
			r.Compile = &execv1alpha1.CompileResult{Reason: execv1alpha1.ReasonCompleted, Stderr: "warning: unused\n"}
			return r
		}(), nil, false, times(judge0Verdict{StatusID: 3, CompileOutput: ptr.To("warning: unused\n"), ExitCode: ptr.To[int32](0)})},
		{"rejected", &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonRejected, Message: "no runtime for language \"cobol\""}, nil, false,
			judge0Verdict{StatusID: 13, Message: ptr.To("no runtime for language \"cobol\"")}},
		{"system error", &execv1alpha1.CodeRunResult{Reason: execv1alpha1.ReasonSystemError, Message: "the image could not be pulled"}, nil, false,
			judge0Verdict{StatusID: 13, Message: ptr.To("the image could not be pulled")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, judge0VerdictOf(tc.res, tc.expected, tc.redirect)); diff != "" {
				t.Errorf("verdict (-want +got):\n%s", diff)
			}
		})
	}
}

// TestJudge0Strip is Judge0's comparison rule on its own.
func TestJudge0Strip(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"a":             "a",
		"a \t\r\n":      "a",
		"a  \nb \n\n\n": "a\nb",
		"  a\n":         "  a",
		"a\n\nb":        "a\n\nb",
		"a\x00\n":       "a",
		"\n\n":          "",
		"a\v\f\n b":     "a\n b",
	} {
		if got := judge0Strip(in); got != want {
			t.Errorf("judge0Strip(%q) = %q, want %q", in, got, want)
		}
	}
}
