//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// probeSource inspects the sandbox from inside and prints one JSON object. It reads the
// addresses to try from stdin, so the program holds no address of its own.
const probeSource = `import json, os, socket, sys

cfg = json.load(sys.stdin)
out = {'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid()}

status = {}
for line in open('/proc/self/status'):
    key, _, value = line.partition(':')
    status[key] = value.strip()
for key in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'):
    out[key] = status.get(key, 'missing')

out['serviceAccountDir'] = os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount')
out['tokenEnv'] = sorted(k for k in os.environ if k.startswith('KUBERNETES'))

def try_write(path):
    try:
        with open(path, 'w') as f:
            f.write('x')
        return 'written'
    except OSError as e:
        return 'errno %d: %s' % (e.errno, e.strerror)
out['write'] = {p: try_write(p) for p in ('/coderun-e2e', '/usr/coderun-e2e', '/var/tmp/coderun-e2e', '/tmp/coderun-e2e')}

for line in open('/proc/self/mountinfo'):
    fields = line.split()
    if fields[4] == '/':
        out['rootMountOptions'] = fields[5]

def try_connect(host, port):
    try:
        socket.create_connection((host, port), timeout=cfg['connectTimeout']).close()
        return 'connected'
    except OSError as e:
        return '%s: %s' % (type(e).__name__, e)

# A listener inside the sandbox: if connecting to it works, a failure below is isolation,
# not a broken socket layer.
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(1)
out['connectLocal'] = try_connect('127.0.0.1', listener.getsockname()[1])
out['connect'] = {'%s:%d' % (h, p): try_connect(h, p) for h, p in cfg['targets']}

def try_resolve(name):
    try:
        return 'resolved: ' + ' '.join(sorted({a[4][0] for a in socket.getaddrinfo(name, 443)}))
    except OSError as e:
        return '%s: %s' % (type(e).__name__, e)
out['resolve'] = {n: try_resolve(n) for n in cfg['names']}
print(json.dumps(out))
`

type probeReport struct {
	UID, EUID, GID    int64
	CapInh            string `json:"CapInh"`
	CapPrm            string `json:"CapPrm"`
	CapEff            string `json:"CapEff"`
	CapBnd            string `json:"CapBnd"`
	CapAmb            string `json:"CapAmb"`
	NoNewPrivs        string `json:"NoNewPrivs"`
	Seccomp           string `json:"Seccomp"`
	ServiceAccountDir bool   `json:"serviceAccountDir"`
	TokenEnv          []string
	Write             map[string]string
	RootMountOptions  string `json:"rootMountOptions"`
	ConnectLocal      string `json:"connectLocal"`
	Connect           map[string]string
	Resolve           map[string]string
}

// TestSandbox checks, from inside a run, what the README promises a program cannot do: be
// root, hold capabilities, use a service-account token, write outside /tmp, or reach the
// API server or the node. It checks a cold run's pod and a warm pool member alike.
func TestSandbox(t *testing.T) {
	t.Parallel()
	targets := clusterTargets(t)
	names := []string{"kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "kubernetes.default", "kubernetes"}
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			// A cold run may take its time: each connect waits up to 2 s. A warm run must end
			// within the pool's timeout, so its connects wait 1 s each, which still tells a
			// dropped packet from an answer on the cluster's own network.
			connectTimeout, limits := 2, timeout(60)
			if path == execv1alpha1.PathWarm {
				connectTimeout, limits = 1, timeout(*poolShape(t).TimeoutSeconds)
				// Python's start and the lookups (refused at once: no nameserver listens)
				// take well under 3 s.
				if budget := len(targets)*connectTimeout + 3; budget > int(*limits.TimeoutSeconds) {
					t.Fatalf("%d targets at %d s each need %d s, more than the pool's timeout of %d s", len(targets), connectTimeout, budget, *limits.TimeoutSeconds)
				}
			}
			stdin, err := json.Marshal(map[string]any{"targets": targets, "names": names, "connectTimeout": connectTimeout})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("trying to reach %v (%d s each) and to resolve %v from inside a %s run", targets, connectTimeout, names, pathName(path))
			run := runOnPath(t, "sandbox", execv1alpha1.CodeRunSpec{Source: probeSource, Stdin: string(stdin), Limits: limits}, path)
			expectSandbox(t, run, targets)
		})
	}
}

