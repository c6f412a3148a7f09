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

// Package chart_test checks the Helm chart charts/coderun as a user installing it meets
// it: what `helm template` renders with its defaults, with each install shape in
// charts/coderun/ci and with single options; which values it refuses and why; and that a
// real API server (envtest) accepts all it renders, its pods under the restricted Pod
// Security Standard. Helm comes from $HELM (make test) or PATH.
package chart_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/config"
	"github.com/coderun-dev/coderun/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestSecurity checks the isolation the chart promises in every install shape: the runs
// namespace enforces the restricted Pod Security Standard and denies all traffic, and the
// operator and the front run locked down, bounded and probed.
func TestSecurity(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v.args...)

			ns := typed[corev1.Namespace](t, m, "Namespace", v.runsNS)
			if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
				t.Errorf("runs namespace %s: pod-security.kubernetes.io/enforce=%q, want restricted", ns.Name, got)
			}

			nps := m.ofKind("NetworkPolicy")
			if len(nps) != 1 {
				t.Fatalf("want one NetworkPolicy, got %d", len(nps))
			}
			np := decode[networkingv1.NetworkPolicy](t, nps[0])
			if np.Namespace != v.runsNS || len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) != 0 {
				t.Errorf("NetworkPolicy %s/%s selects %v, want every pod of %s", np.Namespace, np.Name, np.Spec.PodSelector, v.runsNS)
			}
			if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) ||
				len(np.Spec.Ingress) != 0 || len(np.Spec.Egress) != 0 {
				t.Errorf("NetworkPolicy allows some traffic: policyTypes %v, ingress %v, egress %v", np.Spec.PolicyTypes, np.Spec.Ingress, np.Spec.Egress)
			}

			for _, name := range []string{"operator", "front"} {
				d := deployment(t, m, "coderun-"+name)
				checkLockedDown(t, d, onlyContainer(t, d, name))
			}
			op := onlyContainer(t, deployment(t, m, "coderun-operator"), "operator")
			for _, arg := range []string{"--leader-elect", "--namespaces=" + v.runsNS} {
				if !slices.Contains(op.Args, arg) {
					t.Errorf("operator args %v lack %s", op.Args, arg)
				}
			}
			if front := onlyContainer(t, deployment(t, m, "coderun-front"), "front"); !slices.Contains(front.Args, "--namespace="+v.runsNS) {
				t.Errorf("front args %v lack --namespace=%s", front.Args, v.runsNS)
			}

			// Only runs belong in the runs namespace: the chart puts nothing there that
			// runs (or listens) itself, only the rules of who may act there and the pool
			// whose members the operator builds as runs.
			for _, o := range m {
				if o.GetNamespace() == v.runsNS && !slices.Contains([]string{"Role", "RoleBinding", "NetworkPolicy", "CodeRunPool"}, o.GetKind()) {
					t.Errorf("%s %s is in the runs namespace %s", o.GetKind(), o.GetName(), v.runsNS)
				}
			}
		})
	}
}

// checkLockedDown checks a pod template and its container against what the restricted Pod
// Security Standard and the chart's own rules (read-only root, bounded resources, probes) ask.
func checkLockedDown(t *testing.T, d *appsv1.Deployment, c corev1.Container) {
	t.Helper()
	pod := d.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", d.Name)
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile is not RuntimeDefault", d.Name)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("%s: pod shares a host namespace", d.Name)
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{} // every check below then reports what is missing
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation is not false", d.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem is not true", d.Name)
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities %+v, want drop [ALL] and no add", d.Name, sc.Capabilities)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: container is privileged", d.Name)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
		if req.Sign() <= 0 || lim.Sign() <= 0 {
			t.Errorf("%s: %s request %s and limit %s, want both set", d.Name, res, req.String(), lim.String())
		}
	}
	if c.LivenessProbe == nil || c.ReadinessProbe == nil {
		t.Errorf("%s: liveness probe %v, readiness probe %v: want both", d.Name, c.LivenessProbe != nil, c.ReadinessProbe != nil)
	}
}

// clusterScoped are the resources of the operator's rules that the chart grants through a
// ClusterRole: the nodes and RuntimeClasses it reads while runs.hostUsers is left to the
// cluster (controllers/usernamespaces.go). Everything else stays in the runs namespace.
var clusterScoped = []string{"nodes", "runtimeclasses"}

