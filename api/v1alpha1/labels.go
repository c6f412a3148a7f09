package v1alpha1

import "k8s.io/apimachinery/pkg/labels"

// Labels and annotations the operator puts on a run's Job and pod. They are part of the
// API: the operator's cache, the runs namespace's NetworkPolicy, tests and tools select
// run pods by them.
const (
	// LabelRunUID selects the Job and pod of one CodeRun by the CodeRun's UID (names may be
	// too long for label values).
	LabelRunUID = "exec.coderun.dev/run-uid"
	// AnnotationRun names the CodeRun a Job or pod belongs to.
	AnnotationRun = "exec.coderun.dev/run"
	// AnnotationSource and AnnotationStdin carry the program and its input into the pod,
	// where a downward API volume turns them into read-only files. Annotations may hold
	// 256 KiB in total (more than source and stdin can be together), unlike one environment
	// string (128 KiB), and need no extra object such as a ConfigMap per run.
	AnnotationSource = "exec.coderun.dev/source"
	AnnotationStdin  = "exec.coderun.dev/stdin"
)

// Recommended Kubernetes labels (app.kubernetes.io) that coderun sets.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// AppName is the app.kubernetes.io/name of everything coderun creates.
	AppName = "coderun"
	// ComponentRun is the app.kubernetes.io/component of run Jobs and pods.
	ComponentRun = "run"
	// ManagedByOperator is the app.kubernetes.io/managed-by of the Jobs and pods the
	// operator creates.
	ManagedByOperator = "coderun-operator"
)

// RunPodLabels returns the labels on every run's Job and pod (a new map on each call, so
// that callers may add to it).
func RunPodLabels() map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelComponent: ComponentRun,
		LabelManagedBy: ManagedByOperator,
	}
}

// RunPodSelector selects the Jobs and pods of runs, and nothing else the cluster runs.
func RunPodSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{
		LabelComponent: ComponentRun,
		LabelManagedBy: ManagedByOperator,
	})
}

// Outer bounds of spec.limits that the schema enforces (the +kubebuilder markers on Limits
// spell them out again; TestSchemaBounds checks that they agree). The operator's
// configuration usually sets lower maxima.
const (
	MinTimeoutSeconds = 1
	MaxTimeoutSeconds = 3600
	// MinMemory and MaxMemory are resource quantities (resource.MustParse).
	MinMemory = "16Mi"
	MaxMemory = "64Gi"
	// MinCPU and MaxCPU are resource quantities (resource.MustParse).
	MinCPU = "10m"
	MaxCPU = "64"
)

// UserNamespaceRunUIDMin and UserNamespaceRunUIDEnd bound the uids of run pods in a user
// namespace of their own (hostUsers: false), where a pod has only the ids 0 to 65535: the
// operator folds its run uids into this range there, clear of system users, the runner
// image's user (65532), nobody (65534) and the pause image's 65535.
const (
	UserNamespaceRunUIDMin = 10000
	UserNamespaceRunUIDEnd = 60000
)
