//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// A second release of the chart, next to the one make dev installed, with the front service's
// submissions in PostgreSQL (TestChartWithPostgres).
const (
	pgNamespace        = "coderun-e2e-pg"        // the PostgreSQL server
	pgReleaseNamespace = "coderun-e2e-pg-system" // release coderun-pg
	pgRunsNamespace    = "coderun-e2e-pg-runs"   // its runs
	pgRelease          = "coderun-pg"            // its objects are coderun-pg-front, coderun-pg-operator
	pgServer           = "postgres"              // Deployment, Service and Secret in pgNamespace
	pgURLSecret        = "e2e-postgres-url"      // front.database.existingSecret
	pgUser             = "coderun"               // the image's POSTGRES_USER and POSTGRES_DB defaults
	pgUID              = 999                     // the postgres user of test/images/postgres
	pgFrontReplicas    = 2
	pgOperatorReplicas = 2
)

// TestChartWithPostgres installs the chart a second time, as a user who wants several front
// replicas does: a PostgreSQL URL in a Secret (front.database.existingSecret), two front
// replicas (RollingUpdate) and two operator replicas. Submissions saved through one front pod
// are read through the other (and are rows of PostgreSQL, checked with psql), runs work
// through both, a rolling update of the front keeps a replica available and keeps
// every submission, and one operator pod holds the leader Lease. The PostgreSQL server is a
// pod of test/images/postgres (E2E_POSTGRES_IMAGE), reached by its Service's ClusterIP (the
// local cluster has no DNS). Everything is removed when the test ends, also on failure. Not
// parallel: it starts four more pods and its runs share the node with the main release's.
func TestChartWithPostgres(t *testing.T) {
	helm, image := os.Getenv("HELM"), os.Getenv("E2E_POSTGRES_IMAGE")
	if helm == "" || image == "" {
		testneed.Skip(t, "HELM and E2E_POSTGRES_IMAGE are not set; make test-e2e sets them (hack/e2e-images.sh builds and loads the PostgreSQL image)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	step := func(name string, f func()) {
		start := time.Now()
		defer func() { t.Logf("step %q took %s", name, time.Since(start).Round(100*time.Millisecond)) }()
		f()
	}

	// Leftovers of an aborted earlier run would make the install fail: remove them first.
	step("remove leftovers", func() {
		if removed := pgTeardown(ctx, t, helm, false); removed {
			t.Log("removed the leftovers of an earlier run")
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	installed := false
	t.Cleanup(func() {
		cleanupCtx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		if t.Failed() {
			pgDiagnostics(cleanupCtx, t)
		}
		start := time.Now()
		pgTeardown(cleanupCtx, t, helm, installed && !t.Failed())
		t.Logf("step %q took %s", "cleanup", time.Since(start).Round(100*time.Millisecond))
	})

	var serverIP string
	step("start PostgreSQL", func() { serverIP = startPostgres(ctx, t, image) })

	var keys e2eKeys
	step("create the URL Secret", func() {
		createObject(ctx, t, pgNamespaceObject(pgReleaseNamespace))
		keys = createAPIKeysSecret(ctx, t) // API keys on, anonymous access too (auth_test.go)
		// PostgreSQL checks the password: the URL is the only place the front finds it.
		url := fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", pgUser, pgPassword, net.JoinHostPort(serverIP, "5432"), pgUser)
		createObject(ctx, t, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: pgURLSecret, Namespace: pgReleaseNamespace, Labels: suiteLabels()},
			StringData: map[string]string{"url": url},
		})
	})

	tag := imageTag(ctx, t, frontDeployment) // of the main release, loaded into the node
	step("helm install", func() {
		installed = true
		runHelm(ctx, t, helm, pgReleaseNamespace, append(append([]string{"install", pgRelease, chartPath, "--create-namespace"}, pgAuthValues...),
			"-f", "../../hack/dev-values.yaml", "--set", "image.tag="+tag,
			"--set", "runs.namespace="+pgRunsNamespace,
			"--set", "front.database.existingSecret="+pgURLSecret,
			"--set", fmt.Sprintf("front.replicaCount=%d", pgFrontReplicas),
			"--set", fmt.Sprintf("operator.replicaCount=%d", pgOperatorReplicas),
			"--set", "runs.maxConcurrentRuns=1", // two cores, and the main release runs too
			"--set", "runtimes.install=false", // the main release owns the cluster-scoped Runtimes
			"--wait", "--timeout", "5m")...)
	})
	t.Logf("release %s installed in %s with images tagged %s, runs in %s", pgRelease, pgReleaseNamespace, tag, pgRunsNamespace)

	var frontPods []string
	step("check the release", func() {
		expectPostgresFront(ctx, t)
		frontPods = pgPodNames(ctx, t, "front", pgFrontReplicas)
		pgPodNames(ctx, t, "operator", pgOperatorReplicas)
		expectNoRestarts(ctx, t, "front")
	})

	var saved []json.RawMessage
	step("share submissions between the front pods", func() {
		a := startPortForward(t, pgReleaseNamespace, "pod/"+frontPods[0])
		b := startPortForward(t, pgReleaseNamespace, "pod/"+frontPods[1])
		idA := pgSubmit(ctx, t, a, fmt.Sprintf("print('saved through %s')", frontPods[0]))
		idB := pgSubmit(ctx, t, b, fmt.Sprintf("print('saved through %s')", frontPods[1]))
		if idA == idB {
			t.Fatalf("both front pods saved their submission as id %d", idA)
		}
		expectSubmission(ctx, t, b, idA, fmt.Sprintf("print('saved through %s')", frontPods[0]))
		expectSubmission(ctx, t, a, idB, fmt.Sprintf("print('saved through %s')", frontPods[1]))
		for _, pf := range []*portForward{a, b} {
			pgExecute(ctx, t, pf)
		}
		saved = allSubmissions(ctx, t, a.url)
		if fromB := allSubmissions(ctx, t, b.url); !reflect.DeepEqual(saved, fromB) {
			t.Fatalf("the front pods list different submissions:\n%s: %s\n%s: %s", frontPods[0], saved, frontPods[1], fromB)
		}
		if len(saved) != 2 {
			t.Fatalf("%d submissions listed, want the 2 this test saved: %s", len(saved), saved)
		}
		// And they are PostgreSQL's rows, not something a pod keeps for itself.
		if rows := psql(ctx, t, "SELECT count(*) FROM submissions"); rows != "2" {
			t.Fatalf("PostgreSQL's submissions table has %s rows, want 2", rows)
		}
		a.stop()
		b.stop()
	})

	step("helm upgrade (rolling update of the front)", func() {
		// The Deployment's status while Helm waits: a rolling update keeps a replica available.
		watchCtx, stopWatch := context.WithCancel(ctx)
		minAvailable := make(chan int32, 1)
		go func() { minAvailable <- watchFrontAvailability(watchCtx) }()
		runHelm(ctx, t, helm, pgReleaseNamespace, "upgrade", pgRelease, chartPath, "--reuse-values",
			"--set", "front.podAnnotations.e2e=rolled", "--wait", "--timeout", "5m")
		stopWatch()
		least := <-minAvailable
		t.Logf("during the update the front had at least %d available replicas (Deployment status, polled)", least)
		if least < 1 {
			t.Errorf("the front had no available replica during the rolling update")
		}
	})

	step("check the release after the update", func() {
		var dep appsv1.Deployment
		getObject(ctx, t, client.ObjectKey{Namespace: pgReleaseNamespace, Name: pgRelease + "-front"}, &dep)
		if dep.Spec.Template.Annotations["e2e"] != "rolled" || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
			t.Fatalf("the front's pod template has annotations %v and strategy %q, want e2e=rolled and RollingUpdate", dep.Spec.Template.Annotations, dep.Spec.Strategy.Type)
		}
		rolled := waitForRolledFront(ctx, t, frontPods)
		t.Logf("front pods %v replaced by %v", frontPods, rolled)
		svc := startPortForward(t, pgReleaseNamespace, "service/"+pgRelease+"-front")
		if got := allSubmissions(ctx, t, svc.url); !reflect.DeepEqual(got, saved) {
			t.Fatalf("submissions changed by the rolling update:\nbefore: %s\nafter:  %s", saved, got)
		}
		pgExecute(ctx, t, svc)
		leader := waitForLeader(ctx, t, pgReleaseNamespace, "")
		t.Logf("operator pod %s holds Lease %s/%s", leader, pgReleaseNamespace, leaderLease)
		// The chart's NetworkPolicy holds for this release's runs namespace too (networkpolicy_test.go).
		checkSecondReleaseIsolation(ctx, t, svc.url, pgReleaseNamespace, pgRelease+"-front")
	})

	step("API keys", func() { checkAPIKeys(ctx, t, helm, keys) })
}

// pgPassword is the PostgreSQL user's password, new for each test process.
var pgPassword = randomID(16)

// pgNamespaceObject is a namespace of the test that enforces the restricted Pod Security
// Standard: the chart's pods pass it, and so does the PostgreSQL pod.
func pgNamespaceObject(name string) *corev1.Namespace {
	labels := suiteLabels()
	labels["pod-security.kubernetes.io/enforce"] = "restricted"
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func createObject(ctx context.Context, t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(ctx, obj); err != nil {
		t.Fatalf("creating %T %s/%s: %v", obj, obj.GetNamespace(), obj.GetName(), err)
	}
}

func getObject(ctx context.Context, t *testing.T, key client.ObjectKey, obj client.Object) {
	t.Helper()
	if err := k8s.Get(ctx, key, obj); err != nil {
		t.Fatalf("reading %T %s: %v", obj, key, err)
	}
}

// startPostgres runs the PostgreSQL image as a Deployment of one pod with its data in an
// emptyDir, behind a ClusterIP Service, waits until pg_isready answers in the pod, and
// returns the Service's ClusterIP.
func startPostgres(ctx context.Context, t *testing.T, image string) string {
	t.Helper()
	createObject(ctx, t, pgNamespaceObject(pgNamespace))
	createObject(ctx, t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: pgServer, Namespace: pgNamespace, Labels: suiteLabels()},
		StringData: map[string]string{"password": pgPassword},
	})
	selector := map[string]string{"app.kubernetes.io/name": "e2e-postgres"}
	labels := suiteLabels()
	labels["app.kubernetes.io/name"] = "e2e-postgres"
	emptyDir := func(name, size string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse(size))}}}
	}
	createObject(ctx, t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: pgServer, Namespace: pgNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken:  ptr.To(false),
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: ptr.To[int64](10),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](pgUID), RunAsGroup: ptr.To[int64](pgUID),
						FSGroup:        ptr.To[int64](pgUID),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "postgres",
						Image:           image,
						ImagePullPolicy: corev1.PullIfNotPresent,
						Env: []corev1.EnvVar{{Name: "POSTGRES_PASSWORD", ValueFrom: &corev1.EnvVarSource{
							SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: pgServer}, Key: "password"},
						}}},
						Ports: []corev1.ContainerPort{{Name: "postgres", ContainerPort: 5432}},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
								Command: []string{"pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", pgUser, "-d", pgUser},
							}},
							PeriodSeconds: 2, TimeoutSeconds: 5,
						},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem:   ptr.To(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
						},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "data", MountPath: "/var/lib/postgresql/data"},
							{Name: "run", MountPath: "/var/run/postgresql"},
							{Name: "tmp", MountPath: "/tmp"},
						},
					}},
					Volumes: []corev1.Volume{emptyDir("data", "512Mi"), emptyDir("run", "1Mi"), emptyDir("tmp", "16Mi")},
				},
			},
		},
	})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: pgServer, Namespace: pgNamespace, Labels: suiteLabels()},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector,
			Ports:    []corev1.ServicePort{{Name: "postgres", Port: 5432, TargetPort: intstr.FromString("postgres")}},
		},
	}
	createObject(ctx, t, svc)
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		t.Fatalf("Service %s/%s has no ClusterIP (%q)", pgNamespace, pgServer, svc.Spec.ClusterIP)
	}

	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var dep appsv1.Deployment
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: pgNamespace, Name: pgServer}, &dep); err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d of 1 replicas ready", dep.Status.ReadyReplicas)
		if dep.Status.ObservedGeneration >= dep.Generation && dep.Status.ReadyReplicas == 1 {
			return true, nil
		}
		// An image that is not on the node (hack/e2e-images.sh loads it) or a server that
		// does not start will not get better: say so at once.
		var pods corev1.PodList
		if err := k8s.List(ctx, &pods, client.InNamespace(pgNamespace), client.MatchingLabels(selector)); err != nil {
			return false, nil
		}
		for _, pod := range pods.Items {
			for _, cs := range pod.Status.ContainerStatuses {
				if w := cs.State.Waiting; w != nil && slices.Contains(hopelessWaits, w.Reason) {
					return false, fmt.Errorf("pod %s: container %s is waiting: %s: %s", pod.Name, cs.Name, w.Reason, w.Message)
				}
			}
		}
		return false, nil
	})
	if err != nil {
		out, logErr := kubectl(ctx, "", "-n", pgNamespace, "logs", "deployment/"+pgServer, "--tail=30")
		t.Fatalf("PostgreSQL (%s) did not become ready: %v (%s); its log (%v):\n%s", image, err, last, logErr, out)
	}
	t.Logf("PostgreSQL (%s) ready at %s:5432", image, svc.Spec.ClusterIP)
	return svc.Spec.ClusterIP
}