// runtimeScoped are the resources of the operator's rules that the chart grants through a
// ClusterRole of their own, always: the cluster-scoped Runtimes it resolves runs against.
var runtimeScoped = []string{"runtimes", "runtimes/status"}

// permissions flattens rules into "group/resource verb" lines (the core group is empty),
// sorted, so that rules grouped differently compare equal when they grant the same.
func permissions(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, verb := range r.Verbs {
					out = append(out, g+"/"+res+" "+verb)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitByScope splits the lines of permissions into those on clusterScoped resources, those
// on runtimeScoped ones and the rest.
func splitByScope(perms []string) (namespaced, cluster, runtimes []string) {
	for _, p := range perms {
		groupResource, _, _ := strings.Cut(p, " ")
		switch _, res, _ := strings.Cut(groupResource, "/"); {
		case slices.Contains(clusterScoped, res):
			cluster = append(cluster, p)
		case slices.Contains(runtimeScoped, res):
			runtimes = append(runtimes, p)
		default:
			namespaced = append(namespaced, p)
		}
	}
	return namespaced, cluster, runtimes
}

// TestRBAC checks least privilege: Roles, each where it applies, with exactly the rules of
// the kustomize manifests (the operator's generated by controller-gen from its markers),
// bound to the chart's own service accounts; cluster-wide only the operator's reading of
// nodes and RuntimeClasses, and only while runs.hostUsers is left to the cluster.
func TestRBAC(t *testing.T) {
	opRules := typed[rbacv1.ClusterRole](t, readManifest(t, "config/rbac/role.yaml"), "ClusterRole", "operator").Rules
	frontRules := typed[rbacv1.Role](t, readManifest(t, "config/runs/front_rbac.yaml"), "Role", "coderun-front").Rules
	leRules := typed[rbacv1.Role](t, readManifest(t, "config/rbac/leader_election_role.yaml"), "Role", "leader-election").Rules
	frontClusterRules := typed[rbacv1.ClusterRole](t, readManifest(t, "config/runs/front_rbac.yaml"), "ClusterRole", "coderun-front-runtimes").Rules
	opNamespaced, opCluster, opRuntimes := splitByScope(permissions(opRules))
	if len(opCluster) == 0 || len(opRuntimes) == 0 {
		t.Fatalf("config/rbac/role.yaml grants nothing on %v: the operator's markers changed, update clusterScoped", clusterScoped)
	}

	cases := variants(t)
	for _, hostUsers := range []string{"true", "false"} {
		cases = append(cases, variant{name: "hostUsers " + hostUsers, args: []string{"--set", "runs.hostUsers=" + hostUsers}, runsNS: defaultRunsNS})
	}
	for _, v := range cases {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v.args...)
			// Left to the cluster (null), the operator reads the nodes; set, it does not.
			auto := operatorConfig(t, m).HostUsers == nil
			wantCluster := 0
			if auto {
				wantCluster = 1
			}
			// The front and the operator read the cluster-scoped Runtimes, always.
			wantCluster += 2
			if n, nb := len(m.ofKind("ClusterRole")), len(m.ofKind("ClusterRoleBinding")); n != wantCluster || nb != wantCluster {
				t.Errorf("%d ClusterRoles and %d ClusterRoleBindings rendered, want %d of each (hostUsers left to the cluster: %t)", n, nb, wantCluster, auto)
			}
			frontCR := "coderun-front-runtimes-" + releaseNS
			if cr := typed[rbacv1.ClusterRole](t, m, "ClusterRole", frontCR); !equality.Semantic.DeepEqual(cr.Rules, frontClusterRules) {
				t.Errorf("ClusterRole %s rules differ from config/runs/front_rbac.yaml's:\n got %s\nwant %s", frontCR, toYAML(cr.Rules), toYAML(frontClusterRules))
			}
			b := typed[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", frontCR)
			if want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coderun-front", Namespace: releaseNS}}; b.RoleRef.Kind != "ClusterRole" ||
				b.RoleRef.Name != frontCR || !equality.Semantic.DeepEqual(b.Subjects, want) {
				t.Errorf("ClusterRoleBinding %s binds %s %s to %v, want ClusterRole %s to the front's service account", frontCR, b.RoleRef.Kind, b.RoleRef.Name, b.Subjects, frontCR)
			}
			opRuntimesCR := "coderun-operator-runtimes-" + releaseNS
			if got := permissions(typed[rbacv1.ClusterRole](t, m, "ClusterRole", opRuntimesCR).Rules); !slices.Equal(got, opRuntimes) {
				t.Errorf("ClusterRole %s grants %q, want only the operator's rules on Runtimes %q", opRuntimesCR, got, opRuntimes)
			}
			if b := typed[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", opRuntimesCR); b.RoleRef.Name != opRuntimesCR ||
				!equality.Semantic.DeepEqual(b.Subjects, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coderun-operator", Namespace: releaseNS}}) {
				t.Errorf("ClusterRoleBinding %s binds %s to %v, want it to the operator's service account", opRuntimesCR, b.RoleRef.Name, b.Subjects)
			}
			if auto {
				name := "coderun-operator-nodes-" + releaseNS
				cr := typed[rbacv1.ClusterRole](t, m, "ClusterRole", name)
				if got := permissions(cr.Rules); !slices.Equal(got, opCluster) {
					t.Errorf("ClusterRole %s grants %q, want only the operator's cluster-scoped %q", name, got, opCluster)
				}
				b := typed[rbacv1.ClusterRoleBinding](t, m, "ClusterRoleBinding", name)
				want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "coderun-operator", Namespace: releaseNS}}
				if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != name || !equality.Semantic.DeepEqual(b.Subjects, want) {
					t.Errorf("ClusterRoleBinding %s binds %s %s to %v, want ClusterRole %s to the operator's service account", name, b.RoleRef.Kind, b.RoleRef.Name, b.Subjects, name)
				}
			}
			op := typed[rbacv1.Role](t, m, "Role", "coderun-operator")
			if got := permissions(op.Rules); !slices.Equal(got, opNamespaced) {
				t.Errorf("Role coderun-operator grants %q, want the operator's rules but for cluster-scoped resources, %q", got, opNamespaced)
			}
			if op.Namespace != v.runsNS {
				t.Errorf("Role %s is in %q, want %q", op.Name, op.Namespace, v.runsNS)
			}
			roles := []struct {
				name, namespace string
				rules           []rbacv1.PolicyRule
			}{
				{"coderun-front", v.runsNS, frontRules},
				{"coderun-operator-leader-election", releaseNS, leRules},
			}
			for _, want := range roles {
				r := typed[rbacv1.Role](t, m, "Role", want.name)
				if r.Namespace != want.namespace {
					t.Errorf("Role %s is in %q, want %q", r.Name, r.Namespace, want.namespace)
				}
				if !equality.Semantic.DeepEqual(r.Rules, want.rules) {
					t.Errorf("Role %s rules differ from the kustomize manifests':\n got %s\nwant %s", r.Name, toYAML(r.Rules), toYAML(want.rules))
				}
			}
			if n := len(m.ofKind("Role")); n != len(roles)+1 {
				t.Errorf("%d Roles rendered, want %d", n, len(roles)+1)
			}
			for _, o := range m.ofKind("RoleBinding") {
				b := decode[rbacv1.RoleBinding](t, o)
				if role := m.get("Role", b.RoleRef.Name); b.RoleRef.Kind != "Role" || role == nil || role.GetNamespace() != b.Namespace {
					t.Errorf("RoleBinding %s/%s refers to %s %s, not to a Role the chart renders in its namespace", b.Namespace, b.Name, b.RoleRef.Kind, b.RoleRef.Name)
				}
				for _, s := range b.Subjects {
					if sa := m.get("ServiceAccount", s.Name); s.Kind != "ServiceAccount" || sa == nil || s.Namespace != releaseNS || sa.GetNamespace() != releaseNS {
						t.Errorf("RoleBinding %s binds %s %s/%s, not a service account of the chart", b.Name, s.Kind, s.Namespace, s.Name)
					}
				}
			}
			for _, name := range []string{"operator", "front"} {
				d := deployment(t, m, "coderun-"+name)
				if sa := d.Spec.Template.Spec.ServiceAccountName; sa != "coderun-"+name || m.get("ServiceAccount", sa) == nil {
					t.Errorf("Deployment %s runs as service account %q, want the chart's coderun-%s", d.Name, sa, name)
				}
			}
		})
	}
}