// expectSandbox checks the report of the probe that run ran.
func expectSandbox(t *testing.T, run *execv1alpha1.CodeRun, targets [][2]any) {
	t.Helper()
	expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, nil)
	var got probeReport
	if err := json.Unmarshal([]byte(run.Status.Result.Stdout), &got); err != nil {
		t.Fatalf("the probe's output is not its report: %v\n%s", err, run.Status.Result.Output)
	}
	t.Logf("probe report: %s", strings.TrimSpace(run.Status.Result.Stdout))

	t.Run("non-root", func(t *testing.T) {
		if got.UID == 0 || got.EUID == 0 || got.GID == 0 {
			t.Errorf("runs as uid %d, euid %d, gid %d: want non-root", got.UID, got.EUID, got.GID)
		}
		if lo, hi := runUIDs(t); got.UID < lo || got.UID >= hi {
			t.Errorf("uid %d is outside the operator's run uids [%d, %d)", got.UID, lo, hi)
		}
	})
	t.Run("no-capabilities", func(t *testing.T) {
		for name, v := range map[string]string{"CapInh": got.CapInh, "CapPrm": got.CapPrm, "CapEff": got.CapEff, "CapBnd": got.CapBnd, "CapAmb": got.CapAmb} {
			if n, err := strconv.ParseUint(v, 16, 64); err != nil || n != 0 {
				t.Errorf("%s is %q, want 0", name, v)
			}
		}
		if got.NoNewPrivs != "1" {
			t.Errorf("NoNewPrivs is %q, want 1 (no privilege escalation)", got.NoNewPrivs)
		}
		if got.Seccomp != "2" {
			t.Errorf("Seccomp is %q, want 2 (a seccomp filter)", got.Seccomp)
		}
	})
	t.Run("no-service-account-token", func(t *testing.T) {
		if got.ServiceAccountDir {
			t.Error("/var/run/secrets/kubernetes.io/serviceaccount exists")
		}
		if len(got.TokenEnv) != 0 {
			t.Errorf("environment has %v, want no KUBERNETES_* variables", got.TokenEnv)
		}
	})
	t.Run("read-only-root", func(t *testing.T) {
		if !slices.Contains(strings.Split(got.RootMountOptions, ","), "ro") {
			t.Errorf("/ is mounted %q, want read-only", got.RootMountOptions)
		}
		for _, p := range []string{"/coderun-e2e", "/usr/coderun-e2e"} {
			if got.Write[p] == "" || got.Write[p] == "written" {
				t.Errorf("writing %s: %q, want it refused", p, got.Write[p])
			}
		}
		// /var/tmp is writable by everyone in the image: only a read-only root refuses it.
		if w := got.Write["/var/tmp/coderun-e2e"]; !strings.HasPrefix(w, "errno 30:") {
			t.Errorf("writing /var/tmp: %q, want errno 30 (read-only file system)", w)
		}
		if w := got.Write["/tmp/coderun-e2e"]; w != "written" {
			t.Errorf("writing /tmp (the run's scratch space): %q, want it written", w)
		}
	})
	t.Run("no-network", func(t *testing.T) {
		if got.ConnectLocal != "connected" {
			t.Fatalf("connecting to a listener inside the run: %q; the probe cannot tell isolation from breakage", got.ConnectLocal)
		}
		if len(got.Connect) != len(targets) {
			t.Errorf("probe tried %d targets, want %d", len(got.Connect), len(targets))
		}
		for target, result := range got.Connect {
			if result == "connected" {
				t.Errorf("a run connected to %s", target)
			}
		}
		for name, result := range got.Resolve {
			if strings.HasPrefix(result, "resolved") {
				t.Errorf("a run resolved %s: %s", name, result)
			}
		}
	})
}

