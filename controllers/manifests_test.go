package controllers

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
)

// TestShippedManifests installs config/default (built with kubectl's kustomize) and the
// samples into the real API server, then checks that the shipped runs namespace admits a
// run pod built from the shipped operator configuration, and nothing less locked down.
func TestShippedManifests(t *testing.T) {
	needEnvtest(t)
	ctx := context.Background()
	for _, dir := range []string{"../config/default", "../config/samples"} {
		for _, obj := range kustomize(t, dir) {
			if obj.GetKind() == "CustomResourceDefinition" {
				continue // envtest installed it from the same file
			}
			// Already there when the suite runs again (-count): the object is the same.
			if err := k8sClient.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("creating %s %s from %s: %v", obj.GetKind(), obj.GetName(), dir, err)
			}
		}
	}

	cfg, err := config.Load("../config/manager/operator-config.yaml")
	if err != nil {
		t.Fatalf("the shipped operator configuration does not load: %v", err)
	}
	if cfg.RunnerImage == "" || cfg.MaxConcurrentRuns < 1 {
		t.Fatalf("unexpected shipped configuration %+v", cfg)
	}
	sample := &execv1alpha1.CodeRun{}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: "coderun-runs", Name: "hello-world"}, sample); err != nil {
		t.Fatalf("the hello-world sample was not created: %v", err)
	}
	job := buildJob(sample, cfg.Effective(sample.Spec.Limits), cfg, preferredUID(sample, cfg))
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sample-run", Namespace: "coderun-runs", Labels: job.Spec.Template.Labels, Annotations: job.Spec.Template.Annotations},
		Spec:       job.Spec.Template.Spec,
	}
	if err := k8sClient.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Errorf("the shipped runs namespace rejects a run pod: %v", err)
	}
	// Take away one protection at a time: each must be refused.
	for name, weaken := range map[string]func(*corev1.PodSpec){
		"privilege escalation": func(s *corev1.PodSpec) { *s.Containers[0].SecurityContext.AllowPrivilegeEscalation = true },
		"a capability": func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities.Add = []corev1.Capability{"NET_RAW"}
		},
		"root": func(s *corev1.PodSpec) {
			*s.SecurityContext.RunAsNonRoot = false
			*s.Containers[0].SecurityContext.RunAsNonRoot = false
		},
		"host network": func(s *corev1.PodSpec) { s.HostNetwork = true },
		"no seccomp": func(s *corev1.PodSpec) {
			s.SecurityContext.SeccompProfile = nil
			s.Containers[0].SecurityContext.SeccompProfile = nil
		},
	} {
		weak := pod.DeepCopy()
		weaken(&weak.Spec)
		err := k8sClient.Create(ctx, weak, client.DryRunAll)
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Errorf("the runs namespace admitted a pod with %s (err %v)", name, err)
		}
	}
}

// kustomize builds dir with kubectl's built-in kustomize.
func kustomize(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command("kubectl", "kustomize", dir).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, exitErr.Stderr)
		}
		t.Fatalf("kubectl kustomize %s (kubectl is needed to build config/): %v", dir, err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatalf("decoding kustomize output of %s: %v", dir, err)
		}
		if len(obj.Object) > 0 {
			objs = append(objs, obj)
		}
	}
}
