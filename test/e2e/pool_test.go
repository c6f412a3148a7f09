//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// TestWarmAndColdSameResult runs the same programs in a cold run's pod and in a warm
// member of the default pool, and checks that both record the same result: reason, exit
// code, signal, stdout, stderr, output and their truncation marks (not the times).
func TestWarmAndColdSameResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		spec   execv1alpha1.CodeRunSpec
		reason execv1alpha1.ResultReason
		exit   int32
		stdout string
	}{{
		// The runner merges two pipes in the order it reads them: bytes written to one
		// stream while the other's are still unread may be read with that stream's earlier
		// ones (internal/runner/output.go). A pause between the streams keeps the order
		// what the program wrote on either path.
		name: "streams",
		spec: execv1alpha1.CodeRunSpec{Source: `import sys, time
print('to stdout', flush=True)
time.sleep(0.1)
print('to stderr', file=sys.stderr, flush=True)
time.sleep(0.1)
print('é✓ again to stdout')
`},
		reason: execv1alpha1.ReasonCompleted, exit: 0, stdout: "to stdout\né✓ again to stdout\n",
	}, {
		name: "stdin-echo",
		spec: execv1alpha1.CodeRunSpec{
			Source: "import sys\ndata = sys.stdin.read()\nprint(repr(data))\nsys.stdout.write(data.upper())\n",
			Stdin:  "first line\nsecond ✓\nno newline at the end",
		},
		reason: execv1alpha1.ReasonCompleted, exit: 0,
		stdout: "'first line\\nsecond ✓\\nno newline at the end'\nFIRST LINE\nSECOND ✓\nNO NEWLINE AT THE END",
	}, {
		name: "exit-7",
		spec: execv1alpha1.CodeRunSpec{Source: `import sys, time
print('failing', flush=True)
time.sleep(0.1)
print('bad news', file=sys.stderr)
sys.exit(7)
`},
		reason: execv1alpha1.ReasonNonZeroExit, exit: 7, stdout: "failing\n",
	}, {
		name:   "exception",
		spec:   execv1alpha1.CodeRunSpec{Source: "print('dividing')\nprint(1 / 0)\n"},
		reason: execv1alpha1.ReasonNonZeroExit, exit: 1, stdout: "dividing\n",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cold, warm *execv1alpha1.CodeRun
			done := make(chan struct{})
			// Both at once: a cold run takes seconds, a warm one a fraction of a second.
			go func() {
				defer close(done)
				t.Run("cold", func(t *testing.T) {
					cold = runOnPath(t, tc.name, tc.spec, execv1alpha1.PathCold)
				})
			}()
			t.Run("warm", func(t *testing.T) {
				warm = runOnPath(t, tc.name, tc.spec, execv1alpha1.PathWarm)
			})
			<-done
			if cold == nil || warm == nil {
				t.Fatal("a run did not finish")
			}
			phase := execv1alpha1.PhaseSucceeded
			if tc.exit != 0 {
				phase = execv1alpha1.PhaseFailed
			}
			for _, run := range []*execv1alpha1.CodeRun{cold, warm} {
				expectEnd(t, run, phase, tc.reason, ptr.To(tc.exit))
				if run.Status.Result.Stdout != tc.stdout {
					t.Errorf("%s: stdout %q, want %q", run.Name, run.Status.Result.Stdout, tc.stdout)
				}
			}
			if diff := cmp.Diff(comparableResult(cold.Status.Result), comparableResult(warm.Status.Result)); diff != "" {
				t.Errorf("the warm run's result differs from the cold run's (-cold +warm):\n%s", diff)
			}
			if cold.Status.PodName == warm.Status.PodName || cold.Status.JobName == warm.Status.JobName {
				t.Errorf("cold run in Job %s pod %s, warm run in Job %s pod %s: want different ones",
					cold.Status.JobName, cold.Status.PodName, warm.Status.JobName, warm.Status.PodName)
			}
			if cold.Status.JobName != cold.Name {
				t.Errorf("cold run %s ran in Job %q, want its own Job named after it", cold.Name, cold.Status.JobName)
			}
		})
	}
}

