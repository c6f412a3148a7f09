/*
Copyright 2026 The coderun Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package chart_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/testneed"
)

const (
	// The chart, and the repository top folder, from this package's folder (go test runs
	// tests in the package's folder).
	chartDir = "../../charts/coderun"
	repoRoot = "../.."
	// The release every test renders, as the README installs it: `helm install coderun
	// charts/coderun -n coderun-system`. Resource names start with "coderun".
	release       = "coderun"
	releaseNS     = "coderun-system"
	defaultRunsNS = "coderun-runs"
)

// helmBinary is the Helm the tests render with: $HELM (make test sets it to the pinned
// bin/helm-<version>), else helm on PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	testneed.Skip(t, "chart tests need Helm: set HELM to a helm binary (`make test` sets bin/helm-<version>) or put helm on PATH")
	return ""
}

// helmTemplate runs `helm template` of the chart as release name into namespace ns and
// returns what Helm wrote to stdout and stderr.
func helmTemplate(t *testing.T, name, ns string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), append([]string{"template", name, chartDir, "--namespace", ns}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// render renders the chart into the release namespace with extra helm arguments (--set,
// -f), failing the test if Helm refuses. Every render also loads the operator
// configuration it contains with config.Load: whatever the chart renders must be a
// configuration the operator and the front start with.
func render(t *testing.T, args ...string) manifest {
	t.Helper()
	return renderAs(t, release, releaseNS, args...)
}

// renderAs is render with another release name and namespace.
func renderAs(t *testing.T, name, ns string, args ...string) manifest {
	t.Helper()
	out, errOut, err := helmTemplate(t, name, ns, args...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	m := parseManifest(t, []byte(out))
	if len(m.ofKind("ConfigMap")) > 0 {
		operatorConfig(t, m)
	}
	return m
}

// manifest is the objects of a multi-document YAML stream, in its order (for `helm
// template`, Helm's install order: namespaces first).
type manifest []*unstructured.Unstructured

func parseManifest(t *testing.T, data []byte) manifest {
	t.Helper()
	var m manifest
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			return m
		} else if err != nil {
			t.Fatalf("decoding rendered YAML: %v", err)
		}
		if len(obj.Object) > 0 { // a document of comments only
			m = append(m, obj)
		}
	}
}

func readManifest(t *testing.T, path string) manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return parseManifest(t, data)
}

func (m manifest) ofKind(kind string) manifest {
	var out manifest
	for _, o := range m {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func (m manifest) get(kind, name string) *unstructured.Unstructured {
	for _, o := range m {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// find returns the object, failing the test when it is not there.
func (m manifest) find(t *testing.T, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := m.get(kind, name)
	if o == nil {
		var have []string
		for _, o := range m {
			have = append(have, o.GetKind()+"/"+o.GetName())
		}
		t.Fatalf("no %s %s rendered; rendered: %s", kind, name, strings.Join(have, ", "))
	}
	return o
}

// decode converts an object to its type, failing on fields the type does not have, so a
// misspelled field in a template is caught here too, not only by the API server.
func decode[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

// typed finds kind/name in m and decodes it.
func typed[T any](t *testing.T, m manifest, kind, name string) *T {
	t.Helper()
	return decode[T](t, m.find(t, kind, name))
}

func deployment(t *testing.T, m manifest, name string) *appsv1.Deployment {
	t.Helper()
	return typed[appsv1.Deployment](t, m, "Deployment", name)
}

// onlyContainer is the Deployment's one container, which must have the given name.
func onlyContainer(t *testing.T, d *appsv1.Deployment, name string) corev1.Container {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != name {
		t.Fatalf("Deployment %s: want one container %q, got %d", d.Name, name, len(cs))
	}
	return cs[0]
}

// operatorConfig loads the rendered operator configuration the way the operator does:
// config.Load of the file the ConfigMap mounts.
func operatorConfig(t *testing.T, m manifest) config.Config {
	t.Helper()
	cfg, err := loadRenderedConfig(t, m)
	if err != nil {
		t.Fatalf("the chart rendered an operator configuration the operator refuses: %v", err)
	}
	return cfg
}

func loadRenderedConfig(t *testing.T, m manifest) (config.Config, error) {
	t.Helper()
	cms := m.ofKind("ConfigMap") // the chart renders one, named after the release
	if len(cms) != 1 {
		t.Fatalf("want one ConfigMap, the operator configuration; got %d", len(cms))
	}
	cm := decode[corev1.ConfigMap](t, cms[0])
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Load(path)
}

// variant is one shape of install the chart is checked in: its defaults, or a ci values file.
type variant struct {
	name   string
	args   []string
	runsNS string
}

// variants are the default values and every charts/coderun/ci/*-values.yaml (those
// `make lint-chart` lints).
func variants(t *testing.T) []variant {
	t.Helper()
	vs := []variant{{name: "defaults", runsNS: defaultRunsNS}}
	for _, f := range ciValuesFiles(t) {
		vs = append(vs, variant{name: filepath.Base(f), args: []string{"-f", f}, runsNS: valuesRunsNamespace(t, f)})
	}
	return vs
}

func ciValuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/ci (err %v): the tests check every install shape there", chartDir, err)
	}
	return files
}

// valuesRunsNamespace is runs.namespace of a values file, or the chart's default.
func valuesRunsNamespace(t *testing.T, path string) string {
	t.Helper()
	var v struct {
		Runs struct {
			Namespace string `json:"namespace"`
		} `json:"runs"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = yaml.Unmarshal(data, &v)
	}
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if v.Runs.Namespace == "" {
		return defaultRunsNS
	}
	return v.Runs.Namespace
}

// appVersion is the chart's appVersion, the default tag of its images.
func appVersion(t *testing.T) string {
	t.Helper()
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err == nil {
		err = yaml.Unmarshal(data, &c)
	}
	if err != nil || c.AppVersion == "" {
		t.Fatalf("no appVersion in Chart.yaml (%v)", err)
	}
	return c.AppVersion
}

func hasArgPrefix(c corev1.Container, prefix string) bool {
	for _, a := range c.Args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}
