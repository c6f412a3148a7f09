package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of a CodeRun that the schema enforces. The operator's configuration may set lower
// maxima for limits; see Limits.
const (
	// MaxSourceBytes bounds spec.source, in bytes of UTF-8.
	MaxSourceBytes = 65536
	// MaxStdinBytes bounds spec.stdin, in bytes of UTF-8.
	MaxStdinBytes = 65536
)

// Language is the programming language of a CodeRun's source: the language or an alias of
// a Runtime.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=32
// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9+#._-]*$`
type Language string

// LanguagePython is the default language. Where no Runtime offers python, the operator runs
// it with its own runnerImage (CPython 3.13 with numpy, pandas 2.x and scipy 1.x).
const LanguagePython Language = "python"

// Bounds of spec.files and spec.args.
const (
	// MaxFiles bounds spec.files.
	MaxFiles = 16
	// MaxArgs bounds spec.args.
	MaxArgs = 32
)

// CodeRunSpec is the program to run and the limits it runs under. It is immutable: to run
// something else, create another CodeRun.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable; create a new CodeRun instead"
// +kubebuilder:validation:XValidation:rule="!has(self.files) || size(bytes(self.source)) + self.files.map(f, size(bytes(f.content))).sum() <= 65536",message="source and files must be at most 65536 bytes together"
type CodeRunSpec struct {
	// language is the language of source: the language or an alias of a Runtime (kubectl get
	// runtimes lists them). A language no Runtime offers ends the run as Rejected, with a
	// message naming the languages there are. Defaults to python.
	// +optional
	// +kubebuilder:default=python
	Language Language `json:"language,omitempty"`

	// version is a semantic version range, such as 3.13, 3.x, >=17 or 14.2.0; the highest
	// version of the language that it matches runs the program. Left out, the highest
	// version runs. A range that nothing matches ends the run as Rejected.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Version string `json:"version,omitempty"`

	// source is the program, at most 65536 bytes of UTF-8 (together with files). It is
	// written into the run's working directory under the Runtime's sourceFile name (main.py
	// for python).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="size(bytes(self)) <= 65536",message="source must be at most 65536 bytes"
	Source string `json:"source"`

	// files are more files beside the main one (modules, headers, data), written into the
	// working directory before the program is compiled or run. Their names must differ from
	// each other and from the Runtime's sourceFile. Together with source they hold at most
	// 65536 bytes.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Files []SourceFile `json:"files,omitempty"`

	// args are given to the program after the Runtime's run command.
	// +optional
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`

	// stdin is given to the program as its standard input, at most 65536 bytes of UTF-8.
	// The program sees end-of-file after it.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="size(bytes(self)) <= 65536",message="stdin must be at most 65536 bytes"
	Stdin string `json:"stdin,omitempty"`

	// limits bound the run. Each one left out takes the operator's default; each one above
	// the operator's maximum fails the run with reason Rejected. status.limits shows the
	// limits that applied.
	// +optional
	Limits Limits `json:"limits,omitzero"`

	// compileLimits bound the compile step of a compiled language. Each one left out takes
	// the Runtime's compile limit, which is also its maximum: asking for more ends the run
	// as Rejected. Ignored for languages that are not compiled.
	// +optional
	CompileLimits *CompileLimits `json:"compileLimits,omitempty"`
}

// SourceFile is one more file of a program.
type SourceFile struct {
	// name is the file's name in the working directory: letters, digits, '.', '_' and '-',
	// not starting with '.' or '-'.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9._-]*$`
	Name string `json:"name"`
	// content is the file's text, UTF-8.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	Content string `json:"content"`
}