func toYAML(v any) string {
	out, err := yaml.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(out)
}

// TestCRDIsGenerated checks that the chart ships the CRD controller-gen writes, unchanged
// (make manifests copies it; a hand edit in one place would drift).
func TestCRDIsGenerated(t *testing.T) {
	generated, err := filepath.Glob(filepath.Join(repoRoot, "config/crd/bases/*.yaml"))
	if err != nil || len(generated) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	inChart, err := filepath.Glob(filepath.Join(chartDir, "crds/*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inChart) != len(generated) {
		t.Errorf("chart crds/ holds %d files, config/crd/bases %d", len(inChart), len(generated))
	}
	for _, g := range generated {
		want, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(g)))
		if err != nil {
			t.Errorf("chart lacks %s: %v", filepath.Base(g), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("crds/%s differs from config/crd/bases: run make manifests", filepath.Base(g))
		}
	}
}

// TestOperatorConfig checks the configuration the operator and the front read: by default
// the same as the kustomize deployment's but for the runner image, and each value under
// runs reaching it.
func TestOperatorConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		got := operatorConfig(t, render(t))
		want, err := config.Load(filepath.Join(repoRoot, "config/manager/operator-config.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if img := "ghcr.io/coderun-dev/coderun-python:" + appVersion(t); got.RunnerImage != img {
			t.Errorf("runnerImage %q, want %q", got.RunnerImage, img)
		}
		got.RunnerImage = want.RunnerImage
		if !equality.Semantic.DeepEqual(got, want) {
			t.Errorf("rendered config differs from config/manager/operator-config.yaml:\n got %s\nwant %s", toYAML(got), toYAML(want))
		}
	})

	cases := []struct {
		name  string
		set   []string
		check func(c config.Config) bool
	}{
		{"maxConcurrentRuns", []string{"runs.maxConcurrentRuns=7"}, func(c config.Config) bool { return c.MaxConcurrentRuns == 7 }},
		{"runtimeClassName", []string{"runs.runtimeClassName=gvisor"}, func(c config.Config) bool { return c.RuntimeClassName == "gvisor" }},
		{"nodeSelector", []string{"runs.nodeSelector.pool=sandbox"}, func(c config.Config) bool {
			return len(c.NodeSelector) == 1 && c.NodeSelector["pool"] == "sandbox"
		}},
		{"tolerations", []string{"runs.tolerations[0].key=sandbox,runs.tolerations[0].operator=Exists,runs.tolerations[0].effect=NoSchedule"}, func(c config.Config) bool {
			return slices.Equal(c.Tolerations, []corev1.Toleration{{Key: "sandbox", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}})
		}},
		{"hostUsers false", []string{"runs.hostUsers=false"}, func(c config.Config) bool { return c.HostUsers != nil && !*c.HostUsers }},
		{"hostUsers true", []string{"runs.hostUsers=true"}, func(c config.Config) bool { return c.HostUsers != nil && *c.HostUsers }},
		{"hostUsers left to the cluster", nil, func(c config.Config) bool { return c.HostUsers == nil }},
		{"limits", []string{"runs.defaultLimits.cpu=500m", "runs.maxLimits.memory=2Gi", "runs.maxLimits.timeoutSeconds=120"}, func(c config.Config) bool {
			return c.DefaultLimits.CPU.Equal(resource.MustParse("500m")) && c.MaxLimits.Memory.Equal(resource.MustParse("2Gi")) && *c.MaxLimits.TimeoutSeconds == 120
		}},
		{"durations", []string{"runs.startTimeout=90s", "runs.jobTTL=1h"}, func(c config.Config) bool {
			return c.StartTimeout.Seconds() == 90 && c.JobTTL.Hours() == 1
		}},
		{"pull policy", []string{"image.pullPolicy=Always"}, func(c config.Config) bool { return c.ImagePullPolicy == corev1.PullAlways }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			if c := operatorConfig(t, render(t, args...)); !tc.check(c) {
				t.Errorf("--set %v did not reach the operator's configuration:\n%s", tc.set, toYAML(c))
			}
		})
	}
}