// comparableResult is res without what may differ between two runs of one program: the
// times, the peak memory and the message (which may name the pod).
func comparableResult(res *execv1alpha1.CodeRunResult) execv1alpha1.CodeRunResult {
	c := *res.DeepCopy()
	c.WallTime, c.CPUTime, c.PeakMemory = nil, nil, nil
	return c
}

// leftoverSource is the first of two programs run in turn in warm members: it leaves a
// file in /tmp and a process that outlives it, and reports its pod and pids.
const leftoverSource = `import json, os, socket, sys, time
marker = sys.stdin.read().strip()
with open('/tmp/' + marker, 'w') as f:
    f.write(marker)
pid = os.fork()
if pid == 0:
    # The child leaves the program's process group and sleeps on, named after the marker.
    os.setsid()
    sys.argv[0] = marker
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, marker.encode()[:15], 0, 0, 0)
    except Exception:
        pass
    time.sleep(3600)
    os._exit(0)
print(json.dumps({'hostname': socket.gethostname(), 'pid': os.getpid(), 'child': pid,
                  'tmp': sorted(os.listdir('/tmp'))}))
`

// inspectSource is the second: it reports what it sees of /tmp and of the processes.
const inspectSource = `import json, os, socket
procs = []
for entry in os.listdir('/proc'):
    if not entry.isdigit():
        continue
    try:
        with open('/proc/%s/cmdline' % entry, 'rb') as f:
            cmdline = f.read().replace(b'\0', b' ').decode(errors='replace').strip()
        with open('/proc/%s/comm' % entry) as f:
            comm = f.read().strip()
        st = os.stat('/proc/' + entry)
    except OSError:
        continue
    procs.append({'pid': int(entry), 'comm': comm, 'cmdline': cmdline, 'uid': st.st_uid})
print(json.dumps({'hostname': socket.gethostname(), 'pid': os.getpid(), 'uid': os.getuid(),
                  'tmp': sorted(os.listdir('/tmp')), 'procs': procs}))
`

type leftoverReport struct {
	Hostname string
	PID      int
	Child    int
	Tmp      []string
}

type inspectReport struct {
	Hostname string
	PID      int
	UID      int64
	Tmp      []string
	Procs    []struct {
		PID     int
		Comm    string
		Cmdline string
		UID     int64
	}
}