// psql runs query in the PostgreSQL pod (psql over its socket) and returns the answer.
func psql(ctx context.Context, t *testing.T, query string) string {
	t.Helper()
	out, err := kubectl(ctx, "", "-n", pgNamespace, "exec", "deployment/"+pgServer, "--",
		"psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-U", pgUser, "-d", pgUser, "-c", query)
	if err != nil {
		t.Fatalf("psql %q: %v", query, err)
	}
	return strings.TrimSpace(out)
}

// watchFrontAvailability polls the front Deployment's available replicas until ctx ends
// and returns the fewest it saw (-1 if it could not read any).
func watchFrontAvailability(ctx context.Context) int32 {
	least := int32(-1)
	for {
		var dep appsv1.Deployment
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: pgReleaseNamespace, Name: pgRelease + "-front"}, &dep); err == nil {
			if least < 0 || dep.Status.AvailableReplicas < least {
				least = dep.Status.AvailableReplicas
			}
		}
		select {
		case <-ctx.Done():
			return least
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// hopelessWaits are the reasons of a waiting container that will not start by waiting longer.
var hopelessWaits = []string{"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError"}

// pgTeardown uninstalls the test release and deletes the test's namespaces (the runs
// namespace too: the release deletes it, an aborted install may not have), then waits until
// they are gone so that the next run starts clean. With checkUninstall it checks what helm
// uninstall left first. It reports whether there was anything to remove. Errors are test
// errors, not fatal: every step is tried.
func pgTeardown(ctx context.Context, t *testing.T, helm string, checkUninstall bool) bool {
	t.Helper()
	namespaces := []string{pgReleaseNamespace, pgRunsNamespace, pgNamespace}
	found := false
	for _, name := range namespaces {
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{}); err == nil {
			found = true
		}
	}
	if !found {
		return false
	}
	if _, err := helmIn(ctx, helm, pgReleaseNamespace, "uninstall", pgRelease, "--ignore-not-found", "--wait", "--cascade", "foreground", "--timeout", "3m"); err != nil {
		t.Errorf("uninstalling release %s: %v", pgRelease, err)
	} else if checkUninstall {
		expectUninstalled(ctx, t)
	}
	for _, name := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := k8s.Delete(ctx, ns, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
		}
	}
	var left []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		left = left[:0]
		for _, name := range namespaces {
			if err := k8s.Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
				left = append(left, name)
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		t.Errorf("namespaces %v still there after 3 minutes: %v", left, err)
	}
	return true
}

