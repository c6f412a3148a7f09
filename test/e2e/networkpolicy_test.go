//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// The chart's NetworkPolicy (deny all ingress and egress in the runs namespace), enforced by
// the cluster's real enforcer (kube-network-policies on the local cluster and in kind), seen
// from inside runs: a run reaches nothing, while a pod of a namespace without a policy
// reaches the test's server, so the test fails when the enforcer does not enforce.

// netpolServerPort is the test server's port (python3 -m http.server in the runner image).
const netpolServerPort = 8000

// connectProbeSource tries every target at once, as its very first action (the addresses
// come on stdin or as its argument, so the program holds none of its own): a cold run's
// pod is policed from its first packet, not from when the kubelet reports its address.
// Then it connects to a listener inside itself, which tells isolation from a broken socket
// layer. With retries > 1 (the negative control) a target is tried until it answers.
const connectProbeSource = `import json, socket, sys, threading, time

cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else json.load(sys.stdin)
results = {}

def attempt(host, port):
    for i in range(cfg['retries']):
        try:
            socket.create_connection((host, port), timeout=cfg['timeout']).close()
            results['%s:%d' % (host, port)] = 'connected'
            return
        except OSError as e:
            results['%s:%d' % (host, port)] = '%s: %s' % (type(e).__name__, e)
            if i + 1 < cfg['retries']:
                time.sleep(1)

threads = [threading.Thread(target=attempt, args=(h, p)) for h, p in cfg['targets']]
for th in threads:
    th.start()
for th in threads:
    th.join()

listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(1)
try:
    socket.create_connection(('127.0.0.1', listener.getsockname()[1]), timeout=cfg['timeout']).close()
    local = 'connected'
except OSError as e:
    local = '%s: %s' % (type(e).__name__, e)
print(json.dumps({'connect': results, 'local': local}))
`

// connectReport is what connectProbeSource prints.
type connectReport struct {
	Connect map[string]string `json:"connect"`
	Local   string            `json:"local"`
}

// probeConfig is connectProbeSource's input: each target tried retries times with a
// connect timeout of timeout seconds (2 s: a dropped SYN ends the attempt, not the test).
func probeConfig(t *testing.T, targets []target, retries int) string {
	t.Helper()
	pairs := make([][2]any, 0, len(targets))
	for _, tg := range targets {
		pairs = append(pairs, [2]any{tg.host, tg.port})
	}
	b, err := json.Marshal(map[string]any{"targets": pairs, "timeout": 2, "retries": retries})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// target is an address a probe tries, with what it is, for the failure messages.
type target struct {
	what string
	host string
	port int
}

func (tg target) addr() string { return fmt.Sprintf("%s:%d", tg.host, tg.port) }

// newTarget refuses anything but a private cluster address: the suite never sends a packet
// anywhere else, not even one meant to fail.
func newTarget(t *testing.T, what, host string, port int32) target {
	t.Helper()
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsPrivate() {
		t.Fatalf("refusing to probe %s %s:%d: not a private cluster address", what, host, port)
	}
	return target{what: what, host: host, port: int(port)}
}

// testServer is the test's server: a pod in a namespace of its own, without a policy.
type testServer struct {
	podIP, serviceIP string
}

func (s testServer) targets(t *testing.T) []target {
	return []target{
		newTarget(t, "the test server pod", s.podIP, netpolServerPort),
		newTarget(t, "the test server's Service", s.serviceIP, netpolServerPort),
	}
}

// restrictedPod is a pod spec of the runner image that the restricted Pod Security Standard
// accepts, running command.
func restrictedPod(command ...string) corev1.PodSpec {
	return corev1.PodSpec{
		AutomountServiceAccountToken:  ptr.To(false),
		EnableServiceLinks:            ptr.To(false),
		TerminationGracePeriodSeconds: ptr.To[int64](1),
		RestartPolicy:                 corev1.RestartPolicyNever,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65534), RunAsGroup: ptr.To[int64](65534),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:            "main",
			Image:           operatorConfig.RunnerImage,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         command,
			WorkingDir:      "/tmp",
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
		}},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
}