func TestIngress(t *testing.T) {
	if n := len(render(t).ofKind("Ingress")); n != 0 {
		t.Errorf("ingress disabled by default, but %d Ingress rendered", n)
	}
	m := render(t, "--set", "ingress.enabled=true", "--set", "ingress.className=nginx",
		"--set", "ingress.host=coderun.example.com", "--set", "ingress.tls.secretName=coderun-tls",
		"--set", `ingress.annotations.cert-manager\.io/cluster-issuer=letsencrypt`)
	ing := typed[networkingv1.Ingress](t, m, "Ingress", "coderun")
	if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
		t.Errorf("ingressClassName %v, want nginx", ing.Spec.IngressClassName)
	}
	if ing.Annotations["cert-manager.io/cluster-issuer"] != "letsencrypt" {
		t.Errorf("annotations %v lack cert-manager.io/cluster-issuer=letsencrypt", ing.Annotations)
	}
	if len(ing.Spec.TLS) != 1 || ing.Spec.TLS[0].SecretName != "coderun-tls" || !slices.Equal(ing.Spec.TLS[0].Hosts, []string{"coderun.example.com"}) {
		t.Errorf("tls %+v, want secret coderun-tls for coderun.example.com", ing.Spec.TLS)
	}
	if len(ing.Spec.Rules) != 1 || ing.Spec.Rules[0].Host != "coderun.example.com" || ing.Spec.Rules[0].HTTP == nil || len(ing.Spec.Rules[0].HTTP.Paths) != 1 {
		t.Fatalf("rules %+v, want one for coderun.example.com with one path", ing.Spec.Rules)
	}
	// The page's paths are absolute (/execute, /assets/...): the front owns the host's root.
	if p := ing.Spec.Rules[0].HTTP.Paths[0]; p.Path != "/" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
		t.Errorf("path %q type %v, want / Prefix", p.Path, p.PathType)
	}
	backend := ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service
	svc := typed[corev1.Service](t, m, "Service", "coderun-front")
	if backend == nil || backend.Name != svc.Name || backend.Port.Name != "http" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" {
		t.Errorf("backend %+v, want the front Service's port http", backend)
	}
}