// expectUninstalled checks what helm uninstall of the PostgreSQL release leaves: no
// PersistentVolumeClaim (the SQLite claim is the one object the chart keeps, and this release
// has none), the runs namespace gone or going, and in the release namespace only the
// Secrets the user made: the URL and the API keys.
func expectUninstalled(ctx context.Context, t *testing.T) {
	t.Helper()
	var runsNS corev1.Namespace
	if err := k8s.Get(ctx, client.ObjectKey{Name: pgRunsNamespace}, &runsNS); err == nil && runsNS.DeletionTimestamp == nil {
		t.Errorf("helm uninstall left the runs namespace %s", pgRunsNamespace)
	}
	var claims corev1.PersistentVolumeClaimList
	if err := k8s.List(ctx, &claims, client.InNamespace(pgReleaseNamespace)); err != nil || len(claims.Items) != 0 {
		t.Errorf("after helm uninstall: %d PersistentVolumeClaims in %s (%v), want none", len(claims.Items), pgReleaseNamespace, err)
	}
	var secrets corev1.SecretList
	if err := k8s.List(ctx, &secrets, client.InNamespace(pgReleaseNamespace)); err != nil {
		t.Errorf("listing Secrets: %v", err)
	}
	var left []string
	for _, s := range secrets.Items {
		if s.Name != pgURLSecret && s.Name != pgKeysSecret {
			left = append(left, s.Name)
		}
	}
	var deployments appsv1.DeploymentList
	if err := k8s.List(ctx, &deployments, client.InNamespace(pgReleaseNamespace)); err != nil {
		t.Errorf("listing Deployments: %v", err)
	}
	for _, d := range deployments.Items {
		left = append(left, "deployment/"+d.Name)
	}
	if len(left) != 0 {
		t.Errorf("helm uninstall left %v in %s", left, pgReleaseNamespace)
	}
}