// CompileLimits bound a compile step.
type CompileLimits struct {
	// timeoutSeconds is the compiler's wall-clock limit.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`
	// memory is the compiler's memory limit.
	// +optional
	// +kubebuilder:validation:XValidation:rule="isQuantity(string(self)) && quantity(string(self)).compareTo(quantity('16Mi')) >= 0 && quantity(string(self)).compareTo(quantity('16Gi')) <= 0",message="memory must be a quantity between 16Mi and 16Gi"
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// Limits bound one run. The schema accepts a timeout of 1-3600 s, memory of 16Mi-64Gi and
// CPU of 10m-64 (the constants MinTimeoutSeconds to MaxCPU); the operator's configuration
// sets the defaults and (usually lower) maxima.
// As shipped: timeout 10 s (max 60 s), memory 256Mi (max 1Gi), CPU 1 (max 2).
type Limits struct {
	// timeoutSeconds is the wall-clock time the program may run, from the moment it starts
	// (time spent queued or starting the pod does not count). A program still running then
	// is killed and the run ends with reason TimeLimitExceeded.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3600
	TimeoutSeconds *int32 `json:"timeoutSeconds,omitempty"`

	// memory is the most memory the program may use (the pod's memory limit, which equals
	// its request). A program that needs more is killed and the run ends with reason
	// MemoryLimitExceeded.
	// +optional
	// +kubebuilder:validation:XValidation:rule="isQuantity(string(self))",message="memory must be a quantity such as 512Mi or 1Gi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || (quantity(string(self)).compareTo(quantity('16Mi')) >= 0 && quantity(string(self)).compareTo(quantity('64Gi')) <= 0)",message="memory must be between 16Mi and 64Gi"
	Memory *resource.Quantity `json:"memory,omitempty"`

	// cpu is the CPU the program may use (the pod's CPU limit, which equals its request).
	// +optional
	// Write a fraction in millicores or as a string (500m or "0.5"): the schema takes an
	// integer or a string, so the YAML number 0.5 is refused.
	// +kubebuilder:validation:XValidation:rule="isQuantity(string(self))",message="cpu must be a quantity such as 500m or 2"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(string(self)) || (quantity(string(self)).compareTo(quantity('10m')) >= 0 && quantity(string(self)).compareTo(quantity('64')) <= 0)",message="cpu must be between 10m and 64"
	CPU *resource.Quantity `json:"cpu,omitempty"`
}

// CodeRunPhase is a coarse summary of where a run is.
// +kubebuilder:validation:Enum=Queued;Running;Succeeded;Failed
type CodeRunPhase string

const (
	// PhaseQueued: waiting for a free run slot (the operator runs a bounded number at once,
	// oldest first).
	PhaseQueued CodeRunPhase = "Queued"
	// PhaseRunning: the run has a slot and its Job; its pod is starting or running.
	PhaseRunning CodeRunPhase = "Running"
	// PhaseSucceeded: the program exited with code 0 within its limits (reason Completed).
	PhaseSucceeded CodeRunPhase = "Succeeded"
	// PhaseFailed: the run ended any other way; status.result.reason says how.
	PhaseFailed CodeRunPhase = "Failed"
)

// ResultReason says how a run ended.
// +kubebuilder:validation:Enum=Completed;NonZeroExit;Signaled;TimeLimitExceeded;MemoryLimitExceeded;OutputLimitExceeded;CompileError;Rejected;SystemError
type ResultReason string

const (
	// ReasonCompleted: the program exited with code 0 within every limit.
	ReasonCompleted ResultReason = "Completed"
	// ReasonNonZeroExit: the program exited with another code (an uncaught Python
	// exception, including a SyntaxError, gives 1).
	ReasonNonZeroExit ResultReason = "NonZeroExit"
	// ReasonSignaled: the program was killed by a signal that no limit sent (SIGSEGV, or
	// one it sent itself); exitCode is 128 + the signal number and signal names it.
	ReasonSignaled ResultReason = "Signaled"
	// ReasonTimeLimitExceeded: the program ran past limits.timeoutSeconds (or its CPU time
	// backstop) and was killed. Output written before that is kept.
	ReasonTimeLimitExceeded ResultReason = "TimeLimitExceeded"
	// ReasonMemoryLimitExceeded: the program needed more than limits.memory and was killed.
	ReasonMemoryLimitExceeded ResultReason = "MemoryLimitExceeded"
	// ReasonOutputLimitExceeded: the program wrote more than the operator's output limit
	// (64 KiB of stdout and stderr together, as shipped) and was killed; the output up to
	// the limit is kept and marked truncated.
	ReasonOutputLimitExceeded ResultReason = "OutputLimitExceeded"
	// ReasonCompileError: the compile step failed (the compiler exited with another code
	// than 0, or hit a limit) and the program was not run. status.result.compile holds the
	// compiler's output and its own reason.
	ReasonCompileError ResultReason = "CompileError"
	// ReasonRejected: the operator did not run the program: a limit exceeds its configured
	// maximum, no Runtime offers the language or version, or the Runtime is not Ready. The
	// message says which.
	ReasonRejected ResultReason = "Rejected"
	// ReasonSystemError: the platform, not the program, failed: the pod could not be
	// scheduled or its image pulled in time, the Job or pod was deleted mid-run, or the
	// runner could not report. The message says which.
	ReasonSystemError ResultReason = "SystemError"
)

// ConditionType is the type of a CodeRun's condition.
type ConditionType string

// String returns t as metav1.Condition.Type and meta.FindStatusCondition take it.
func (t ConditionType) String() string { return string(t) }

// Condition types of a CodeRun.
const (
	// ConditionAdmitted is True once the run holds a run slot and its Job exists, and
	// False (reason WaitingForSlot) while it waits in the queue. A rejected run has it
	// False with reason Rejected.
	ConditionAdmitted ConditionType = "Admitted"
	// ConditionFinished is True once the run has a result; its reason is the result's
	// reason.
	ConditionFinished ConditionType = "Finished"
)

// ConditionReason is the reason of a CodeRun's condition: one of the constants below, or,
// on Finished (and on Admitted of a rejected run), the result's ResultReason.
type ConditionReason string

// String returns r as metav1.Condition.Reason takes it.
func (r ConditionReason) String() string { return string(r) }

// Condition reasons that are not ResultReasons.
const (
	// ReasonWaitingForSlot (Admitted False): every run slot is taken; the run starts when
	// one frees up.
	ReasonWaitingForSlot ConditionReason = "WaitingForSlot"
	// ReasonSlotAssigned (Admitted True): the run got a slot and its Job was created.
	ReasonSlotAssigned ConditionReason = "SlotAssigned"
	// ReasonMemberClaimed (Admitted True): the run got a slot and took a member of a
	// CodeRunPool, whose pod had already started.
	ReasonMemberClaimed ConditionReason = "MemberClaimed"
	// ReasonInProgress (Finished False): the run has no result yet.
	ReasonInProgress ConditionReason = "InProgress"
)

// ConditionReason returns the result's reason as the reason of a condition.
func (r ResultReason) ConditionReason() ConditionReason { return ConditionReason(r) }

// RunPath says how a run's program was started.
// +kubebuilder:validation:Enum=Cold;Warm
type RunPath string

const (
	// PathCold: the operator created a Job for the run and its pod started the program.
	PathCold RunPath = "Cold"
	// PathWarm: a CodeRunPool's member, a Job whose pod had already started, took the run
	// and received the program over pods/attach.
	PathWarm RunPath = "Warm"
)

// CodeRunStatus is what the operator observed of a run.
type CodeRunStatus struct {
	// phase is Queued, Running, Succeeded or Failed.
	// +optional
	Phase CodeRunPhase `json:"phase,omitempty"`

	// conditions are Admitted and Finished, each with the generation it describes.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// limits are the limits the run got: spec.limits with the operator's defaults filled in.
	// +optional
	Limits *Limits `json:"limits,omitempty"`

	// jobName is the run's Job, in the CodeRun's namespace. The Job is owned by the CodeRun
	// and deleted with it, or some minutes after the run ends.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// podName is the pod that ran the program.
	// +optional
	PodName string `json:"podName,omitempty"`

	// path is Warm when the program ran in a member of a CodeRunPool (pool names it), and
	// Cold when it ran in a Job created for this run.
	// +optional
	Path RunPath `json:"path,omitempty"`

	// runtime is the Runtime that ran the program, once the run was admitted.
	// +optional
	Runtime *RuntimeRef `json:"runtime,omitempty"`

	// pool is the CodeRunPool whose member ran the program, on the warm path.
	// +optional
	Pool string `json:"pool,omitempty"`

	// startTime is when the program's container started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the operator recorded the result.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// result is set once the run has ended, however it ended.
	// +optional
	Result *CodeRunResult `json:"result,omitempty"`
}

// RuntimeRef names the Runtime a run used, and what it resolved to.
type RuntimeRef struct {
	// name of the Runtime object; empty for the operator's built-in python.
	// +optional
	Name string `json:"name,omitempty"`
	// language of the Runtime (spec.language may have been an alias).
	// +optional
	Language string `json:"language,omitempty"`
	// version of the Runtime.
	// +optional
	Version string `json:"version,omitempty"`
	// image the program ran in.
	// +optional
	Image string `json:"image,omitempty"`
}

// CompileResult is how a compile step ended and what the compiler wrote. Compiler output
// never mixes with the program's.
type CompileResult struct {
	// reason is Completed when the compiler exited with 0; NonZeroExit, Signaled,
	// TimeLimitExceeded, MemoryLimitExceeded or OutputLimitExceeded otherwise (and the
	// run's reason is then CompileError).
	// +required
	Reason ResultReason `json:"reason"`
	// message explains the reason in a sentence when it is a limit.
	// +optional
	Message string `json:"message,omitempty"`
	// exitCode is the compiler's exit code, 128 + N when signal N killed it.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// signal names the signal that killed the compiler.
	// +optional
	Signal string `json:"signal,omitempty"`
	// output is the compiler's stdout and stderr together, in the order it wrote them.
	// +optional
	Output string `json:"output,omitempty"`
	// stdout is what the compiler wrote to its standard output.
	// +optional
	Stdout string `json:"stdout,omitempty"`
	// stderr is what the compiler wrote to its standard error (its diagnostics, mostly).
	// +optional
	Stderr string `json:"stderr,omitempty"`
	// outputTruncated says that bytes were dropped from output, stdout or stderr.
	// +optional
	OutputTruncated bool `json:"outputTruncated,omitempty"`
	// wallTime is the compiler's elapsed time.
	// +optional
	WallTime *metav1.Duration `json:"wallTime,omitempty"`
	// cpuTime is the CPU time the compiler and its children used.
	// +optional
	CPUTime *metav1.Duration `json:"cpuTime,omitempty"`
	// peakMemory is the largest resident memory the compiler reached, in Ki.
	// +optional
	PeakMemory *resource.Quantity `json:"peakMemory,omitempty"`
}

// CodeRunResult is how a run ended and what the program wrote.
//
// Output bounds: the runner keeps at most the operator's output limit (64 KiB as shipped,
// 256 KiB at most) of stdout and stderr together; stdout, stderr and output each hold at
// most that many bytes. Bytes that are not valid UTF-8 are shown as U+FFFD. If the whole
// result would not fit comfortably in one Kubernetes object (about 1.5 MB in etcd), the
// operator shortens stdout and stderr first, then output, and marks them truncated.
type CodeRunResult struct {
	// reason says how the run ended: Completed, NonZeroExit, Signaled, TimeLimitExceeded,
	// MemoryLimitExceeded, OutputLimitExceeded, CompileError, Rejected or SystemError.
	// +required
	Reason ResultReason `json:"reason"`

	// message explains the reason in a sentence when it is not Completed or NonZeroExit.
	// +optional
	Message string `json:"message,omitempty"`

	// exitCode is the program's exit code, 128 + N when signal N killed it. It is unset
	// when the program never ran (Rejected, most SystemErrors).
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// signal names the signal that killed the program, such as SIGKILL or SIGSEGV.
	// +optional
	Signal string `json:"signal,omitempty"`

	// output is stdout and stderr together, in the order the program wrote them.
	// +optional
	Output string `json:"output,omitempty"`

	// stdout is what the program wrote to its standard output.
	// +optional
	Stdout string `json:"stdout,omitempty"`

	// stderr is what the program wrote to its standard error (tracebacks go here).
	// +optional
	Stderr string `json:"stderr,omitempty"`

	// outputTruncated, stdoutTruncated and stderrTruncated say that bytes were dropped from
	// the field of that name.
	// +optional
	OutputTruncated bool `json:"outputTruncated,omitempty"`
	// +optional
	StdoutTruncated bool `json:"stdoutTruncated,omitempty"`
	// +optional
	StderrTruncated bool `json:"stderrTruncated,omitempty"`

	// wallTime is the program's elapsed time from start to exit, to the millisecond.
	// +optional
	WallTime *metav1.Duration `json:"wallTime,omitempty"`

	// cpuTime is the CPU time (user and system) the program and its children used.
	// +optional
	CPUTime *metav1.Duration `json:"cpuTime,omitempty"`

	// peakMemory is the largest resident memory the program reached, in Ki.
	// +optional
	PeakMemory *resource.Quantity `json:"peakMemory,omitempty"`

	// compile is the result of the compile step, for a compiled language whose compiler
	// ran. The fields above are the program's own (empty when it did not run).
	// +optional
	Compile *CompileResult `json:"compile,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=crun,categories=coderun
// +kubebuilder:printcolumn:name="Language",type=string,JSONPath=`.spec.language`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Exit",type=integer,JSONPath=`.status.result.exitCode`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.result.reason`
// +kubebuilder:printcolumn:name="Time",type=string,JSONPath=`.status.result.wallTime`
// +kubebuilder:printcolumn:name="Memory",type=string,JSONPath=`.status.result.peakMemory`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.path`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// CodeRun is one run of a program in a locked-down Kubernetes Job: no network, no
// Kubernetes API, no privileges, bounded time, memory, processes and output. Its status
// holds the program's output, exit code, time and memory.
type CodeRun struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the program and its limits.
	// +required
	Spec CodeRunSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status CodeRunStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// CodeRunList is a list of CodeRuns.
type CodeRunList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []CodeRun `json:"items"`
}
