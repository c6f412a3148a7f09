package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CodeRunPoolSpec is how many warm members a pool keeps and the shape they are built for.
type CodeRunPoolSpec struct {
	// replicas is the number of idle members to keep: Jobs whose pod is started and waits
	// for one program. A claimed member is replaced at once. 0 keeps none (every run takes
	// the cold path). It is the scale subresource's spec.replicas.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	Replicas *int32 `json:"replicas,omitempty"`

	// language is the language its members run: the language or an alias of a Runtime, as
	// in a CodeRun. A CodeRun fits the pool only when it resolves to the same Runtime.
	// +optional
	// +kubebuilder:default=python
	Language Language `json:"language,omitempty"`

	// version is a semantic version range of the language, as in a CodeRun; the highest
	// match is the Runtime the members run. Left out, the highest version.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Version string `json:"version,omitempty"`

	// limits is the shape of a member: the CPU it has, and the most memory and the longest
	// timeout it serves. A CodeRun fits the pool when its CPU equals limits.cpu, its memory
	// is at most limits.memory and its timeout at most limits.timeoutSeconds; the runner
	// then holds the program to the CodeRun's own memory and timeout. Each limit left out
	// takes the operator's default; a pool above the operator's maxima is not Ready.
	// +optional
	Limits Limits `json:"limits,omitzero"`

	// cpuRequest is the CPU an idle member requests from the scheduler. It defaults to
	// limits.cpu, so that a member is Guaranteed and always finds its CPU when claimed. A
	// smaller request lets a small node keep more idle members, which use no CPU while
	// they wait; claimed members may then compete for CPU up to limits.cpu.
	// +optional
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('10m')) >= 0",message="cpuRequest must be at least 10m"
	CPURequest *resource.Quantity `json:"cpuRequest,omitempty"`

	// maxIdleSeconds is how long a member waits for a program. An idle member older than
	// that exits unused and is replaced, so members do not live forever on an old image or
	// configuration.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=86400
	MaxIdleSeconds *int32 `json:"maxIdleSeconds,omitempty"`
}

// Condition types and reasons of a CodeRunPool.
const (
	// PoolConditionReady is True when every wanted member is idle and ready.
	PoolConditionReady = "Ready"

	// PoolReasonFull: the pool has all its members idle and ready.
	PoolReasonFull = "Full"
	// PoolReasonFilling: members are being created or are starting.
	PoolReasonFilling = "Filling"
	// PoolReasonMembersFailing: members could not start (image, scheduling); they are
	// replaced with back-off. The message says why.
	PoolReasonMembersFailing = "MembersFailing"
	// PoolReasonInvalidShape: the pool's limits exceed the operator's maxima, or its
	// language is unknown; it keeps no members.
	PoolReasonInvalidShape = "InvalidShape"
)

// CodeRunPoolStatus is what the operator observed of a pool.
type CodeRunPoolStatus struct {
	// replicas is the number of idle members (started or starting): the scale
	// subresource's status.replicas.
	// +optional
	Replicas int32 `json:"replicas"`

	// ready is the number of idle members whose pod is running and can take a program.
	// +optional
	Ready int32 `json:"ready"`

	// claimed is the number of members running a CodeRun's program.
	// +optional
	Claimed int32 `json:"claimed"`

	// selector selects the pods of the pool's members, as a label selector string (the
	// scale subresource's selector, for an HPA).
	// +optional
	Selector string `json:"selector,omitempty"`

	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=crpool
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Idle",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Claimed",type=integer,JSONPath=`.status.claimed`
// +kubebuilder:printcolumn:name="CPU",type=string,JSONPath=`.spec.limits.cpu`
// +kubebuilder:printcolumn:name="Memory",type=string,JSONPath=`.spec.limits.memory`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// CodeRunPool keeps warm members: locked-down run Jobs whose pod has started and waits for
// one program, which the operator sends over pods/attach. A CodeRun that fits a pool's
// shape takes a member and answers without waiting for a pod to start; every other run
// takes the cold path (a Job of its own). Each member runs one program and exits.
type CodeRunPool struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitzero"`

	// spec is the number and shape of members. Left out, every field takes its default.
	// +optional
	// +kubebuilder:default={}
	Spec CodeRunPoolSpec `json:"spec,omitzero"`

	// status is what the operator observed.
	// +optional
	Status CodeRunPoolStatus `json:"status,omitzero"`
}

// +kubebuilder:object:root=true

// CodeRunPoolList is a list of CodeRunPools.
type CodeRunPoolList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitzero"`
	Items           []CodeRunPool `json:"items"`
}

// Labels of pool members. A member's Job carries both; its pod carries LabelPool (a pod's
// labels are fixed when it is created, and a member's state changes after that).
const (
	// LabelPool names the CodeRunPool a member belongs to, on its Job and pod.
	LabelPool = "exec.coderun.dev/pool"
	// LabelMember is the state of a member's Job: MemberIdle or MemberClaimed.
	LabelMember = "exec.coderun.dev/member"
	// MemberIdle: the member waits for a program and belongs to its pool.
	MemberIdle = "idle"
	// MemberClaimed: a CodeRun took the member; the Job now belongs to that CodeRun.
	MemberClaimed = "claimed"
)