// pgDiagnostics logs what a maintainer needs when the test failed: the objects in the
// test's namespaces, the Deployments, and the logs of the release and of PostgreSQL.
func pgDiagnostics(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, ns := range []string{pgNamespace, pgReleaseNamespace, pgRunsNamespace} {
		out, err := kubectl(ctx, "", "-n", ns, "get", "pods,deployments,services,secrets,leases,coderuns,events", "-o", "wide")
		t.Logf("diagnostics: kubectl -n %s get ... (%v):\n%s", ns, err, out)
	}
	out, err := kubectl(ctx, "", "-n", pgReleaseNamespace, "describe", "deployments,pods")
	t.Logf("diagnostics: kubectl -n %s describe deployments,pods (%v):\n%s", pgReleaseNamespace, err, out)
	for _, c := range []struct{ ns, selector string }{
		{pgNamespace, "app.kubernetes.io/name=e2e-postgres"},
		{pgReleaseNamespace, "app.kubernetes.io/instance=" + pgRelease},
	} {
		out, err := kubectl(ctx, "", "-n", c.ns, "logs", "-l", c.selector, "--all-containers", "--prefix", "--tail=100")
		t.Logf("diagnostics: kubectl -n %s logs -l %s (%v):\n%s", c.ns, c.selector, err, out)
	}
}