// TestSelectors checks that the Service and each PodDisruptionBudget select the pods of
// their component, in every install shape.
func TestSelectors(t *testing.T) {
	for _, v := range variants(t) {
		t.Run(v.name, func(t *testing.T) {
			m := render(t, v.args...)
			front := deployment(t, m, "coderun-front")
			svc := typed[corev1.Service](t, m, "Service", "coderun-front")
			if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(front.Spec.Template.Labels)) {
				t.Errorf("Service selector %v does not select the front's pods %v", svc.Spec.Selector, front.Spec.Template.Labels)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != onlyContainer(t, front, "front").Ports[0].Name {
				t.Errorf("Service ports %+v do not target the front container's port", svc.Spec.Ports)
			}
			for _, o := range m.ofKind("PodDisruptionBudget") {
				pdb := decode[policyv1.PodDisruptionBudget](t, o)
				d := deployment(t, m, pdb.Name) // named after its Deployment
				sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
				if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("PodDisruptionBudget %s selects %v, not the pods of Deployment %s (%v)", pdb.Name, pdb.Spec.Selector, d.Name, err)
				}
				if *d.Spec.Replicas < 2 {
					t.Errorf("PodDisruptionBudget %s with %d replicas would block every node drain", pdb.Name, *d.Spec.Replicas)
				}
			}
		})
	}
}

