package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RuntimeSpec describes one language at one version: the image that runs it, how a program
// is compiled (if it is) and run, and a smoke test that proves the image works.
//
// How a run uses it: the runner writes the program's files (spec.source under sourceFile,
// then spec.files) into the run's working directory (/tmp, a memory-backed scratch
// directory), runs compile.command there if there is one, and then run.command followed by
// the CodeRun's spec.args. Commands are argument vectors, not shell lines: nothing in them
// is expanded.
type RuntimeSpec struct {
	// language is the name clients ask for: lowercase, such as python, cpp or javascript.
	// Several Runtimes may share a language at different versions.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9+#._-]*$`
	Language string `json:"language"`

	// version is the version of the language or its toolchain, in semantic versioning
	// (MAJOR.MINOR.PATCH). A CodeRun's spec.version is a range matched against it.
	// +required
	// +kubebuilder:validation:MinLength=5
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`
	Version string `json:"version"`

	// aliases are other names of the language (c++ and g++ for cpp). A CodeRun's
	// spec.language matches the language or any alias.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9][a-z0-9+#._-]*$`
	Aliases []string `json:"aliases,omitempty"`

	// displayName is the name people read, such as "C++ (GCC 14.2.0)". Defaults to the
	// language and version.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	DisplayName string `json:"displayName,omitempty"`

	// image runs the runner as its entrypoint, with the language's tools inside (see
	// images/ for the shipped ones).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`

	// sourceFile is the name the program (spec.source) gets in the working directory, such
	// as main.py or Main.java.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9._-]*$`
	SourceFile string `json:"sourceFile"`

	// compile, when set, runs before the program, with its own limits and its own result
	// (status.result.compile). A compile that fails ends the run with reason CompileError.
	// +optional
	Compile *CompileStep `json:"compile,omitempty"`

	// run is how the program runs.
	// +required
	Run RunStep `json:"run"`

	// env is given to the compiler and the program, on top of the runner's own (PATH, HOME
	// and TMPDIR, which env may override).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Env []EnvVar `json:"env,omitempty"`

	// scratchSize is the size of the working directory /tmp, which the program's files,
	// the compiler's output and anything the program writes share. It counts toward the
	// run's memory. Defaults to the operator's scratchSize.
	// +optional
	// +kubebuilder:validation:XValidation:rule="isQuantity(string(self)) && quantity(string(self)).compareTo(quantity('1Mi')) >= 0 && quantity(string(self)).compareTo(quantity('4Gi')) <= 0",message="scratchSize must be a quantity between 1Mi and 4Gi"
	ScratchSize *resource.Quantity `json:"scratchSize,omitempty"`

	// maxProcesses bounds the processes and threads of a run (RLIMIT_NPROC), for runtimes
	// that need more threads than the operator's maxProcesses (a JVM). Defaults to it.
	// +optional
	// +kubebuilder:validation:Minimum=8
	// +kubebuilder:validation:Maximum=4096
	MaxProcesses *int32 `json:"maxProcesses,omitempty"`

	// smokeTest is a program the operator runs once per image (and again when the image
	// or any command changes); the Runtime is Ready when its stdout is expectedStdout.
	// +required
	SmokeTest SmokeTest `json:"smokeTest"`

	// judge0LanguageID is Judge0 CE's language id for this language and version, for the
	// Judge0-compatible API (GET /languages, POST /submissions). Left out, the Runtime is
	// not offered there.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Judge0LanguageID *int32 `json:"judge0LanguageID,omitempty"`
}

// CompileStep is how a program is compiled, and the limits the compiler runs under.
type CompileStep struct {
	// command is the compiler's argument vector, run in the working directory, such as
	// ["g++", "-O2", "-o", "main", "main.cpp"].
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	Command []string `json:"command"`

	// timeoutSeconds is the compiler's wall-clock limit: the default, and the most a
	// CodeRun's spec.compileLimits may ask for.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=600
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`

	// memory is the compiler's memory limit: the default, and the most a CodeRun's
	// spec.compileLimits may ask for. The run's pod is sized for the larger of this and
	// the program's memory.
	// +optional
	// +kubebuilder:default="512Mi"
	// +kubebuilder:validation:XValidation:rule="isQuantity(string(self)) && quantity(string(self)).compareTo(quantity('16Mi')) >= 0 && quantity(string(self)).compareTo(quantity('16Gi')) <= 0",message="memory must be a quantity between 16Mi and 16Gi"
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// RunStep is how a program runs.
type RunStep struct {
	// command is the program's argument vector, run in the working directory, such as
	// ["python3", "main.py"] or ["./main"]. The CodeRun's spec.args follow it.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=1024
	Command []string `json:"command"`
}

// EnvVar is one environment variable with a literal value.
type EnvVar struct {
	// name of the variable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`
	// value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value"`
}

// SmokeTest is a program and the standard output it must print.
type SmokeTest struct {
	// source is the program.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8192
	Source string `json:"source"`
	// stdin is given to it.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Stdin string `json:"stdin,omitempty"`
	// expectedStdout is what it must print, exactly.
	// +required
	// +kubebuilder:validation:MaxLength=8192
	ExpectedStdout string `json:"expectedStdout"`
}

// Condition types and reasons of a Runtime.
const (
	// RuntimeConditionReady is True when the smoke test passed on the current spec.
	RuntimeConditionReady = "Ready"

	// RuntimeReasonSmokeTestPassed (Ready True): the smoke test printed what it should.
	RuntimeReasonSmokeTestPassed = "SmokeTestPassed"
	// RuntimeReasonSmokeTestRunning (Ready False): the smoke test for the current spec has
	// not finished yet.
	RuntimeReasonSmokeTestRunning = "SmokeTestRunning"
	// RuntimeReasonSmokeTestFailed (Ready False): the smoke test ended otherwise; the
	// message says how (its reason, and what it printed).
	RuntimeReasonSmokeTestFailed = "SmokeTestFailed"
)

// RuntimeStatus is what the operator observed of a Runtime.
type RuntimeStatus struct {
	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// smokeTestRun names the CodeRun (in the operator's namespace) that ran the smoke test
	// of the current spec.
	// +optional
	SmokeTestRun string `json:"smokeTestRun,omitempty"`

	// specHash identifies the spec that the smoke test ran against; a change of image or
	// command runs it again.
	// +optional
	SpecHash string `json:"specHash,omitempty"`

	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=rt
// +kubebuilder:printcolumn:name="Language",type=string,JSONPath=`.spec.language`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.image`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Runtime is one language at one version that CodeRuns can ask for: its image, its
// compile and run commands and a smoke test. `kubectl apply` of a Runtime adds a language
// to the cluster without a release; `kubectl get runtimes` shows which ones work.
type Runtime struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the language, its image and its commands.
	// +required
	Spec RuntimeSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status RuntimeStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// RuntimeList is a list of Runtimes.
type RuntimeList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []Runtime `json:"items"`
}
