package httpapi

import (
	"math"
	"time"

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
	// SubmissionID is set by /submit only: the new id, or -1 when not saved.
	SubmissionID *int64 `json:"submission_id,omitempty"`
	Error        string `json:"error,omitempty"`
	// uid is the CodeRun's UID, which /submit saves once ("" when it never got one).
	uid types.UID
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
	if res.PeakMemory != nil {
		// The operator records peak memory in Ki; round anything else up to whole KiB.
		out.Memory = (res.PeakMemory.Value() + 1023) / 1024
	}
	return out
}

// failedResponse is the answer for a run that has no result of its own.
func failedResponse(name string, reason execv1alpha1.ResultReason, message string) runResponse {
	return runResponse{Reason: string(reason), Message: message, Status: statusFailed, Name: name}
}

// submissionJSON is a saved submission as the API shows it.
type submissionJSON struct {
	ID        int64     `json:"id"`
	Code      string    `json:"code"`
	Stdin     string    `json:"stdin"`
	Language  string    `json:"language"`
	Output    string    `json:"output"`
	Stdout    string    `json:"stdout"`
	Stderr    string    `json:"stderr"`
	ExitCode  *int32    `json:"exit_code"`
	Time      float64   `json:"time"`
	Memory    int64     `json:"memory"`
	Reason    string    `json:"reason"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func submissionFor(s *store.Submission) submissionJSON {
	return submissionJSON{
		ID: s.ID, Code: s.Code, Stdin: s.Stdin, Language: s.Language,
		Output: s.Output, Stdout: s.Stdout, Stderr: s.Stderr, ExitCode: s.ExitCode,
		Time: s.TimeSeconds, Memory: s.MemoryKiB, Reason: s.Reason, Name: s.RunName,
		CreatedAt: s.CreatedAt.UTC(),
	}
}

// submissionOf is what /submit saves of a run.
func submissionOf(spec execv1alpha1.CodeRunSpec, r runResponse) *store.Submission {
	return &store.Submission{
		Code: spec.Source, Stdin: spec.Stdin, Language: string(spec.Language),
		Output: r.Output, Stdout: r.Stdout, Stderr: r.Stderr, ExitCode: r.ExitCode,
		TimeSeconds: r.Time, MemoryKiB: r.Memory, Reason: r.Reason, RunName: r.Name,
		RunUID: uidOrNil(r.uid),
	}
}

func uidOrNil(uid types.UID) *string {
	if uid == "" {
		return nil
	}
	s := string(uid)
	return &s
}
