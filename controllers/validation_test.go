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
	"sigs.k8s.io/yaml"

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

// TestSchemaRefusesBadManifests applies CodeRun manifests as a kubectl user writes them,
// in YAML, with kubectl's strict field validation: each malformed one is refused, and the
// message names the field and what is wrong with it in words a user can act on.
func TestSchemaRefusesBadManifests(t *testing.T) {
	needEnvtest(t)
	ns := testenv.Namespace(t)
	for _, tc := range []struct {
		name, spec string
		// want are parts of the refusal, all of which it must contain.
		want []string
	}{
		{"source a number", `source: 42`, []string{`spec.source: Invalid value: "integer": spec.source in body must be of type string`}},
		{"source a list", "source: [print(1)]", []string{`spec.source in body must be of type string`}},
		{"source missing", `stdin: "x"`, []string{`spec.source: Required value`}},
		{"source null", `source: null`, []string{`spec.source: Required value`}},
		{"source empty", `source: ""`, []string{`spec.source: Invalid value: "": spec.source in body should be at least 1 chars long`}},
		{"source over 64 KiB", "source: " + strings.Repeat("x", 65537), []string{`spec.source: Too long: may not be more than 65536 bytes`}},
		{"stdin over 64 KiB of bytes", "source: x\nstdin: " + strings.Repeat("€", 21846), []string{`spec.stdin: Invalid value: "€€€`, `stdin must be at most 65536 bytes`}},
		// Strict decoding speaks first: a map where a string belongs has unknown fields.
		{"stdin a map", "source: x\nstdin: {a: 1}", []string{`strict decoding error: unknown field "spec.stdin.a"`}},
		{"unknown language", "source: x\nlanguage: ruby", []string{`spec.language: Unsupported value: "ruby": supported values: "python"`}},
		{"language in capitals", "source: x\nlanguage: Python", []string{`spec.language: Unsupported value: "Python"`}},
		{"timeout a word", "source: x\nlimits: {timeoutSeconds: ten}", []string{`spec.limits.timeoutSeconds: Invalid value: "string": spec.limits.timeoutSeconds in body must be of type integer`}},
		{"timeout a fraction", "source: x\nlimits: {timeoutSeconds: 1.5}", []string{`spec.limits.timeoutSeconds in body must be of type int32: "float64"`}},
		{"timeout negative", "source: x\nlimits: {timeoutSeconds: -5}", []string{`spec.limits.timeoutSeconds: Invalid value: -5: spec.limits.timeoutSeconds in body should be greater than or equal to 1`}},
		{"timeout huge", "source: x\nlimits: {timeoutSeconds: 99999999999}", []string{`spec.limits.timeoutSeconds: Invalid value: 99999999999: spec.limits.timeoutSeconds in body should be less than or equal to 3600`}},
		{"timeout beyond int64", "source: x\nlimits: {timeoutSeconds: 1e30}", []string{`spec.limits.timeoutSeconds`}},
		{"memory a word", "source: x\nlimits: {memory: lots}", []string{`spec.limits.memory: Invalid value: "lots": memory must be a quantity such as 512Mi or 1Gi`}},
		{"memory with a space", "source: x\nlimits: {memory: 512 Mi}", []string{`memory must be a quantity such as 512Mi or 1Gi`}},
		{"memory negative", "source: x\nlimits: {memory: -1Gi}", []string{`memory must be between 16Mi and 64Gi`}},
		{"memory huge", "source: x\nlimits: {memory: \"1e30\"}", []string{`memory must be between 16Mi and 64Gi`}},
		{"memory a YAML float", "source: x\nlimits: {memory: 1e30}", []string{`spec.limits.memory in body must be of type integer,string: "number"`}},
		{"memory a map", "source: x\nlimits: {memory: {Mi: 512}}", []string{`spec.limits.memory`}},
		{"cpu a word", "source: x\nlimits: {cpu: half}", []string{`spec.limits.cpu: Invalid value: "half": cpu must be a quantity such as 500m or 2`}},
		// As the field's description says: 500m or "0.5".
		{"cpu a YAML decimal", "source: x\nlimits: {cpu: 0.5}", []string{`spec.limits.cpu in body must be of type integer,string: "number"`}},
		{"cpu negative", "source: x\nlimits: {cpu: -500m}", []string{`cpu must be between 10m and 64`}},
		{"cpu huge", "source: x\nlimits: {cpu: 100000}", []string{`cpu must be between 10m and 64`}},
		{"limits a string", "source: x\nlimits: fast", []string{`spec.limits: Invalid value: "string": spec.limits in body must be of type object`}},
		{"unknown field in spec", "source: x\ntimeout: 5", []string{`unknown field "spec.timeout"`}},
		{"unknown field in limits", "source: x\nlimits: {memoryMi: 512}", []string{`unknown field "spec.limits.memoryMi"`}},
		{"misspelt spec", "", []string{`strict decoding error: unknown field "sepc"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest := "apiVersion: exec.coderun.dev/v1alpha1\nkind: CodeRun\nmetadata:\n  generateName: bad-\n  namespace: " + ns + "\n"
			if tc.spec != "" {
				manifest += "spec:\n  " + strings.ReplaceAll(tc.spec, "\n", "\n  ") + "\n"
			} else {
				manifest += "sepc:\n  source: x\n"
			}
			err := applyStrict(t, manifest)
			if err == nil {
				t.Fatalf("accepted:\n%.500s", manifest)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// applyStrict creates the object of a YAML manifest as a dry run, with the strict field
// validation kubectl asks for (unknown and duplicate fields are errors), and returns the
// API server's refusal.
func applyStrict(t *testing.T, manifest string) error {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("the manifest is not YAML: %v", err)
	}
	return k8sClient.Create(context.Background(), u, client.DryRunAll, client.FieldValidation("Strict"))
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