// TestWarmRunSeesNothingOfEarlierRuns runs two programs in warm members, one after the
// other. The first writes a file to /tmp and leaves a process running; the second must
// find nothing in /tmp but its own program file, no process but its runner and itself, and
// another pod.
func TestWarmRunSeesNothingOfEarlierRuns(t *testing.T) {
	t.Parallel()
	marker := "e2e-left-" + suiteID
	first := runOnPath(t, "leftover", execv1alpha1.CodeRunSpec{Source: leftoverSource, Stdin: marker}, execv1alpha1.PathWarm)
	expectEnd(t, first, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
	var left leftoverReport
	if err := json.Unmarshal([]byte(first.Status.Result.Stdout), &left); err != nil {
		t.Fatalf("the first program's output is not its report: %v\n%s", err, first.Status.Result.Output)
	}
	if !slices.Contains(left.Tmp, marker) || left.Child == 0 {
		t.Fatalf("the first program did not leave its file and process behind: %+v", left)
	}

	second := runOnPath(t, "inspect", execv1alpha1.CodeRunSpec{Source: inspectSource}, execv1alpha1.PathWarm)
	expectEnd(t, second, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
	var got inspectReport
	if err := json.Unmarshal([]byte(second.Status.Result.Stdout), &got); err != nil {
		t.Fatalf("the second program's output is not its report: %v\n%s", err, second.Status.Result.Output)
	}
	t.Logf("first run: pod %s, %+v; second run: pod %s, %s", first.Status.PodName, left, second.Status.PodName, second.Status.Result.Stdout)

	if first.Status.PodName == "" || first.Status.PodName == second.Status.PodName || left.Hostname == got.Hostname {
		t.Errorf("both runs in pod %s/%s (hostnames %q, %q): want a fresh pod for each", first.Status.PodName, second.Status.PodName, left.Hostname, got.Hostname)
	}
	if got.Hostname != second.Status.PodName {
		t.Errorf("the second program ran on host %q, its status names pod %q", got.Hostname, second.Status.PodName)
	}
	// /tmp holds the program's own file, written there by the runner, when a Runtime ran
	// it (the operator's built-in python runs it from the input volume), and nothing else.
	var own []string
	if rt := second.Status.Runtime; rt != nil && rt.Name != "" {
		var runtime execv1alpha1.Runtime
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: rt.Name}, &runtime); err != nil {
			t.Fatalf("Runtime %s of the second run: %v", rt.Name, err)
		}
		own = []string{runtime.Spec.SourceFile}
	}
	if !slices.Equal(got.Tmp, own) {
		t.Errorf("/tmp of the second run holds %v: want %v, the program's own file alone", got.Tmp, own)
	}
	// What a program may see: its runner (pid 1, or the runtime's pause process and the
	// runner) and itself. Nothing named after the first run's marker, nothing of its uid.
	var others []string
	for _, p := range got.Procs {
		switch {
		case strings.Contains(p.Cmdline, marker) || strings.Contains(p.Comm, "e2e-left"):
			t.Errorf("the second run sees the first run's process %+v", p)
		case p.PID == got.PID:
		case strings.Contains(p.Cmdline, "coderun-runner"):
		default:
			others = append(others, fmt.Sprintf("%+v", p))
		}
		if p.UID != got.UID {
			t.Errorf("the second run (uid %d) sees process %+v of another uid", got.UID, p)
		}
	}
	if len(others) != 0 {
		t.Errorf("the second run sees processes besides its runner and itself: %v", others)
	}
}