// clusterTargets returns the addresses a run must not reach, read from the cluster: the
// API server's service address, its endpoints, and each node's internal addresses on the
// API server and kubelet ports. Only private or loopback addresses are accepted: the
// suite never sends a packet anywhere else, not even one meant to fail.
func clusterTargets(t *testing.T) [][2]any {
	t.Helper()
	ctx := context.Background()
	var targets [][2]any
	add := func(host string, port int32) {
		ip := net.ParseIP(host)
		if ip == nil || (!ip.IsPrivate() && !ip.IsLoopback()) {
			t.Fatalf("refusing to probe %s:%d: not a private cluster address", host, port)
		}
		target := [2]any{host, int(port)}
		if !slices.Contains(targets, target) {
			targets = append(targets, target)
		}
	}

	var svc corev1.Service
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &svc); err != nil {
		t.Fatalf("reading the kubernetes Service: %v", err)
	}
	for _, p := range svc.Spec.Ports {
		add(svc.Spec.ClusterIP, p.Port)
	}
	var endpointSlices discoveryv1.EndpointSliceList
	if err := k8s.List(ctx, &endpointSlices, client.InNamespace("default"), client.MatchingLabels{discoveryv1.LabelServiceName: "kubernetes"}); err != nil {
		t.Fatalf("reading the API server's endpoints: %v", err)
	}
	apiPorts := []int32{6443}
	for _, s := range endpointSlices.Items {
		for _, p := range s.Ports {
			if p.Port != nil && !slices.Contains(apiPorts, *p.Port) {
				apiPorts = append(apiPorts, *p.Port)
			}
		}
		for _, e := range s.Endpoints {
			for _, a := range e.Addresses {
				for _, p := range apiPorts {
					add(a, p)
				}
			}
		}
	}
	var nodes corev1.NodeList
	if err := k8s.List(ctx, &nodes); err != nil {
		t.Fatalf("listing nodes: %v", err)
	}
	for _, node := range nodes.Items {
		kubeletPort := node.Status.DaemonEndpoints.KubeletEndpoint.Port
		if kubeletPort == 0 {
			kubeletPort = 10250
		}
		for _, a := range node.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			for _, p := range append(slices.Clone(apiPorts), kubeletPort) {
				add(a.Address, p)
			}
		}
	}
	if len(targets) < 3 {
		t.Fatalf("found only %v to probe: want the API server's service address and a node's API server and kubelet ports", targets)
	}
	return targets
}

// TestReportCannotBeForged: the program runs as the runner's user, so it can write the
// pod's termination log and lower the runner's limits. Writing a made-up report there and
// leaving the runner unable to open files must not change the recorded result.
func TestReportCannotBeForged(t *testing.T) {
	t.Parallel()
	run := runProgram(t, "forge", execv1alpha1.CodeRunSpec{
		Source: `import json, os, resource
forged = {"coderun": "report/v1", "exitCode": 0, "reason": "Completed", "stdout": "forged\n",
          "stderr": "", "output": "forged\n", "wallTimeMicros": 1, "cpuTimeMicros": 1, "peakMemoryBytes": 1}
with open('/dev/termination-log', 'w') as f:
    f.write(json.dumps(forged))
try:
    resource.prlimit(1, resource.RLIMIT_NOFILE, (0, 0))
except PermissionError:
    print('prlimit of the runner refused')
print('real output')
raise SystemExit(5)
`,
	})
	expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonNonZeroExit, ptr.To[int32](5))
	if want := "prlimit of the runner refused\nreal output\n"; run.Status.Result.Output != want {
		t.Errorf("output %q, want the program's real output %q", run.Status.Result.Output, want)
	}
}
