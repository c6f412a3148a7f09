package httpapi

import (
	"fmt"
	"math"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/store"
)

// Judge0 CE's statuses (app/enumerations/status.rb): the same ids and descriptions, which
// clients hard-code.
const (
	j0InQueue       = store.Judge0InQueue
	j0Processing    = store.Judge0Processing
	j0Accepted      = 3
	j0WrongAnswer   = 4
	j0TimeLimit     = 5
	j0CompileError  = 6
	j0SIGSEGV       = 7
	j0SIGXFSZ       = 8
	j0SIGFPE        = 9
	j0SIGABRT       = 10
	j0NZEC          = 11
	j0RuntimeOther  = 12
	j0InternalError = 13
	j0ExecFormat    = 14
)

// judge0Statuses are GET /statuses, in id order.
var judge0Statuses = []judge0Status{
	{j0InQueue, "In Queue"},
	{j0Processing, "Processing"},
	{j0Accepted, "Accepted"},
	{j0WrongAnswer, "Wrong Answer"},
	{j0TimeLimit, "Time Limit Exceeded"},
	{j0CompileError, "Compilation Error"},
	{j0SIGSEGV, "Runtime Error (SIGSEGV)"},
	{j0SIGXFSZ, "Runtime Error (SIGXFSZ)"},
	{j0SIGFPE, "Runtime Error (SIGFPE)"},
	{j0SIGABRT, "Runtime Error (SIGABRT)"},
	{j0NZEC, "Runtime Error (NZEC)"},
	{j0RuntimeOther, "Runtime Error (Other)"},
	{j0InternalError, "Internal Error"},
	{j0ExecFormat, "Exec Format Error"},
}

type judge0Status struct {
	ID          int32  `json:"id"`
	Description string `json:"description"`
}

func judge0StatusOf(id int32) judge0Status {
	if id >= 1 && int(id) <= len(judge0Statuses) {
		return judge0Statuses[id-1]
	}
	return judge0Status{ID: id, Description: "Unknown"}
}

// Signal numbers (Linux) that Judge0 gives statuses of their own.
const (
	sigABRT = 6
	sigFPE  = 8
	sigKILL = 9
	sigSEGV = 11
	sigXFSZ = 25
)

// judge0Verdict is a finished run in Judge0's terms: the result columns of a submission.
type judge0Verdict = store.Judge0Result

