// Package report defines the one machine-readable result that the runner (cmd/runner)
// writes when a program ends, and that the operator reads back from the pod's termination
// message or log.
//
// The runner shares its container with untrusted code, so everything here is treated as
// untrusted input by the reader: Parse checks the marker, the reason vocabulary and every
// bound, and never trusts a field it cannot check.
package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Marker is the value of the "coderun" field that identifies a report line among other log
// lines. It carries the format version.
const Marker = "report/v1"

// TerminationMessageLimit is what the kubelet keeps of a container's termination message.
// A report that does not fit is written as a Summary there and in full to the log.
const TerminationMessageLimit = 4096

// MaxEncodedSize bounds a report the reader accepts: 6 output fields (3 of the program,
// 3 of the compile stage) of at most MaxOutputLimit bytes each, JSON-escaped (at most 6
// bytes per input byte), plus slack.
const MaxEncodedSize = 6*6*MaxOutputLimit + 64*1024

// MaxOutputLimit is the largest output limit (in bytes) the runner may be configured with.
const MaxOutputLimit = 256 * 1024

// MaxMessage bounds Report.Message, in bytes: Parse refuses a report with a longer one.
const MaxMessage = 4096

// Reason says how a run ended. The vocabulary is small and closed; the API documents it.
type Reason string

const (
	// Completed: the program exited with code 0 within every limit.
	Completed Reason = "Completed"
	// NonZeroExit: the program exited with a code other than 0 (a Python exception gives 1).
	NonZeroExit Reason = "NonZeroExit"
	// Signaled: the program was killed by a signal it raised or received (e.g. SIGSEGV),
	// not by a limit. The exit code is 128 + the signal number, as a shell reports it.
	Signaled Reason = "Signaled"
	// TimeLimitExceeded: the program ran past its wall-clock or CPU time limit and was killed.
	TimeLimitExceeded Reason = "TimeLimitExceeded"
	// MemoryLimitExceeded: the program used more memory than its limit and was killed.
	MemoryLimitExceeded Reason = "MemoryLimitExceeded"
	// OutputLimitExceeded: the program wrote more than the output limit and was killed;
	// the output up to the limit is kept.
	OutputLimitExceeded Reason = "OutputLimitExceeded"
	// SystemError: the platform, not the program, failed (the runner could not start the
	// interpreter, for instance). The message says what happened.
	SystemError Reason = "SystemError"
	// CompileError: the compile step did not end with exit code 0 (an error, a signal or
	// a limit); Report.Compile says how, and the program was not run. Only a Report's
	// reason, never a Stage's.
	CompileError Reason = "CompileError"
)

// Reasons lists every reason a runner may report.
var Reasons = []Reason{Completed, NonZeroExit, Signaled, TimeLimitExceeded, MemoryLimitExceeded, OutputLimitExceeded, SystemError, CompileError}

// Valid reports whether r is in the vocabulary.
func (r Reason) Valid() bool {
	for _, known := range Reasons {
		if r == known {
			return true
		}
	}
	return false
}

// Report is the runner's account of one run.
type Report struct {
	// Marker is always the constant Marker; it tells a report from other log lines.
	Marker string `json:"coderun"`
	// ExitCode is the program's exit code; 128+N when it was killed by signal N.
	ExitCode int `json:"exitCode"`
	// Signal names the signal that killed the program (e.g. "SIGKILL"), if one did.
	Signal string `json:"signal,omitempty"`
	Reason Reason `json:"reason"`
	// Message explains the reason in a sentence, for limits and system errors.
	Message string `json:"message,omitempty"`

	// Stdout, Stderr and Output (both streams interleaved in the order the runner read
	// them) hold at most the configured output limit in total; bytes that are not UTF-8
	// are replaced by U+FFFD.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Output string `json:"output"`
	// StdoutTruncated and StderrTruncated say that the stream had bytes dropped.
	StdoutTruncated bool `json:"stdoutTruncated,omitempty"`
	StderrTruncated bool `json:"stderrTruncated,omitempty"`

	// WallTimeMicros is the program's elapsed time, from start to exit.
	WallTimeMicros int64 `json:"wallTimeMicros"`
	// CPUTimeMicros is user plus system CPU time of the program and its children.
	CPUTimeMicros int64 `json:"cpuTimeMicros"`
	// PeakMemoryBytes is the largest resident set size the program reached.
	PeakMemoryBytes int64 `json:"peakMemoryBytes"`

	// OutputInLog is set on a Summary: the output fields were left out of the termination
	// message, and the full report is the last report line of the container's log.
	OutputInLog bool `json:"outputInLog,omitempty"`

	// NotRun says that no program was started: a warm pool member's runner ended without
	// a request it could run (none arrived in time, it was incomplete or malformed, or it
	// did not fit the member's shape). Only with reason SystemError, and nothing measured.
	// A reader may then give the run to another member or a new pod. Readers that predate
	// the field ignore it and see a SystemError.
	NotRun bool `json:"notRun,omitempty"`

	// Compile is how the compile step went, when one ran (before the program). With
	// reason CompileError it failed, the program was not run, and the fields above that
	// describe the program are empty. Readers that predate the field ignore it.
	Compile *Stage `json:"compile,omitempty"`
}

// Stage is how one step other than the program (the compiler) ended, with the same
// meaning and bounds as the Report fields of the same names. Its reason is never
// CompileError.
type Stage struct {
	Reason          Reason `json:"reason"`
	ExitCode        int    `json:"exitCode"`
	Signal          string `json:"signal,omitempty"`
	Message         string `json:"message,omitempty"`
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	Output          string `json:"output"`
	StdoutTruncated bool   `json:"stdoutTruncated,omitempty"`
	StderrTruncated bool   `json:"stderrTruncated,omitempty"`
	WallTimeMicros  int64  `json:"wallTimeMicros"`
	CPUTimeMicros   int64  `json:"cpuTimeMicros"`
	PeakMemoryBytes int64  `json:"peakMemoryBytes"`
}

