package controllers

import (
	"context"
	"fmt"
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
		// Any language name passes the schema; the operator rejects one no Runtime offers.
		{"unknown language", execv1alpha1.CodeRunSpec{Source: "1", Language: "cobol"}, ""},
		{"language with a plus", execv1alpha1.CodeRunSpec{Source: "1", Language: "c++"}, ""},
		{"language in capitals", execv1alpha1.CodeRunSpec{Source: "1", Language: "Python"}, "spec.language in body should match"},
		{"language too long", execv1alpha1.CodeRunSpec{Source: "1", Language: execv1alpha1.Language(strings.Repeat("a", 33))}, "spec.language: Too long"},
		{"version range", execv1alpha1.CodeRunSpec{Source: "1", Version: ">=3.10 <4"}, ""},
		{"version too long", execv1alpha1.CodeRunSpec{Source: "1", Version: strings.Repeat("1", 65)}, "spec.version: Too long"},
		{"files and args", execv1alpha1.CodeRunSpec{Source: "1", Files: []execv1alpha1.SourceFile{{Name: "util.py", Content: "x = 1"}, {Name: "data.txt"}}, Args: []string{"-v", ""}}, ""},
		{"too many files", execv1alpha1.CodeRunSpec{Source: "1", Files: manyFiles(17, 1)}, "spec.files: Too many"},
		{"file name with a slash", execv1alpha1.CodeRunSpec{Source: "1", Files: []execv1alpha1.SourceFile{{Name: "../etc/passwd"}}}, "spec.files[0].name in body should match"},
		{"file name starting with a dot", execv1alpha1.CodeRunSpec{Source: "1", Files: []execv1alpha1.SourceFile{{Name: ".bashrc"}}}, "spec.files[0].name in body should match"},
		{"file name too long", execv1alpha1.CodeRunSpec{Source: "1", Files: []execv1alpha1.SourceFile{{Name: strings.Repeat("f", 65)}}}, "spec.files[0].name: Too long"},
		{"two files of one name", execv1alpha1.CodeRunSpec{Source: "1", Files: []execv1alpha1.SourceFile{{Name: "a.h"}, {Name: "a.h"}}}, "spec.files[1]: Duplicate value"},
		{"source and files of exactly 64 KiB", execv1alpha1.CodeRunSpec{Source: strings.Repeat("#", 65536-16*1024), Files: manyFiles(16, 1024)}, ""},
		{"source and files over 64 KiB", execv1alpha1.CodeRunSpec{Source: strings.Repeat("#", 65536-16*1024+1), Files: manyFiles(16, 1024)}, "source and files must be at most 65536 bytes together"},
		{"too many args", execv1alpha1.CodeRunSpec{Source: "1", Args: make([]string, 33)}, "spec.args: Too many"},
		{"compile limits", execv1alpha1.CodeRunSpec{Source: "1", CompileLimits: &execv1alpha1.CompileLimits{TimeoutSeconds: ptr.To[int32](30), Memory: mem("1Gi")}}, ""},
		{"compile memory too small", execv1alpha1.CodeRunSpec{Source: "1", CompileLimits: &execv1alpha1.CompileLimits{Memory: mem("1Mi")}}, "memory must be a quantity between 16Mi and 16Gi"},
		{"compile timeout over 600", execv1alpha1.CodeRunSpec{Source: "1", CompileLimits: &execv1alpha1.CompileLimits{TimeoutSeconds: ptr.To[int32](601)}}, "spec.compileLimits.timeoutSeconds"},
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
		{"language in capitals", "source: x\nlanguage: Python", []string{`spec.language: Invalid value: "Python": spec.language in body should match '^[a-z0-9][a-z0-9+#._-]*$'`}},
		{"language with a space", "source: x\nlanguage: c sharp", []string{`spec.language in body should match`}},
		{"language a number", "source: x\nlanguage: 3", []string{`spec.language in body must be of type string`}},
		{"version a number", "source: x\nversion: 3.1", []string{`spec.version in body must be of type string`}},
		{"files a map", "source: x\nfiles: {a.h: x}", []string{`unknown field "spec.files.a.h"`}},
		{"file without a name", "source: x\nfiles: [{content: x}]", []string{`spec.files[0].name: Required value`}},
		{"file name with a slash", "source: x\nfiles: [{name: a/b.h, content: x}]", []string{`spec.files[0].name: Invalid value: "a/b.h"`}},
		{"args a string", "source: x\nargs: -v", []string{`spec.args in body must be of type array`}},
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

// manyFiles returns n files of size bytes each.
func manyFiles(n, size int) []execv1alpha1.SourceFile {
	files := make([]execv1alpha1.SourceFile, n)
	for i := range files {
		files[i] = execv1alpha1.SourceFile{Name: fmt.Sprintf("f%d.txt", i), Content: strings.Repeat("x", size)}
	}
	return files
}
