// Package v1alpha1 contains the v1alpha1 API of the exec.coderun.dev group: CodeRun, one
// run of a program in a locked-down Kubernetes Job; CodeRunPool, warm members for runs; and
// Runtime, one language at one version that runs can ask for.
// +kubebuilder:object:generate=true
// +groupName=exec.coderun.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "exec.coderun.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the types in this package to a scheme. It uses apimachinery only,
	// so that clients can import the API without controller-runtime.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion, &CodeRun{}, &CodeRunList{}, &CodeRunPool{}, &CodeRunPoolList{},
		&Runtime{}, &RuntimeList{})
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