// TestFrontDatabase checks each place the front may keep its data.
func TestFrontDatabase(t *testing.T) {
	const url = "postgres://coderun:secret@db.example.com:5432/coderun?sslmode=require"
	cases := []struct {
		name string
		set  []string
		// The PVC the chart creates ("" none), the claim the pod mounts ("" none), and the
		// Secret and key of CODERUN_DATABASE ("" no variable).
		pvc, claim, secret, key string
		replicas                int32
	}{
		{name: "SQLite on a PVC of the chart", pvc: "coderun-front-data", claim: "coderun-front-data", replicas: 1},
		{name: "SQLite on an existing claim", set: []string{"front.persistence.existingClaim=my-claim"}, claim: "my-claim", replicas: 1},
		{name: "existing Secret, three replicas", set: []string{"front.database.existingSecret=pg", "front.database.existingSecretKey=dsn", "front.replicaCount=3"},
			secret: "pg", key: "dsn", replicas: 3},
		{name: "URL in a Secret of the chart", set: []string{"front.database.url=" + url}, secret: "coderun-database", key: "url", replicas: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			m := render(t, args...)
			d := deployment(t, m, "coderun-front")
			c := onlyContainer(t, d, "front")
			sqlite := tc.secret == ""

			pvcs := m.ofKind("PersistentVolumeClaim")
			if tc.pvc == "" && len(pvcs) != 0 {
				t.Errorf("a PVC is rendered: %s", pvcs[0].GetName())
			}
			if tc.pvc != "" {
				if pvc := typed[corev1.PersistentVolumeClaim](t, m, "PersistentVolumeClaim", tc.pvc); pvc.Annotations["helm.sh/resource-policy"] != "keep" {
					t.Errorf("PVC %s is not annotated helm.sh/resource-policy: keep; uninstalling would delete the submissions", pvc.Name)
				}
			}
			data := volume(d.Spec.Template.Spec, "data")
			switch {
			case tc.claim == "" && data != nil:
				t.Errorf("the front mounts a data volume with PostgreSQL: %+v", data)
			case tc.claim != "" && (data == nil || data.PersistentVolumeClaim == nil || data.PersistentVolumeClaim.ClaimName != tc.claim):
				t.Errorf("data volume %+v, want claim %s", data, tc.claim)
			}

			env := envVar(c, "CODERUN_DATABASE")
			if sqlite {
				if env != nil || !slices.Contains(c.Args, "--database=/var/lib/coderun/coderun.db") {
					t.Errorf("SQLite: env CODERUN_DATABASE %+v, args %v; want no env and --database on the volume", env, c.Args)
				}
			} else {
				ref := (*corev1.SecretKeySelector)(nil)
				if env != nil && env.ValueFrom != nil {
					ref = env.ValueFrom.SecretKeyRef
				}
				if ref == nil || ref.Name != tc.secret || ref.Key != tc.key || env.Value != "" {
					t.Errorf("env CODERUN_DATABASE %+v, want from Secret %s key %s", env, tc.secret, tc.key)
				}
				if hasArgPrefix(c, "--database") {
					t.Errorf("args %v hold --database: the URL must come from the Secret", c.Args)
				}
			}
			if s := m.get("Secret", "coderun-database"); (tc.secret == "coderun-database") != (s != nil) {
				t.Errorf("Secret coderun-database rendered: %v, want %v", s != nil, tc.secret == "coderun-database")
			} else if s != nil {
				if sec := decode[corev1.Secret](t, s); sec.StringData["url"] != url {
					t.Errorf("Secret coderun-database url %q, want %q", sec.StringData["url"], url)
				}
			}

			wantStrategy := appsv1.RollingUpdateDeploymentStrategyType
			if sqlite { // a ReadWriteOnce volume: the old pod must let go of it first
				wantStrategy = appsv1.RecreateDeploymentStrategyType
			}
			if d.Spec.Strategy.Type != wantStrategy {
				t.Errorf("strategy %s, want %s", d.Spec.Strategy.Type, wantStrategy)
			}
			if fsGroup := d.Spec.Template.Spec.SecurityContext.FSGroup; sqlite && fsGroup == nil {
				t.Error("SQLite volume but no fsGroup: the non-root front could not write it")
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != tc.replicas {
				t.Errorf("replicas %v, want %d", d.Spec.Replicas, tc.replicas)
			}
		})
	}
}

// TestPodDisruptionBudgets checks that a component with several replicas keeps one through
// node drains, and that one with a single replica does not block them.
func TestPodDisruptionBudgets(t *testing.T) {
	cases := []struct {
		set  []string
		want []string
	}{
		{nil, nil},
		{[]string{"operator.replicaCount=2"}, []string{"coderun-operator"}},
		{[]string{"front.replicaCount=2", "front.database.existingSecret=pg"}, []string{"coderun-front"}},
	}
	for _, tc := range cases {
		var args []string
		for _, s := range tc.set {
			args = append(args, "--set", s)
		}
		var got []string
		for _, o := range render(t, args...).ofKind("PodDisruptionBudget") {
			if pdb := decode[policyv1.PodDisruptionBudget](t, o); pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
				t.Errorf("%v: PodDisruptionBudget %s minAvailable %v, want 1", tc.set, pdb.Name, pdb.Spec.MinAvailable)
			}
			got = append(got, o.GetName())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("--set %v: PodDisruptionBudgets %v, want %v", tc.set, got, tc.want)
		}
	}
}