// pgPodNames returns the names of the release's running pods of component, sorted, and
// checks that there are want of them, all ready.
func pgPodNames(ctx context.Context, t *testing.T, component string, want int) []string {
	t.Helper()
	pods := pgPods(ctx, t, component)
	var names []string
	for _, pod := range pods {
		if !podReady(&pod) {
			t.Fatalf("%s pod %s is not ready (phase %s)", component, pod.Name, pod.Status.Phase)
		}
		names = append(names, pod.Name)
	}
	if len(names) != want {
		t.Fatalf("%d %s pods (%v), want %d", len(names), component, names, want)
	}
	slices.Sort(names)
	return names
}

// pgPods returns the release's pods of component that are not being deleted.
func pgPods(ctx context.Context, t *testing.T, component string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	if err := k8s.List(ctx, &list, client.InNamespace(pgReleaseNamespace), client.MatchingLabels{
		"app.kubernetes.io/instance": pgRelease, "app.kubernetes.io/component": component,
	}); err != nil {
		t.Fatalf("listing %s pods: %v", component, err)
	}
	var pods []corev1.Pod
	for _, pod := range list.Items {
		if pod.DeletionTimestamp == nil {
			pods = append(pods, pod)
		}
	}
	return pods
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// expectPostgresFront checks the front's Deployment as the chart's PostgreSQL path makes it:
// RollingUpdate, the URL from the Secret in CODERUN_DATABASE and no SQLite file or volume,
// every replica ready; both components' PodDisruptionBudgets; and that the release made no
// PersistentVolumeClaim.
func expectPostgresFront(ctx context.Context, t *testing.T) {
	t.Helper()
	var dep appsv1.Deployment
	getObject(ctx, t, client.ObjectKey{Namespace: pgReleaseNamespace, Name: pgRelease + "-front"}, &dep)
	if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("front Deployment strategy %q, want RollingUpdate", dep.Spec.Strategy.Type)
	}
	if dep.Status.ReadyReplicas != pgFrontReplicas {
		t.Errorf("front Deployment has %d ready replicas, want %d", dep.Status.ReadyReplicas, pgFrontReplicas)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	for _, arg := range c.Args {
		if strings.HasPrefix(arg, "--database") {
			t.Errorf("front argument %s, want the database from CODERUN_DATABASE only", arg)
		}
	}
	var fromSecret *corev1.SecretKeySelector
	for _, env := range c.Env {
		if env.Name == "CODERUN_DATABASE" && env.ValueFrom != nil {
			fromSecret = env.ValueFrom.SecretKeyRef
		}
	}
	if fromSecret == nil || fromSecret.Name != pgURLSecret || fromSecret.Key != "url" {
		t.Errorf("front env CODERUN_DATABASE from %+v, want Secret %s key url", fromSecret, pgURLSecret)
	}
	if len(dep.Spec.Template.Spec.Volumes) != 3 { // config, tmp and the API keys (auth_test.go)
		t.Errorf("front volumes %+v, want only config, tmp and api-keys", dep.Spec.Template.Spec.Volumes)
	}
	// Several replicas of each component, each with its PodDisruptionBudget.
	for _, name := range []string{pgRelease + "-front", pgRelease + "-operator"} {
		var pdb policyv1.PodDisruptionBudget
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: pgReleaseNamespace, Name: name}, &pdb); err != nil {
			t.Errorf("PodDisruptionBudget %s: %v", name, err)
		} else if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v, want 1", name, pdb.Spec.MinAvailable)
		}
	}
	var claims corev1.PersistentVolumeClaimList
	if err := k8s.List(ctx, &claims, client.InNamespace(pgReleaseNamespace)); err != nil {
		t.Fatalf("listing PersistentVolumeClaims: %v", err)
	}
	if len(claims.Items) != 0 {
		t.Errorf("%d PersistentVolumeClaims in %s (%s...), want none with PostgreSQL", len(claims.Items), pgReleaseNamespace, claims.Items[0].Name)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// expectNoRestarts checks that no container of the release's component restarted: both
// front replicas start at once on an empty database, and each migrates the schema.
func expectNoRestarts(ctx context.Context, t *testing.T, component string) {
	t.Helper()
	for _, pod := range pgPods(ctx, t, component) {
		for _, cs := range pod.Status.ContainerStatuses {
			if cs.RestartCount == 0 {
				continue
			}
			out, err := kubectl(ctx, "", "-n", pgReleaseNamespace, "logs", pod.Name, "-c", cs.Name, "--previous", "--tail=30")
			t.Errorf("%s pod %s: container %s restarted %d times; its previous log (%v):\n%s", component, pod.Name, cs.Name, cs.RestartCount, err, out)
		}
	}
}

// waitForRolledFront waits until the front runs pgFrontReplicas ready pods, none of them one
// of old and none other left terminating (a port-forward to the Service may pick one), and
// returns their names.
func waitForRolledFront(ctx context.Context, t *testing.T, old []string) []string {
	t.Helper()
	var names []string
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var list corev1.PodList
		if err := k8s.List(ctx, &list, client.InNamespace(pgReleaseNamespace), client.MatchingLabels{
			"app.kubernetes.io/instance": pgRelease, "app.kubernetes.io/component": "front",
		}); err != nil {
			return false, err
		}
		names = names[:0]
		ready := 0
		for _, pod := range list.Items {
			names = append(names, pod.Name)
			if pod.DeletionTimestamp == nil && podReady(&pod) && !slices.Contains(old, pod.Name) && pod.Annotations["e2e"] == "rolled" {
				ready++
			}
		}
		slices.Sort(names)
		last = fmt.Sprintf("pods %v, %d of them new and ready", names, ready)
		return len(list.Items) == pgFrontReplicas && ready == pgFrontReplicas, nil
	})
	if err != nil {
		t.Fatalf("the front did not end its rolling update with %d new ready pods: %v (%s)", pgFrontReplicas, err, last)
	}
	return names
}