// startTestServer creates namespace (restricted, no NetworkPolicy) with the test server's
// pod and Service, waits until the Service has the ready pod as its endpoint, and deletes
// the namespace when the test ends.
func startTestServer(ctx context.Context, t *testing.T, namespace string) testServer {
	t.Helper()
	deleteNamespace(ctx, t, namespace) // a leftover of an aborted run
	createObject(ctx, t, pgNamespaceObject(namespace))
	t.Cleanup(func() {
		cleanupCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			out, err := kubectl(cleanupCtx, "", "-n", namespace, "describe", "pods")
			t.Logf("diagnostics: kubectl -n %s describe pods (%v):\n%s", namespace, err, out)
		}
		deleteNamespace(cleanupCtx, t, namespace)
	})
	labels := suiteLabels()
	labels["app.kubernetes.io/name"] = "e2e-netpol-server"
	spec := restrictedPod("python3", "-m", "http.server", fmt.Sprint(netpolServerPort), "--bind", "0.0.0.0")
	spec.RestartPolicy = corev1.RestartPolicyAlways
	spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: netpolServerPort}}
	spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	createObject(ctx, t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: namespace, Labels: labels}, Spec: spec})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "server", Namespace: namespace, Labels: suiteLabels()},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app.kubernetes.io/name": "e2e-netpol-server"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: netpolServerPort, TargetPort: intstr.FromString("http")}},
		},
	}
	createObject(ctx, t, svc)

	var server testServer
	server.serviceIP = svc.Spec.ClusterIP
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		var pod corev1.Pod
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "server"}, &pod); err != nil {
			last = err.Error()
			return false, nil
		}
		if !podReady(&pod) || pod.Status.PodIP == "" {
			last = fmt.Sprintf("pod phase %s, not ready", pod.Status.Phase)
			return false, nil
		}
		server.podIP = pod.Status.PodIP
		var eps discoveryv1.EndpointSliceList
		if err := k8s.List(ctx, &eps, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: "server"}); err != nil {
			last = err.Error()
			return false, nil
		}
		for _, s := range eps.Items {
			for _, e := range s.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready && len(e.Addresses) > 0 && e.Addresses[0] == pod.Status.PodIP {
					return true, nil
				}
			}
		}
		last = "the Service has no ready endpoint yet"
		return false, nil
	})
	if err != nil {
		t.Fatalf("the test server in %s is not ready: %v (last: %s)", namespace, err, last)
	}
	t.Logf("test server in %s: pod %s, Service %s, port %d", namespace, server.podIP, server.serviceIP, netpolServerPort)
	return server
}

// deleteNamespace deletes namespace and waits until it is gone.
func deleteNamespace(ctx context.Context, t *testing.T, namespace string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := k8s.Delete(ctx, ns); client.IgnoreNotFound(err) != nil {
		t.Errorf("deleting namespace %s: %v", namespace, err)
		return
	}
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: namespace}, &corev1.Namespace{})), nil
	})
	if err != nil {
		t.Errorf("namespace %s still there after 3 minutes: %v", namespace, err)
	}
}

// expectReachable is the negative control: a pod in the test server's namespace, which has
// no NetworkPolicy, connects to every target (each tried for up to ten seconds). If it
// cannot, a run's failure to connect would prove nothing.
func expectReachable(ctx context.Context, t *testing.T, namespace string, targets []target) {
	t.Helper()
	name := "control-" + randomID(3)
	spec := restrictedPod("python3", "-c", connectProbeSource, probeConfig(t, targets, 5))
	createObject(ctx, t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: suiteLabels()}, Spec: spec})
	var pod corev1.Pod
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &pod); err != nil {
			return false, nil
		}
		return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed, nil
	})
	out, logErr := kubectl(ctx, "", "-n", namespace, "logs", name)
	if err != nil || pod.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("control pod %s/%s did not succeed (phase %s, %v); logs (%v):\n%s", namespace, name, pod.Status.Phase, err, logErr, out)
	}
	var got connectReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("control pod %s/%s: its output is not its report: %v\n%s", namespace, name, err, out)
	}
	t.Logf("control pod %s/%s (namespace without a NetworkPolicy): %s", namespace, name, strings.TrimSpace(out))
	for _, tg := range targets {
		if r := got.Connect[tg.addr()]; r != "connected" {
			t.Errorf("negative control: a pod of %s (no NetworkPolicy) could not reach %s at %s: %q; the isolation checks would prove nothing", namespace, tg.what, tg.addr(), r)
		}
	}
}

// expectIsolated checks a connect probe's report from a run: the listener inside the run
// answered, no target did.
func expectIsolated(t *testing.T, who, stdout string, targets []target) {
	t.Helper()
	var got connectReport
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%s: the probe's output is not its report: %v\n%s", who, err, stdout)
	}
	t.Logf("%s: %s", who, strings.TrimSpace(stdout))
	if got.Local != "connected" {
		t.Errorf("%s: connecting to a listener inside the run: %q; the probe cannot tell isolation from breakage", who, got.Local)
	}
	for _, tg := range targets {
		r, ok := got.Connect[tg.addr()]
		switch {
		case !ok:
			t.Errorf("%s: the probe did not try %s (%s)", who, tg.addr(), tg.what)
		case r == "connected":
			t.Errorf("%s connected to %s at %s", who, tg.what, tg.addr())
		}
	}
}