func TestRunsNamespaceOptions(t *testing.T) {
	m := render(t, "--set", "runs.createNamespace=false")
	if n := len(m.ofKind("Namespace")); n != 0 {
		t.Errorf("runs.createNamespace=false, but %d Namespace rendered", n)
	}
	if len(m.ofKind("NetworkPolicy")) != 1 {
		t.Error("runs.createNamespace=false dropped the NetworkPolicy")
	}
	m = render(t, "--set", "runs.networkPolicy=false")
	if n := len(m.ofKind("NetworkPolicy")); n != 0 {
		t.Errorf("runs.networkPolicy=false, but %d NetworkPolicy rendered", n)
	}
	if m.get("Namespace", defaultRunsNS) == nil {
		t.Error("runs.networkPolicy=false dropped the runs namespace")
	}
}

// TestPool checks the default warm pool: its shape is the default limits, so that a run
// asking for nothing fits it, and the pool values reach it.
func TestPool(t *testing.T) {
	m := render(t)
	pool := typed[execv1alpha1.CodeRunPool](t, m, "CodeRunPool", "default")
	if pool.Namespace != defaultRunsNS {
		t.Errorf("the pool is in %q, want the runs namespace %q", pool.Namespace, defaultRunsNS)
	}
	cfg := operatorConfig(t, m)
	if got := pool.Spec.Limits; *got.TimeoutSeconds != *cfg.DefaultLimits.TimeoutSeconds ||
		got.Memory.Cmp(*cfg.DefaultLimits.Memory) != 0 || got.CPU.Cmp(*cfg.DefaultLimits.CPU) != 0 {
		t.Errorf("pool shape %s/%s/%ds, want the default limits %s/%s/%ds", got.CPU, got.Memory, *got.TimeoutSeconds,
			cfg.DefaultLimits.CPU, cfg.DefaultLimits.Memory, *cfg.DefaultLimits.TimeoutSeconds)
	}
	if pool.Spec.Replicas == nil || *pool.Spec.Replicas != 2 || pool.Spec.CPURequest != nil || *pool.Spec.MaxIdleSeconds != 600 {
		t.Errorf("pool spec %+v, want 2 replicas, no cpuRequest, maxIdleSeconds 600", pool.Spec)
	}

	m = render(t, "--set", "pool.replicas=5", "--set", "pool.cpuRequest=100m", "--set", "pool.maxIdleSeconds=60")
	pool = typed[execv1alpha1.CodeRunPool](t, m, "CodeRunPool", "default")
	if *pool.Spec.Replicas != 5 || pool.Spec.CPURequest == nil || pool.Spec.CPURequest.String() != "100m" || *pool.Spec.MaxIdleSeconds != 60 {
		t.Errorf("pool spec %+v, want 5 replicas, cpuRequest 100m, maxIdleSeconds 60", pool.Spec)
	}
	if n := len(render(t, "--set", "pool.enabled=false").ofKind("CodeRunPool")); n != 0 {
		t.Errorf("pool.enabled=false, but %d CodeRunPool rendered", n)
	}
}

func TestImages(t *testing.T) {
	m := render(t, "--set", "image.registry=registry.example.com/team", "--set", "image.tag=1.2.3")
	want := map[string]string{
		"operator": "registry.example.com/team/coderun-operator:1.2.3",
		"front":    "registry.example.com/team/coderun-front:1.2.3",
	}
	for name, img := range want {
		if c := onlyContainer(t, deployment(t, m, "coderun-"+name), name); c.Image != img {
			t.Errorf("%s image %q, want %q", name, c.Image, img)
		}
	}
	if got := operatorConfig(t, m).RunnerImage; got != "registry.example.com/team/coderun-python:1.2.3" {
		t.Errorf("runnerImage %q, want registry.example.com/team/coderun-python:1.2.3", got)
	}
}

