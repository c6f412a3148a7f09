package httpapi

import (
	"math"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/store"
)

// runResponse is the answer of /execute and /submit (and of a run that outlived its
// bound, with Error set).
type runResponse struct {
	// Output is stdout and stderr interleaved in the order the program wrote them.
	Output string `json:"output"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// Time is the program's wall time in seconds (millisecond precision).
	Time float64 `json:"time"`
	// CPUTime is user + system CPU time in seconds.
	CPUTime float64 `json:"cpu_time"`
	// Memory is peak memory in KiB.
	Memory int64 `json:"memory"`
	// ExitCode is nil when the program never ran.
	ExitCode  *int32 `json:"exit_code"`
	Signal    string `json:"signal,omitempty"`
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	Status    string `json:"status"`
	Truncated bool   `json:"truncated"`
	// Name is the CodeRun that ran the program, in the runs namespace.
	Name string `json:"name"`
	// Language and Version are those of the Runtime that ran the program (the language
	// asked for, and "", when it never ran).
	Language string `json:"language"`
	Version  string `json:"version"`
	// Compile is the compile step's result; nil (null) when nothing was compiled.
	Compile *compileResponse `json:"compile"`
	// SubmissionID is set by /submit only: the new id, or -1 when not saved.
	SubmissionID *int64 `json:"submission_id,omitempty"`
	Error        string `json:"error,omitempty"`
	// uid is the CodeRun's UID, which /submit saves once ("" when it never got one).
	uid types.UID
}

// compileResponse is a compile step's result, in the units of runResponse.
type compileResponse struct {
	Output   string  `json:"output"`
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	ExitCode *int32  `json:"exit_code"`
	Signal   string  `json:"signal,omitempty"`
	Reason   string  `json:"reason"`
	Message  string  `json:"message"`
	Time     float64 `json:"time"`
	CPUTime  float64 `json:"cpu_time"`
	Memory   int64   `json:"memory"`
	// Truncated says that the compiler wrote more than was kept.
	Truncated bool `json:"truncated"`
}

const (
	statusSucceeded = "Succeeded"
	statusFailed    = "Failed"
)

func seconds(d *metav1.Duration) float64 {
	if d == nil {
		return 0
	}
	return math.Round(d.Seconds()*1000) / 1000
}

// responseFor turns a finished CodeRun into the API's answer.
func responseFor(run *execv1alpha1.CodeRun) runResponse {
	res := run.Status.Result
	out := runResponse{
		Output: res.Output, Stdout: res.Stdout, Stderr: res.Stderr,
		Time: seconds(res.WallTime), CPUTime: seconds(res.CPUTime),
		ExitCode: res.ExitCode, Signal: res.Signal,
		Reason: string(res.Reason), Message: res.Message,
		Status:    statusFailed,
		Truncated: res.OutputTruncated || res.StdoutTruncated || res.StderrTruncated,
		Name:      run.Name,
		uid:       run.UID,
	}
	if res.Reason == execv1alpha1.ReasonCompleted {
		out.Status = statusSucceeded
	}
	out.Memory = kib(res.PeakMemory)
	out.Language, out.Version = string(run.Spec.Language), ""
	if rt := run.Status.Runtime; rt != nil && rt.Language != "" {
		out.Language, out.Version = rt.Language, rt.Version
	}
	if c := res.Compile; c != nil {
		out.Compile = &compileResponse{
			Output: c.Output, Stdout: c.Stdout, Stderr: c.Stderr, ExitCode: c.ExitCode, Signal: c.Signal,
			Reason: string(c.Reason), Message: c.Message, Time: seconds(c.WallTime), CPUTime: seconds(c.CPUTime),
			Memory: kib(c.PeakMemory), Truncated: c.OutputTruncated,
		}
	}
	return out
}

// kib is a peak memory in whole KiB: the operator records it in Ki; anything else is
// rounded up.
func kib(q *resource.Quantity) int64 {
	if q == nil {
		return 0
	}
	return (q.Value() + 1023) / 1024
}

// failedResponse is the answer for a run that has no result of its own.
func failedResponse(run *execv1alpha1.CodeRun, reason execv1alpha1.ResultReason, message string) runResponse {
	return runResponse{Reason: string(reason), Message: message, Status: statusFailed, Name: run.Name, Language: string(run.Spec.Language)}
}

// submissionJSON is a saved submission as the API shows it.
type submissionJSON struct {
	ID        int64     `json:"id"`
	Code      string    `json:"code"`
	Stdin     string    `json:"stdin"`
	Language  string    `json:"language"`
	Version   string    `json:"version"`
	Output    string    `json:"output"`
	Stdout    string    `json:"stdout"`
	Stderr    string    `json:"stderr"`
	ExitCode  *int32    `json:"exit_code"`
	Time      float64   `json:"time"`
	Memory    int64     `json:"memory"`
	Reason    string    `json:"reason"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// CompileOutput is what the compiler wrote ("" when nothing was compiled).
	CompileOutput string `json:"compile_output"`
}

func submissionFor(s *store.Submission) submissionJSON {
	return submissionJSON{
		ID: s.ID, Code: s.Code, Stdin: s.Stdin, Language: s.Language, Version: s.Version, CompileOutput: s.CompileOutput,
		Output: s.Output, Stdout: s.Stdout, Stderr: s.Stderr, ExitCode: s.ExitCode,
		Time: s.TimeSeconds, Memory: s.MemoryKiB, Reason: s.Reason, Name: s.RunName,
		CreatedAt: s.CreatedAt.UTC(),
	}
}

// submissionOf is what /submit saves of a run.
func submissionOf(spec execv1alpha1.CodeRunSpec, r runResponse) *store.Submission {
	sub := &store.Submission{
		Code: spec.Source, Stdin: spec.Stdin, Language: r.Language, Version: r.Version,
		Output: r.Output, Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode,
		TimeSeconds: r.Time, MemoryKiB: r.Memory, Reason: r.Reason, RunName: r.Name,
		RunUID: uidOrNil(r.uid),
	}
	if sub.Language == "" {
		sub.Language = string(spec.Language)
	}
	if r.Compile != nil {
		sub.CompileOutput = r.Compile.Output
	}
	return sub
}

func uidOrNil(uid types.UID) *string {
	if uid == "" {
		return nil
	}
	s := string(uid)
	return &s
}