// portForward is a `kubectl port-forward` to the front's http port of a pod or a Service,
// on a free port of 127.0.0.1.
type portForward struct {
	target string
	url    string
	cmd    *exec.Cmd
	out    *syncBuffer
	done   chan struct{}
	once   sync.Once
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPortForward forwards a free port of 127.0.0.1 to target's port http (target: pod/NAME
// or service/NAME) until stop is called or the test ends, and waits until the front
// answers /readyz there.
func startPortForward(t *testing.T, namespace, target string) *portForward {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pf := &portForward{
		target: target,
		url:    fmt.Sprintf("http://127.0.0.1:%d", port),
		cmd:    exec.Command("kubectl", "-n", namespace, "port-forward", "--address", "127.0.0.1", target, fmt.Sprintf("%d:http", port)),
		out:    &syncBuffer{},
		done:   make(chan struct{}),
	}
	pf.cmd.Stdout, pf.cmd.Stderr = pf.out, pf.out
	if err := pf.cmd.Start(); err != nil {
		t.Fatalf("kubectl port-forward %s: %v", target, err)
	}
	go func() {
		_ = pf.cmd.Wait()
		close(pf.done)
	}()
	t.Cleanup(pf.stop)

	waitFrontReady(context.Background(), t, pf.url, time.Minute, func() error {
		select {
		case <-pf.done:
			return fmt.Errorf("kubectl port-forward %s ended: %s", target, pf.out.String())
		default:
			return nil
		}
	})
	return pf
}

// stop ends the port-forward (a kubectl this test started, by its own process).
func (pf *portForward) stop() {
	pf.once.Do(func() {
		select {
		case <-pf.done:
		default:
			_ = pf.cmd.Process.Kill()
			<-pf.done
		}
	})
}

// pgSubmit submits code through pf and returns its submission id.
func pgSubmit(ctx context.Context, t *testing.T, pf *portForward, code string) int64 {
	t.Helper()
	var ans runAnswer
	status := call(ctx, t, pf.url, http.MethodPost, "/submit", codeBody(code), &ans)
	if status != http.StatusOK || ans.SubmissionID == nil || *ans.SubmissionID < 1 {
		t.Fatalf("POST /submit through %s: %d %+v, want 200 with a submission_id", pf.target, status, ans)
	}
	t.Logf("submission %d saved through %s (CodeRun %s)", *ans.SubmissionID, pf.target, ans.Name)
	return *ans.SubmissionID
}

// expectSubmission reads submission id through pf and checks its code and output.
func expectSubmission(ctx context.Context, t *testing.T, pf *portForward, id int64, code string) {
	t.Helper()
	var saved struct {
		ID     int64  `json:"id"`
		Code   string `json:"code"`
		Output string `json:"output"`
		Error  string `json:"error"`
	}
	status := call(ctx, t, pf.url, http.MethodGet, fmt.Sprintf("/submissions/%d", id), "", &saved)
	want := strings.TrimSuffix(strings.TrimPrefix(code, "print('"), "')") + "\n"
	if status != http.StatusOK || saved.ID != id || saved.Code != code || saved.Output != want {
		t.Fatalf("GET /submissions/%d through %s: %d %+v, want the code %q and its output %q", id, pf.target, status, saved, code, want)
	}
}

// pgExecute runs a program through pf and checks its answer, and that the CodeRun was in
// the release's runs namespace: the release's operator ran it.
func pgExecute(ctx context.Context, t *testing.T, pf *portForward) {
	t.Helper()
	var ans runAnswer
	start := time.Now()
	status := call(ctx, t, pf.url, http.MethodPost, "/execute", codeBody("print(6 * 7)"), &ans)
	if status != http.StatusOK || ans.Output != "42\n" || ans.ExitCode == nil || *ans.ExitCode != 0 {
		t.Fatalf("POST /execute through %s: %d %+v, want 200 with output 42", pf.target, status, ans)
	}
	var run execv1alpha1.CodeRun
	getObject(ctx, t, client.ObjectKey{Namespace: pgRunsNamespace, Name: ans.Name}, &run)
	if run.Status.Result == nil || run.Status.Result.Output != ans.Output {
		t.Fatalf("CodeRun %s/%s recorded %+v, the answer said %q", pgRunsNamespace, ans.Name, run.Status.Result, ans.Output)
	}
	t.Logf("/execute through %s answered in %s (CodeRun %s/%s)", pf.target, time.Since(start).Round(time.Millisecond), pgRunsNamespace, ans.Name)
}