// TestRefusedValues checks that values the operator or the front could not run with are
// refused at install, with a message naming the value, rather than installed into a crash
// loop. A key path may appear as runs.x.y (the chart's checks) or /runs/x/y (the schema's).
func TestRefusedValues(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown top-level key", []string{"--set", "fronts.replicaCount=1"}, []string{"'fronts'", "not allowed"}},
		{"unknown nested key", []string{"--set", "runs.maxConcurentRuns=3"}, []string{"'maxConcurentRuns'", "not allowed"}},
		{"unknown deeper key", []string{"--set", "ingress.tls.secret=x"}, []string{"'secret'", "not allowed"}},
		{"no run slots", []string{"--set", "runs.maxConcurrentRuns=0"}, []string{"runs.maxConcurrentRuns"}},
		{"memory not a quantity", []string{"--set", "runs.defaultLimits.memory=lots"}, []string{"runs.defaultLimits.memory"}},
		{"negative cpu", []string{"--set", "runs.maxLimits.cpu=-1"}, []string{"runs.maxLimits.cpu"}},
		{"default timeout above maximum", []string{"--set", "runs.defaultLimits.timeoutSeconds=100"}, []string{"runs.defaultLimits.timeoutSeconds", "runs.maxLimits.timeoutSeconds"}},
		{"default memory above maximum", []string{"--set", "runs.defaultLimits.memory=2Gi"}, []string{"runs.defaultLimits.memory"}},
		{"default cpu above maximum", []string{"--set", "runs.defaultLimits.cpu=3"}, []string{"runs.defaultLimits.cpu"}},
		{"start timeout not a duration", []string{"--set", "runs.startTimeout=soon"}, []string{"runs.startTimeout"}},
		{"start timeout under 10s", []string{"--set", "runs.startTimeout=5s"}, []string{"runs.startTimeout"}},
		{"empty scratch", []string{"--set", "runs.scratchSize=0"}, []string{"runs.scratchSize"}},
		{"run uids past 2^31", []string{"--set", "runs.runUIDMin=2147483000"}, []string{"runs.runUIDMin"}},
		{"zero queue wait", []string{"--set", "front.queueWait=0s"}, []string{"front.queueWait"}},
		{"two fronts on SQLite", []string{"--set", "front.replicaCount=2"}, []string{"front.replicaCount", "SQLite"}},
		{"URL and existing Secret", []string{"--set", "front.database.url=postgres://u:p@db/c", "--set", "front.database.existingSecret=pg"},
			[]string{"front.database.url and front.database.existingSecret are both set"}},
		{"not PostgreSQL", []string{"--set", "front.database.url=mysql://x"}, []string{"front.database.url"}},
		{"TLS without host", []string{"--set", "ingress.enabled=true", "--set", "ingress.tls.secretName=tls"}, []string{"ingress.tls.secretName", "ingress.host"}},
		{"runs in the release namespace", []string{"--set", "runs.namespace=" + releaseNS}, []string{"runs.namespace", "release namespace"}},
		{"unknown pull policy", []string{"--set", "image.pullPolicy=Sometimes"}, []string{"image.pullPolicy"}},
		{"negative pool", []string{"--set", "pool.replicas=-1"}, []string{"pool.replicas"}},
		{"pool cpu request not a quantity", []string{"--set", "pool.cpuRequest=some"}, []string{"pool.cpuRequest"}},
		{"members that never wait", []string{"--set", "pool.maxIdleSeconds=0"}, []string{"pool.maxIdleSeconds"}},
		{"API keys without a Secret", []string{"--set", "front.auth.enabled=true"}, []string{"front.auth.existingSecret"}},
		{"anonymous without API keys", []string{"--set", "front.auth.anonymous.enabled=true"}, []string{"front.auth.anonymous.enabled", "front.auth.enabled"}},
		{"key rate zero", []string{"--set", "front.auth.defaults.rate=0"}, []string{"/front/auth/defaults/rate"}},
		{"anonymous in flight zero", []string{"--set", "front.auth.anonymous.maxInFlight=0"}, []string{"/front/auth/anonymous/maxInFlight"}},
		{"trusted proxy not an address", []string{"--set", "front.trustedProxies={ingress-nginx}"}, []string{"/front/trustedProxies/0"}},
		{"reload interval not a duration", []string{"--set", "front.auth.reloadInterval=often"}, []string{"/front/auth/reloadInterval"}},
		// Auto is null, not a word.
		{"hostUsers auto", []string{"--set", "runs.hostUsers=auto"}, []string{"/runs/hostUsers", "want null or boolean"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := helmTemplate(t, release, releaseNS, tc.args...)
			if err == nil {
				// Say what the operator would make of it, to show why it must be refused.
				verdict := "loads"
				if _, err := loadRenderedConfig(t, parseManifest(t, []byte(out))); err != nil {
					verdict = "fails: " + err.Error()
				}
				t.Fatalf("helm accepted %v; config.Load of the operator configuration it rendered %s", tc.args, verdict)
			}
			asPaths := strings.ReplaceAll(errOut, "/", ".")
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) && !strings.Contains(asPaths, w) {
					t.Errorf("helm refused %v but its message does not name %q:\n%s", tc.args, w, errOut)
				}
			}
		})
	}
}
