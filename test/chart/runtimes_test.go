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
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testenv"
)

// languageImages are the folders of images/ that build a language image: every one but the
// base and the two components.
func languageImages(t *testing.T) []string {
	t.Helper()
	dockerfiles, err := filepath.Glob(filepath.Join(repoRoot, "images", "*", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range dockerfiles {
		name := filepath.Base(filepath.Dir(f))
		if !slices.Contains([]string{"base", "operator", "front"}, name) {
			names = append(names, name)
		}
	}
	if len(names) < 20 {
		t.Fatalf("images/ has %d language images (%v), want at least 20", len(names), names)
	}
	return names
}

// runtimes decodes the rendered Runtimes by name.
func runtimes(t *testing.T, m manifest) map[string]*execv1alpha1.Runtime {
	t.Helper()
	out := map[string]*execv1alpha1.Runtime{}
	for _, o := range m.ofKind("Runtime") {
		if o.GetNamespace() != "" {
			t.Errorf("Runtime %s has namespace %q; Runtimes are cluster-scoped", o.GetName(), o.GetNamespace())
		}
		out[o.GetName()] = decode[execv1alpha1.Runtime](t, o)
	}
	return out
}

// TestRuntimesDefault: a plain install has the Python Runtime only, on the same image the
// operator runs Python with, and lets its operator manage Runtimes.
func TestRuntimesDefault(t *testing.T) {
	m := render(t, "--set", "image.tag=1.2.3")
	rts := runtimes(t, m)
	py, ok := rts["python-3-13"]
	if len(rts) != 1 || !ok {
		t.Fatalf("Runtimes %v, want python-3-13 alone", slices.Sorted(maps.Keys(rts)))
	}
	if py.Spec.Language != "python" || py.Spec.Image != "ghcr.io/coderun-dev/coderun-python:1.2.3" {
		t.Errorf("python Runtime: language %q image %q, want python on ghcr.io/coderun-dev/coderun-python:1.2.3", py.Spec.Language, py.Spec.Image)
	}
	if img := operatorConfig(t, m).RunnerImage; img != py.Spec.Image {
		t.Errorf("the Python Runtime's image %q differs from the operator's runnerImage %q", py.Spec.Image, img)
	}
	if !operatorConfig(t, m).ManageRuntimes {
		t.Error("manageRuntimes is false with runtimes.install true")
	}
}

// TestRuntimesAll: runtimes.enabled=[all] renders one Runtime per language image of
// images/, named <name>-<major>-<minor>, on the image of its name with runtimes.imageTag;
// each has a smoke test and a compile step with limits when it compiles.
func TestRuntimesAll(t *testing.T) {
	m := render(t, "--set", "runtimes.enabled={all}", "--set", "image.registry=registry.example.com/team",
		"--set", "image.tag=2.0.0", "--set", "runtimes.imageTag=1.9.0")
	rts := runtimes(t, m)
	images := languageImages(t)
	if len(rts) != len(images) {
		t.Errorf("%d Runtimes for %d language images in images/", len(rts), len(images))
	}
	for _, name := range images {
		var found *execv1alpha1.Runtime
		for rtName, rt := range rts {
			if strings.HasPrefix(rtName, name+"-") && rt.Spec.Image == "registry.example.com/team/coderun-"+name+":1.9.0" {
				found = rt
			}
		}
		if found == nil {
			t.Errorf("images/%s: no Runtime %s-<major>-<minor> on registry.example.com/team/coderun-%s:1.9.0", name, name, name)
			continue
		}
		v := strings.SplitN(found.Spec.Version, ".", 3)
		if want := name + "-" + v[0] + "-" + v[1]; found.Name != want {
			t.Errorf("Runtime %s of version %s, want the name %s", found.Name, found.Spec.Version, want)
		}
		if found.Spec.SmokeTest.Source == "" || found.Spec.SmokeTest.ExpectedStdout == "" {
			t.Errorf("Runtime %s has no smoke test", found.Name)
		}
		if c := found.Spec.Compile; c != nil && (c.TimeoutSeconds == 0 || c.Memory == nil) {
			t.Errorf("Runtime %s compiles without its own limits: %+v", found.Name, *c)
		}
	}
}

// TestRuntimesOptions: install=false renders no Runtime and turns manageRuntimes off (a
// second release in a cluster); an image set on an entry is kept; a name not in
// runtimes.available is refused, naming those that are.
func TestRuntimesOptions(t *testing.T) {
	m := render(t, "--set", "runtimes.install=false", "--set", "runtimes.enabled={all}")
	if n := len(m.ofKind("Runtime")); n != 0 {
		t.Errorf("runtimes.install=false rendered %d Runtimes", n)
	}
	if operatorConfig(t, m).ManageRuntimes {
		t.Error("runtimes.install=false left manageRuntimes on")
	}

	m = render(t, "--set", "runtimes.enabled={c,go}", "--set", "runtimes.available.c.image=mirror.example.com/gcc:14")
	rts := runtimes(t, m)
	if len(rts) != 2 || rts["c-14-2"] == nil || rts["go-1-24"] == nil {
		t.Fatalf("runtimes.enabled={c,go} rendered %v", rts)
	}
	if img := rts["c-14-2"].Spec.Image; img != "mirror.example.com/gcc:14" {
		t.Errorf("the c entry's image %q, want mirror.example.com/gcc:14", img)
	}

	_, errOut, err := helmTemplate(t, release, releaseNS, "--set", "runtimes.enabled={python,cobol}")
	if err == nil || !strings.Contains(errOut, `runtimes.enabled names "cobol"`) || !strings.Contains(errOut, "python") {
		t.Errorf("runtimes.enabled={python,cobol}: err %v, stderr %s; want refused, naming cobol and what there is", err, errOut)
	}
}

// TestRuntimesAcceptedByAPIServer creates every shipped Runtime on a real API server with
// the generated CRD and strict field validation: the values' fields, quantities and
// commands are all ones the Runtime schema (and its CEL rules) accepts.
func TestRuntimesAcceptedByAPIServer(t *testing.T) {
	helmBinary(t) // skip before starting an API server when there is no Helm
	_, c := testenv.Start(t)
	strict := client.WithFieldValidation(c, metav1.FieldValidationStrict)
	ctx := context.Background()
	m := render(t, "--set", "runtimes.enabled={all}")
	rendered := m.ofKind("Runtime")
	for _, o := range rendered {
		// A dry run: the API server validates and admits the object in full but keeps
		// nothing, so the cluster-scoped names do not collide with other tests' installs.
		if err := strict.Create(ctx, o.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("creating Runtime %s: %v", o.GetName(), err)
		}
	}
	if len(rendered) != len(languageImages(t)) {
		t.Errorf("the chart renders %d Runtimes, want one per language image: %d", len(rendered), len(languageImages(t)))
	}
}