// StageOf returns the fields of r that a Stage has: the runner runs a compiler as it runs
// a program, and keeps the result as a Stage.
func StageOf(r Report) Stage {
	return Stage{
		Reason: r.Reason, ExitCode: r.ExitCode, Signal: r.Signal, Message: r.Message,
		Stdout: r.Stdout, Stderr: r.Stderr, Output: r.Output,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		WallTimeMicros: r.WallTimeMicros, CPUTimeMicros: r.CPUTimeMicros, PeakMemoryBytes: r.PeakMemoryBytes,
	}
}

// Summary returns a copy of r without its output (nor the compile stage's), marked
// OutputInLog, small enough for a termination message.
func (r Report) Summary() Report {
	r.Stdout, r.Stderr, r.Output = "", "", ""
	if r.Compile != nil {
		c := *r.Compile
		c.Stdout, c.Stderr, c.Output = "", "", ""
		r.Compile = &c
	}
	r.OutputInLog = true
	return r
}

// Encode returns r as one line of JSON (no trailing newline), with the marker set.
func Encode(r Report) []byte {
	r.Marker = Marker
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The output is shown to people, not embedded in HTML: keep <, > and & readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		// Report holds only strings, ints, bools and a Stage of the same; encoding cannot fail.
		panic(fmt.Sprintf("encoding report: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// ForTerminationMessage returns what the runner writes to its termination message: the
// whole report when it fits, else its Summary.
func ForTerminationMessage(r Report) []byte {
	if full := Encode(r); len(full) <= TerminationMessageLimit {
		return full
	}
	return Encode(r.Summary())
}

// ErrNoReport means the input held no report line.
var ErrNoReport = errors.New("no coderun report found")

// Parse reads one report and checks it. It is safe on any input.
func Parse(data []byte) (Report, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Report{}, ErrNoReport
	}
	if len(data) > MaxEncodedSize {
		return Report{}, fmt.Errorf("report is %d bytes, more than the %d allowed", len(data), MaxEncodedSize)
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return Report{}, fmt.Errorf("decoding report: %w", err)
	}
	if r.Marker != Marker {
		return Report{}, fmt.Errorf("%w: marker is %q, want %q", ErrNoReport, r.Marker, Marker)
	}
	if err := r.validate(); err != nil {
		return Report{}, fmt.Errorf("invalid report: %w", err)
	}
	return r, nil
}

// FindInLog returns the last report line in a container log. Only the runner writes to
// its container's stdout and stderr (the program's streams are pipes), so the last
// report line is the runner's final word.
func FindInLog(log []byte) (Report, error) {
	for len(log) > 0 {
		i := bytes.LastIndexByte(bytes.TrimRight(log, "\n"), '\n')
		line := log[i+1:]
		log = log[:max(i, 0)]
		if !bytes.Contains(line, []byte(`"coderun"`)) {
			continue
		}
		if r, err := Parse(line); err == nil {
			return r, nil
		}
	}
	return Report{}, ErrNoReport
}

func (r Report) validate() error {
	if !r.Reason.Valid() {
		return fmt.Errorf("unknown reason %q", r.Reason)
	}
	if err := StageOf(r).validate(); err != nil {
		return err
	}
	programRan := r.ExitCode != 0 || r.Signal != "" || r.Stdout != "" || r.Stderr != "" || r.Output != "" ||
		r.StdoutTruncated || r.StderrTruncated || r.WallTimeMicros != 0 || r.CPUTimeMicros != 0 || r.PeakMemoryBytes != 0
	if r.NotRun {
		if r.Reason != SystemError {
			return fmt.Errorf("notRun with reason %s, not %s", r.Reason, SystemError)
		}
		if programRan || r.Compile != nil {
			return errors.New("notRun with an exit code, a signal, output, time or memory of a program, or a compile stage")
		}
	}
	if r.Compile != nil {
		if r.Compile.Reason == CompileError || !r.Compile.Reason.Valid() {
			return fmt.Errorf("compile: reason %q is not a stage's", r.Compile.Reason)
		}
		if err := r.Compile.validate(); err != nil {
			return fmt.Errorf("compile: %w", err)
		}
		// The program runs only after a compile that completed.
		if r.Compile.Reason != Completed && r.Reason != CompileError && r.Reason != SystemError {
			return fmt.Errorf("a compile stage that ended %s, with reason %s", r.Compile.Reason, r.Reason)
		}
	}
	if r.Reason == CompileError {
		if r.Compile == nil || r.Compile.Reason == Completed {
			return errors.New("reason CompileError without a failed compile stage")
		}
		if programRan {
			return errors.New("reason CompileError with an exit code, a signal, output, time or memory of a program")
		}
	}
	return nil
}

// validate checks the bounds that a Stage and a Report share.
func (s Stage) validate() error {
	if s.ExitCode < 0 || s.ExitCode > 255 {
		return fmt.Errorf("exit code %d is outside 0..255", s.ExitCode)
	}
	if s.WallTimeMicros < 0 || s.CPUTimeMicros < 0 || s.PeakMemoryBytes < 0 {
		return errors.New("negative time or memory")
	}
	if len(s.Signal) > 16 || len(s.Message) > MaxMessage {
		return errors.New("signal or message too long")
	}
	for name, v := range map[string]string{"stdout": s.Stdout, "stderr": s.Stderr, "output": s.Output} {
		if len(v) > MaxOutputLimit*utf8.UTFMax {
			return fmt.Errorf("%s is %d bytes, more than allowed", name, len(v))
		}
	}
	return nil
}
