package controllers

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// TestSchemaValidation checks what the CRD's schema and CEL rules make the API server
// accept and reject. No operator runs here: this is the API a kubectl user meets.
func TestSchemaValidation(t *testing.T) {
	needEnvtest(t)
	ns := testenv.Namespace(t)
	mem := func(s string) *resource.Quantity { return ptr.To(resource.MustParse(s)) }

	cases := []struct {
		name    string
		spec    execv1alpha1.CodeRunSpec
		wantErr string // "" means accepted
	}{
		{"minimal", execv1alpha1.CodeRunSpec{Source: "print(1)"}, ""},
		{"source of exactly 64 KiB", execv1alpha1.CodeRunSpec{Source: strings.Repeat("#", 65536)}, ""},
		{"source over 64 KiB", execv1alpha1.CodeRunSpec{Source: strings.Repeat("#", 65537)}, "spec.source: Too long"},
		// 30000 characters, but 90000 bytes of UTF-8: the byte bound is what protects etcd.
		{"multibyte source over 64 KiB of bytes", execv1alpha1.CodeRunSpec{Source: strings.Repeat("€", 30000)}, "source must be at most 65536 bytes"},
		{"empty source", execv1alpha1.CodeRunSpec{Source: ""}, "spec.source"},
		{"stdin over 64 KiB", execv1alpha1.CodeRunSpec{Source: "input()", Stdin: strings.Repeat("€", 22000)}, "stdin must be at most 65536 bytes"},
		{"unknown language", execv1alpha1.CodeRunSpec{Source: "1", Language: "cobol"}, `spec.language: Unsupported value: "cobol"`},
		{"all limits", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](30), Memory: mem("512Mi"), CPU: mem("500m")}}, ""},
		{"timeout 0", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](0)}}, "spec.limits.timeoutSeconds: Invalid value: 0"},
		{"timeout over an hour", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{TimeoutSeconds: ptr.To[int32](3601)}}, "spec.limits.timeoutSeconds: Invalid value: 3601"},
		{"memory too small", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{Memory: mem("1Mi")}}, "memory must be between 16Mi and 64Gi"},
		{"memory too large", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{Memory: mem("1Ti")}}, "memory must be between 16Mi and 64Gi"},
		{"cpu zero", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{CPU: mem("0")}}, "cpu must be between 10m and 64"},
		{"negative cpu", execv1alpha1.CodeRunSpec{Source: "1", Limits: execv1alpha1.Limits{CPU: mem("-1")}}, "cpu must be between 10m and 64"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run := &execv1alpha1.CodeRun{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "v-"},
				Spec:       tc.spec,
			}
			expectAdmission(t, run, tc.wantErr)
		})
	}

	t.Run("language defaults to python", func(t *testing.T) {
		run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "defaulted"}, Spec: execv1alpha1.CodeRunSpec{Source: "1"}}
		if err := k8sClient.Create(context.Background(), run); err != nil {
			t.Fatal(err)
		}
		if run.Spec.Language != execv1alpha1.LanguagePython {
			t.Errorf("language = %q, want python", run.Spec.Language)
		}
	})

	t.Run("memory given as a plain number of bytes", func(t *testing.T) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "exec.coderun.dev/v1alpha1", "kind": "CodeRun",
			"metadata": map[string]any{"namespace": ns, "name": "bytes"},
			"spec":     map[string]any{"source": "1", "limits": map[string]any{"memory": int64(268435456)}},
		}}
		if err := k8sClient.Create(context.Background(), u, client.DryRunAll); err != nil {
			t.Errorf("memory: 268435456 rejected: %v", err)
		}
	})

	t.Run("spec is immutable", func(t *testing.T) {
		run := &execv1alpha1.CodeRun{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "immutable"}, Spec: execv1alpha1.CodeRunSpec{Source: "print(1)"}}
		if err := k8sClient.Create(context.Background(), run); err != nil {
			t.Fatal(err)
		}
		run.Spec.Source = "print(2)"
		err := k8sClient.Update(context.Background(), run)
		if err == nil || !strings.Contains(err.Error(), "spec is immutable") {
			t.Errorf("updating the source: err %v, want 'spec is immutable'", err)
		}
		// Metadata stays editable: labels are how users organise runs.
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(run), run); err != nil {
			t.Fatal(err)
		}
		run.Labels = map[string]string{"team": "data"}
		if err := k8sClient.Update(context.Background(), run); err != nil {
			t.Errorf("updating labels: %v", err)
		}
	})
}

// expectAdmission creates obj as a dry run and checks that the API server admits it, or,
// when wantErr is set, refuses it with a message containing wantErr.
func expectAdmission(t *testing.T, obj client.Object, wantErr string) {
	t.Helper()
	err := k8sClient.Create(context.Background(), obj, client.DryRunAll)
	switch {
	case wantErr == "" && err != nil:
		t.Errorf("rejected: %v", err)
	case wantErr != "" && err == nil:
		t.Errorf("accepted, want an error containing %q", wantErr)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Errorf("error %q does not contain %q", err, wantErr)
	}
}