// nodeTargets are the node's and the API server's addresses a run must not reach (sandbox
// test's clusterTargets: the kubernetes Service, its endpoints, each node's internal address
// on the API server and kubelet ports).
func nodeTargets(t *testing.T) []target {
	t.Helper()
	var out []target
	for _, tg := range clusterTargets(t) {
		host, port := tg[0].(string), tg[1].(int)
		out = append(out, newTarget(t, "the node or API server", host, int32(port)))
	}
	return out
}

// frontTargets are a release's front Service (each port) and front pods (each container port).
func frontTargets(ctx context.Context, t *testing.T, namespace, service string) []target {
	t.Helper()
	var svc corev1.Service
	getObject(ctx, t, client.ObjectKey{Namespace: namespace, Name: service}, &svc)
	var out []target
	for _, p := range svc.Spec.Ports {
		out = append(out, newTarget(t, "the front Service "+namespace+"/"+service, svc.Spec.ClusterIP, p.Port))
	}
	var pods corev1.PodList
	if err := k8s.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels(svc.Spec.Selector)); err != nil {
		t.Fatalf("listing the pods of Service %s/%s: %v", namespace, service, err)
	}
	for _, pod := range pods.Items {
		if pod.Status.PodIP == "" || pod.DeletionTimestamp != nil {
			continue
		}
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				out = append(out, newTarget(t, "the front pod "+namespace+"/"+pod.Name, pod.Status.PodIP, p.ContainerPort))
			}
		}
	}
	if len(out) < 2 {
		t.Fatalf("found only %v for the front of %s/%s: want its Service and a pod", out, namespace, service)
	}
	return out
}

// executeProbe runs connectProbeSource through the /execute of the front at base and
// returns its output.
func executeProbe(ctx context.Context, t *testing.T, base string, targets []target) string {
	t.Helper()
	body, err := json.Marshal(map[string]string{"code": connectProbeSource, "stdin": probeConfig(t, targets, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var ans runAnswer
	status := call(ctx, t, base, http.MethodPost, "/execute", string(body), &ans)
	if status != http.StatusOK || ans.ExitCode == nil || *ans.ExitCode != 0 {
		t.Fatalf("POST %s/execute of the connect probe: %d %+v, want 200 and exit code 0", base, status, ans)
	}
	return ans.Stdout
}

// TestNetworkPolicyIsolation: runs of the main release, through the front's /execute and as a
// cold CodeRun whose first action is to connect, reach neither the node (API server,
// kubelet) nor the front (Service and pod) nor another namespace's pod and Service, which a
// pod of a namespace without a NetworkPolicy does reach (the negative control). The second
// release's runs are checked by TestChartWithPostgres (checkSecondReleaseIsolation).
func TestNetworkPolicyIsolation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	server := startTestServer(ctx, t, "coderun-e2e-netpol")
	expectReachable(ctx, t, "coderun-e2e-netpol", server.targets(t))

	targets := slices.Concat(nodeTargets(t), frontTargets(ctx, t, operatorNamespace, frontDeployment), server.targets(t))
	t.Logf("a run must reach none of %v", targets)

	t.Run("execute", func(t *testing.T) {
		expectIsolated(t, "a run through /execute", executeProbe(ctx, t, frontURL(t), targets), targets)
	})
	t.Run("cold-first-packet", func(t *testing.T) {
		// Cold: a new pod whose address only the runtime knows yet (NRI), not the API server.
		run := runOnPath(t, "netpol", execv1alpha1.CodeRunSpec{Source: connectProbeSource, Stdin: probeConfig(t, targets, 1), Limits: timeout(60)}, execv1alpha1.PathCold)
		expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
		expectIsolated(t, "cold run "+run.Name, run.Status.Result.Stdout, targets)
	})
}

// checkSecondReleaseIsolation checks that the runs of a second release (its front at base,
// runs in another namespace) are isolated as the main release's are: from the node, from both
// releases' fronts, and from a test server that a pod without a NetworkPolicy reaches.
func checkSecondReleaseIsolation(ctx context.Context, t *testing.T, base, releaseNamespace, frontService string) {
	t.Helper()
	const namespace = "coderun-e2e-netpol-2"
	server := startTestServer(ctx, t, namespace)
	expectReachable(ctx, t, namespace, server.targets(t))
	targets := slices.Concat(nodeTargets(t),
		frontTargets(ctx, t, releaseNamespace, frontService),
		frontTargets(ctx, t, operatorNamespace, frontDeployment),
		server.targets(t))
	expectIsolated(t, "a run of release "+releaseNamespace+" through /execute", executeProbe(ctx, t, base, targets), targets)
}