// TestIdleMemberLockedDownLikeColdRun compares a live idle member's pod of the default
// pool with a cold run's pod, field by field: the same pod spec, security contexts,
// DNS, token, host namespaces, runtime class, volumes and limits. The only differences
// allowed are what makes a member a member: stdin held open once, a writable input volume
// (emptyDir, where the runner writes the request) instead of the downward API, the
// runner's arguments, the CPU request (spec.cpuRequest), and the uid (each run has its
// own). The cold run asks for the pool's memory and another CPU limit (so that it goes
// cold); each pod's CPU limit must then be its own run's.
func TestIdleMemberLockedDownLikeColdRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	shape := poolShape(t)
	// Its spec as read while its Job was idle; a pod's spec does not change afterwards.
	member := readyMember(t)

	run := runOnPath(t, "lockdown", execv1alpha1.CodeRunSpec{
		Source: "print('cold')\n",
		Limits: execv1alpha1.Limits{Memory: ptr.To(shape.Memory.DeepCopy()), TimeoutSeconds: ptr.To(*shape.TimeoutSeconds)},
	}, execv1alpha1.PathCold)
	expectEnd(t, run, execv1alpha1.PhaseSucceeded, execv1alpha1.ReasonCompleted, ptr.To[int32](0))
	var cold corev1.Pod
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: runsNamespace, Name: run.Status.PodName}, &cold); err != nil {
		t.Fatalf("the cold run's pod %q: %v", run.Status.PodName, err)
	}
	t.Logf("comparing idle member pod %s (Job %s) with cold run pod %s", member.Name, jobOf(&member), cold.Name)

	m, c := member.Spec.DeepCopy(), cold.Spec.DeepCopy()
	if len(m.Containers) != 1 || len(c.Containers) != 1 || len(m.InitContainers)+len(c.InitContainers)+len(m.EphemeralContainers)+len(c.EphemeralContainers) != 0 {
		t.Fatalf("member pod has %d containers, cold pod %d: want exactly one each and no others", len(m.Containers), len(c.Containers))
	}
	mc, cc := &m.Containers[0], &c.Containers[0]

	// What must hold of both, beyond being equal.
	for _, p := range []*corev1.PodSpec{m, c} {
		expectLockedDown(t, p, shape)
	}

	// The allowed differences, each checked, then cleared.
	if !mc.Stdin || !mc.StdinOnce || mc.TTY || cc.Stdin || cc.StdinOnce || cc.TTY {
		t.Errorf("stdin/stdinOnce/tty: member %t/%t/%t, cold %t/%t/%t; want true/true/false and false/false/false",
			mc.Stdin, mc.StdinOnce, mc.TTY, cc.Stdin, cc.StdinOnce, cc.TTY)
	}
	mc.Stdin, mc.StdinOnce = false, false
	if !slices.Contains(mc.Args, "--request=stdin") || slices.Contains(cc.Args, "--request=stdin") {
		t.Errorf("args: member %v, cold %v; want --request=stdin on the member only", mc.Args, cc.Args)
	}
	expectSameFlags(t, mc.Args, cc.Args, "--python", "--workdir", "--output-limit", "--max-processes", "--max-file-size", "--report", "--memory-limit")
	mc.Args, cc.Args = nil, nil
	for _, v := range []struct {
		pod  *corev1.PodSpec
		name string
		want func(corev1.VolumeSource) bool
	}{
		{m, "member", func(s corev1.VolumeSource) bool {
			return s.EmptyDir != nil && s.EmptyDir.Medium == corev1.StorageMediumMemory && s.EmptyDir.SizeLimit != nil
		}},
		{c, "cold", func(s corev1.VolumeSource) bool { return s.DownwardAPI != nil }},
	} {
		i := slices.IndexFunc(v.pod.Volumes, func(vol corev1.Volume) bool { return vol.Name == "input" })
		if i < 0 || !v.want(v.pod.Volumes[i].VolumeSource) {
			t.Errorf("%s pod: input volume %+v is not what its path needs", v.name, v.pod.Volumes)
			continue
		}
		v.pod.Volumes[i].VolumeSource = corev1.VolumeSource{}
	}
	for i := range mc.VolumeMounts {
		if mc.VolumeMounts[i].Name == "input" {
			mc.VolumeMounts[i].ReadOnly = true // the runner writes the request there
		}
	}
	mReq, cReq := mc.Resources.Requests.Cpu(), cc.Resources.Requests.Cpu()
	if mReq.Cmp(*shape.CPU) > 0 || cReq.Cmp(*run.Status.Limits.CPU) != 0 {
		t.Errorf("CPU requests: member %s (want at most %s), cold %s (want %s)", mReq, shape.CPU, cReq, run.Status.Limits.CPU)
	}
	mLim, cLim := mc.Resources.Limits.Cpu(), cc.Resources.Limits.Cpu()
	if mLim.Cmp(*shape.CPU) != 0 || cLim.Cmp(*run.Status.Limits.CPU) != 0 {
		t.Errorf("CPU limits: member %s (want the pool's %s), cold %s (want the run's %s)", mLim, shape.CPU, cLim, run.Status.Limits.CPU)
	}
	delete(mc.Resources.Requests, corev1.ResourceCPU)
	delete(cc.Resources.Requests, corev1.ResourceCPU)
	delete(mc.Resources.Limits, corev1.ResourceCPU)
	delete(cc.Resources.Limits, corev1.ResourceCPU)
	// Each run and member has a uid of its own, in the operator's range.
	lo, hi := runUIDs(t)
	for _, p := range []*corev1.PodSpec{m, c} {
		sc := p.SecurityContext
		if sc == nil || sc.RunAsUser == nil || sc.RunAsGroup == nil || *sc.RunAsUser != *sc.RunAsGroup ||
			*sc.RunAsUser < lo || *sc.RunAsUser >= hi {
			t.Errorf("pod security context %+v: want runAsUser = runAsGroup in the operator's run uids", sc)
			continue
		}
		sc.RunAsUser, sc.RunAsGroup = nil, nil
	}
	// Where the pod landed is not its policy.
	for _, p := range []*corev1.PodSpec{m, c} {
		p.NodeName = ""
	}

	if diff := cmp.Diff(c, m); diff != "" {
		t.Errorf("an idle member's pod differs from a cold run's pod beyond the allowed differences (-cold +member):\n%s", diff)
	}
	if diff := cmp.Diff(cold.Labels[execv1alpha1.LabelComponent], member.Labels[execv1alpha1.LabelComponent]); diff != "" {
		t.Errorf("the member's pod is not labeled a run pod (the NetworkPolicy selects run pods by it): %s", diff)
	}
	if _, ok := member.Annotations[execv1alpha1.AnnotationSource]; ok {
		t.Errorf("an idle member carries a program annotation")
	}
}

