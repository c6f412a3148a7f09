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
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/coderun-dev/coderun/internal/testenv"
)

// restrictedLabels make a namespace enforce the restricted Pod Security Standard.
var restrictedLabels = map[string]string{
	"pod-security.kubernetes.io/enforce":         "restricted",
	"pod-security.kubernetes.io/enforce-version": "latest",
}

// TestAPIServerAccepts creates everything the chart renders in a real kube-apiserver
// (envtest), with strict field validation so a misspelled or misplaced field fails as it
// would at install, and checks that the operator's and the front's pods pass the
// restricted Pod Security Standard (PodSecurity admission is on in kube-apiserver).
func TestAPIServerAccepts(t *testing.T) {
	helmBinary(t) // skip before starting an API server when there is no Helm
	_, c := testenv.Start(t)
	strict := client.WithFieldValidation(c, metav1.FieldValidationStrict)
	ctx := context.Background()

	// Each install gets its own release and runs namespaces, so they do not collide.
	type install struct {
		name, release, ns, runsNS string
		args                      []string
	}
	installs := []install{
		{name: "defaults", release: release, ns: releaseNS, runsNS: defaultRunsNS},
		// Helm allows release names of up to 53 characters; every name derived from one
		// must still be valid (a Service name is a DNS label: at most 63).
		{name: "longest release name", release: "my-team-sandbox-release-for-python-exercises-prod-eu1", ns: "coderun-long", runsNS: "coderun-long-runs"},
		{name: "ingress and postgres", release: release, ns: "coderun-pg", runsNS: "coderun-pg-runs", args: []string{
			"--set", "ingress.enabled=true", "--set", "ingress.className=nginx", "--set", "ingress.host=coderun.example.com",
			"--set", "ingress.tls.secretName=coderun-tls", "--set", `ingress.annotations.cert-manager\.io/cluster-issuer=letsencrypt`,
			"--set", "front.database.url=postgres://coderun:secret@db:5432/coderun", "--set", "front.replicaCount=2",
			"--set", "front.service.type=NodePort", "--set", "front.service.nodePort=30080",
		}},
	}
	for _, f := range ciValuesFiles(t) {
		stem := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		installs = append(installs, install{name: filepath.Base(f), release: release, ns: "ci-" + stem, runsNS: "ci-" + stem + "-runs", args: []string{"-f", f}})
	}

	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			m := renderAs(t, in.release, in.ns, append(in.args, "--include-crds", "--set", "runs.namespace="+in.runsNS)...)
			createNamespace(t, c, in.ns, nil)
			for _, o := range m {
				var opts []client.CreateOption
				if o.GetKind() == "Runtime" {
					// Cluster-scoped and named alike by every install (and by
					// TestRuntimesAcceptedByAPIServer): validated in full, not kept.
					opts = append(opts, client.DryRunAll)
				}
				err := strict.Create(ctx, o.DeepCopy(), opts...)
				if o.GetKind() == "CustomResourceDefinition" && apierrors.IsAlreadyExists(err) {
					continue // testenv installed config/crd/bases, the same file (TestCRDIsGenerated)
				}
				if err != nil {
					t.Errorf("creating %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}

			// The rendered runs namespace enforces restricted too, but only run pods belong
			// there: the Deployments' pods are tried in a namespace of their own.
			podNS := createNamespace(t, c, in.ns+"-pods", restrictedLabels)
			for _, o := range m.ofKind("Deployment") {
				d := decode[appsv1.Deployment](t, o)
				if err := createPod(ctx, strict, podOf(d, podNS)); err != nil {
					t.Errorf("the pod of Deployment %s does not pass the restricted Pod Security Standard: %v", d.Name, err)
				}
			}
		})
	}

	// The acceptance above means something only if PodSecurity admission refuses pods that
	// are not locked down: the operator's pod without its security contexts must fail.
	t.Run("control: a pod not locked down is refused", func(t *testing.T) {
		d := deployment(t, render(t), "coderun-operator")
		pod := podOf(d, createNamespace(t, c, "pss-control", restrictedLabels))
		pod.Spec.SecurityContext = nil
		pod.Spec.Containers[0].SecurityContext = nil
		err := createPod(ctx, strict, pod)
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
			t.Errorf("a pod without security contexts in a restricted namespace: err %v, want refused by PodSecurity", err)
		}
	})
}

// podOf is the pod a Deployment's ReplicaSet would create, in namespace ns.
func podOf(d *appsv1.Deployment, ns string) *corev1.Pod {
	tmpl := d.Spec.Template.DeepCopy()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: ns, Labels: tmpl.Labels, Annotations: tmpl.Annotations},
		Spec:       tmpl.Spec,
	}
}

// createPod creates pod and, first, its service account, which the ServiceAccount
// admission plugin looks up.
func createPod(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.ServiceAccountName, Namespace: pod.Namespace}}
	if err := c.Create(ctx, sa); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating service account %s: %w", sa.Name, err)
	}
	return c.Create(ctx, pod)
}

// createNamespace creates namespace name with labels and returns its name.
func createNamespace(t *testing.T, c client.Client, name string, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}