// judge0VerdictOf turns a CodeRun's result into Judge0's status and fields, as Judge0's
// worker (isolate_job.rb) does from isolate's: see judge0_status_test.go for each case.
//   - Completed: Accepted (3), or Wrong Answer (4) when expected is set and differs from
//     stdout by more than trailing whitespace (judge0OutputsMatch).
//   - CompileError: Compilation Error (6), compile_output the compiler's output ("Compilation
//     time limit exceeded." when it timed out), and no program fields, all null.
//   - TimeLimitExceeded: 5; MemoryLimitExceeded: NZEC (11) with exit code 137, which is how
//     Judge0 reports an out-of-memory kill (it has no memory status); OutputLimitExceeded:
//     SIGXFSZ (8), which is what a Judge0 program writing past its file size limit gets.
//   - Signaled: 7, 8, 9 or 10 for SIGSEGV, SIGXFSZ, SIGFPE and SIGABRT, 12 for any other.
//   - NonZeroExit: NZEC (11) with the exit code.
//   - Rejected and SystemError: Internal Error (13) with our message: the platform did not
//     run the program (a Runtime not Ready, a pod that could not start).
//
// Judge0 turns empty outputs into null, and so does this.
func judge0VerdictOf(res *execv1alpha1.CodeRunResult, expected *string, redirectStderr bool) judge0Verdict {
	var v judge0Verdict
	if res.Compile != nil {
		out := res.Compile.Output
		if out == "" {
			out = res.Compile.Stdout + res.Compile.Stderr
		}
		v.CompileOutput = nonEmpty(out)
	}
	switch res.Reason {
	case execv1alpha1.ReasonCompileError:
		v.StatusID = j0CompileError
		if res.Compile != nil && res.Compile.Reason == execv1alpha1.ReasonTimeLimitExceeded {
			v.CompileOutput = ptr.To("Compilation time limit exceeded.")
		} else if v.CompileOutput == nil {
			v.CompileOutput = nonEmpty(compileMessage(res))
		}
		return v
	case execv1alpha1.ReasonRejected, execv1alpha1.ReasonSystemError:
		v.StatusID = j0InternalError
		v.Message = nonEmpty(res.Message)
		return v
	}

	// The program ran.
	if redirectStderr {
		v.Stdout = nonEmpty(res.Output)
	} else {
		v.Stdout, v.Stderr = nonEmpty(res.Stdout), nonEmpty(res.Stderr)
	}
	v.Time, v.WallTime = judge0Seconds(res.CPUTime), judge0Seconds(res.WallTime)
	if res.PeakMemory != nil {
		v.Memory = ptr.To((res.PeakMemory.Value() + 1023) / 1024)
	}
	// isolate gives no exit code when a signal ended the program; Judge0 answers 0 then.
	v.ExitCode = ptr.To[int32](0)
	signal := int32(0)
	if res.ExitCode != nil && *res.ExitCode > 128 && res.Signal != "" {
		signal = *res.ExitCode - 128
	}
	switch res.Reason {
	case execv1alpha1.ReasonCompleted:
		v.StatusID = j0Accepted
		stdout := res.Stdout
		if redirectStderr {
			stdout = res.Output
		}
		if expected != nil && !judge0OutputsMatch(*expected, stdout) {
			v.StatusID = j0WrongAnswer
		}
	case execv1alpha1.ReasonNonZeroExit:
		v.StatusID = j0NZEC
		v.ExitCode = res.ExitCode
		if v.ExitCode == nil {
			v.ExitCode = ptr.To[int32](1)
		}
		v.Message = ptr.To(fmt.Sprintf("Exited with error status %d", *v.ExitCode))
	case execv1alpha1.ReasonTimeLimitExceeded:
		v.StatusID = j0TimeLimit
		v.ExitSignal = ptr.To[int32](sigKILL)
		v.Message = ptr.To("Time limit exceeded")
	case execv1alpha1.ReasonMemoryLimitExceeded:
		v.StatusID = j0NZEC
		v.ExitCode = ptr.To[int32](128 + sigKILL)
		v.Message = ptr.To("Memory limit exceeded")
	case execv1alpha1.ReasonOutputLimitExceeded:
		v.StatusID = j0SIGXFSZ
		v.ExitSignal = ptr.To[int32](sigXFSZ)
		v.Message = ptr.To("Output limit exceeded")
	case execv1alpha1.ReasonSignaled:
		v.StatusID = judge0SignalStatus(signal)
		if signal > 0 {
			v.ExitSignal = ptr.To(signal)
			v.Message = ptr.To(fmt.Sprintf("Caught fatal signal %d", signal))
		} else {
			v.Message = nonEmpty(res.Message)
		}
	default:
		// A reason this API does not know yet: the platform's business, with its message.
		v.StatusID = j0InternalError
		v.Message = nonEmpty(strings.TrimSpace(string(res.Reason) + ": " + res.Message))
	}
	return v
}

// judge0SignalStatus is Judge0's status for a program killed by signal
// (Status.find_runtime_error_by_status_code).
func judge0SignalStatus(signal int32) int32 {
	switch signal {
	case sigSEGV:
		return j0SIGSEGV
	case sigXFSZ:
		return j0SIGXFSZ
	case sigFPE:
		return j0SIGFPE
	case sigABRT:
		return j0SIGABRT
	default:
		return j0RuntimeOther
	}
}

// judge0OutputsMatch is Judge0's comparison of expected_output and stdout: equal after
// stripping trailing whitespace from every line and from the whole text (isolate_job.rb
// strip: split on "\n", rstrip each line, join, rstrip). Leading whitespace and blank lines
// in the middle count.
func judge0OutputsMatch(expected, stdout string) bool {
	return judge0Strip(expected) == judge0Strip(stdout)
}

// rubyWhitespace is what Ruby's String#rstrip removes: whitespace and NUL.
const rubyWhitespace = " \t\n\v\f\r\x00"

func judge0Strip(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, rubyWhitespace)
	}
	return strings.TrimRight(strings.Join(lines, "\n"), rubyWhitespace)
}

func compileMessage(res *execv1alpha1.CodeRunResult) string {
	if res.Compile != nil && res.Compile.Message != "" {
		return res.Compile.Message
	}
	return res.Message
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// judge0Seconds is a duration in seconds to the millisecond, nil when unknown.
func judge0Seconds(d *metav1.Duration) *float64 {
	if d == nil {
		return nil
	}
	return ptr.To(math.Round(d.Seconds()*1000) / 1000)
}