// expectLockedDown checks the fields of a run pod that keep a program in: the same values
// the operator's builder sets, read back from a live pod.
func expectLockedDown(t *testing.T, p *corev1.PodSpec, shape execv1alpha1.Limits) {
	t.Helper()
	c := p.Containers[0]
	sc, psc := c.SecurityContext, p.SecurityContext
	switch {
	case p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken:
		t.Errorf("automountServiceAccountToken %v, want false", ptrString(p.AutomountServiceAccountToken))
	case p.EnableServiceLinks == nil || *p.EnableServiceLinks:
		t.Errorf("enableServiceLinks %v, want false", ptrString(p.EnableServiceLinks))
	case p.DNSPolicy != corev1.DNSNone || p.DNSConfig == nil || !slices.Equal(p.DNSConfig.Nameservers, []string{"127.0.0.1"}):
		t.Errorf("dnsPolicy %s, dnsConfig %+v: want None with only 127.0.0.1", p.DNSPolicy, p.DNSConfig)
	case p.HostNetwork || p.HostPID || p.HostIPC || (p.ShareProcessNamespace != nil && *p.ShareProcessNamespace):
		t.Errorf("host namespaces: network %t, pid %t, ipc %t, shared process namespace %v", p.HostNetwork, p.HostPID, p.HostIPC, ptrString(p.ShareProcessNamespace))
	case !equalPtr(p.HostUsers, wantHostUsers(t)):
		t.Errorf("hostUsers %v, want %v (the operator's configuration: %v)", ptrString(p.HostUsers), ptrString(wantHostUsers(t)), ptrString(operatorConfig.HostUsers))
	case operatorConfig.RuntimeClassName != "" && (p.RuntimeClassName == nil || *p.RuntimeClassName != operatorConfig.RuntimeClassName):
		t.Errorf("runtimeClassName %v, want %s", ptrString(p.RuntimeClassName), operatorConfig.RuntimeClassName)
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("pod security context %+v: want runAsNonRoot and the RuntimeDefault seccomp profile", psc)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged == nil || *sc.Privileged || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container security context %+v: want a read-only root, no escalation, no privileges, every capability dropped and RuntimeDefault seccomp", sc)
	case c.TTY:
		t.Error("the container has a TTY")
	}
	if mem := c.Resources.Limits.Memory(); mem.Value() <= shape.Memory.Value() {
		t.Errorf("memory limit %s, want above the program's %s (with scratch and the runner)", mem, shape.Memory)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]; !ok {
		t.Error("no ephemeral-storage limit")
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// expectSameFlags checks that the runner flags names have the same values in both argument lists.
func expectSameFlags(t *testing.T, member, cold []string, names ...string) {
	t.Helper()
	flag := func(args []string, name string) string {
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
		return "(unset)"
	}
	for _, name := range names {
		if m, c := flag(member, name), flag(cold, name); m != c {
			t.Errorf("runner flag %s: member %s, cold %s", name, m, c)
		}
	}
}

// TestScalePool scales the default pool with `kubectl scale` (its scale subresource) to 3
// members, waits for status.replicas and ready to reach 3 with a member pod each, and
// scales it back when the test ends. Not parallel: the other tests count on the pool's
// usual size.
func TestScalePool(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pool := getPool(ctx, t)
	if pool.Spec.Replicas == nil {
		t.Fatalf("pool %s has no spec.replicas", defaultPool)
	}
	was := *pool.Spec.Replicas
	want := int32(3)
	if was == want {
		want = was + 1
	}
	scale := func(ctx context.Context, n int32) error {
		out, err := kubectl(ctx, "", "-n", runsNamespace, "scale", "coderunpool/"+defaultPool, "--replicas="+strconv.Itoa(int(n)))
		if err == nil && !strings.Contains(out, "scaled") {
			err = fmt.Errorf("kubectl scale said %q", out)
		}
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := scale(ctx, was); err != nil {
			t.Errorf("scaling pool %s back to %d: %v", defaultPool, was, err)
			return
		}
		if err := waitForPoolSize(ctx, t, was); err != nil {
			t.Errorf("after scaling back to %d: %v", was, err)
		}
	})
	start := time.Now()
	if err := scale(ctx, want); err != nil {
		t.Fatalf("kubectl scale coderunpool/%s --replicas=%d: %v", defaultPool, want, err)
	}
	out, err := kubectl(ctx, "", "-n", runsNamespace, "get", "coderunpool", defaultPool, "-o", "jsonpath={.spec.replicas}")
	if err != nil || strings.TrimSpace(out) != strconv.Itoa(int(want)) {
		t.Fatalf("spec.replicas after kubectl scale: %q (%v), want %d", out, err, want)
	}
	if err := waitForPoolSize(ctx, t, want); err != nil {
		t.Fatal(err)
	}
	t.Logf("pool %s went from %d to %d ready members in %s", defaultPool, was, want, time.Since(start).Round(time.Millisecond))

	// The scale subresource shows what an HPA reads: the replicas and the pods' selector.
	out, err = kubectl(ctx, "", "get", "--raw", fmt.Sprintf("/apis/%s/namespaces/%s/coderunpools/%s/scale", execv1alpha1.GroupVersion, runsNamespace, defaultPool))
	if err != nil {
		t.Fatalf("reading the scale subresource: %v", err)
	}
	var sc struct {
		Spec   struct{ Replicas int32 }
		Status struct {
			Replicas int32
			Selector string
		}
	}
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatalf("the scale subresource %s: %v", out, err)
	}
	if sc.Spec.Replicas != want || sc.Status.Selector != execv1alpha1.LabelPool+"="+defaultPool {
		t.Errorf("scale subresource %s: want spec.replicas %d and selector %s=%s", out, want, execv1alpha1.LabelPool, defaultPool)
	}
}

// waitForPoolSize waits until the default pool reports n idle and n ready members and n of
// its member pods are ready (other runs may take members meanwhile: the pool replaces them).
func waitForPoolSize(ctx context.Context, t *testing.T, n int32) error {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		pool := getPool(ctx, t)
		pods, err := readyMembers(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("status.replicas %d, ready %d, claimed %d, observedGeneration %d of %d; %d ready member pods",
			pool.Status.Replicas, pool.Status.Ready, pool.Status.Claimed, pool.Status.ObservedGeneration, pool.Generation, len(pods))
		return pool.Status.ObservedGeneration == pool.Generation && pool.Status.Replicas == n && pool.Status.Ready == n && len(pods) == int(n), nil
	})
	if err != nil {
		return fmt.Errorf("pool %s did not reach %d members (%s): %w", defaultPool, n, last, err)
	}
	return nil
}
