//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	execv1alpha1 "github.com/coderun-dev/coderun/api/v1alpha1"
)

// attackRunnerSource attacks the runner, PID 1 of the run's container and of the
// program's own uid, in every way the runner's suite covers one by one (cmd/runner's
// hostile tests): the signals that used to end it, sent with kill and with sigqueue's
// code; SIGKILL and SIGSTOP; its limits and priority; its /proc entries; and a full /tmp.
// Each attempt prints what happened; the program then exits 3.
const attackRunnerSource = `import ctypes, errno, json, os, platform, resource, signal, struct, sys, time
RT_SIGQUEUEINFO = {"x86_64": 129, "aarch64": 138}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)

def sigqueue(sig):
    info = ctypes.create_string_buffer(128)
    struct.pack_into("iii", info, 0, sig, 0, -1)
    struct.pack_into("II", info, 16, os.getpid(), os.getuid())
    if libc.syscall(RT_SIGQUEUEINFO, 1, sig, info) != 0:
        raise OSError(ctypes.get_errno(), "rt_sigqueueinfo")

def fill(dir):
    # In files of 4 MiB: one file would meet the file size limit before /tmp is full.
    for i in range(1 << 20):
        with open(os.path.join(dir, "fill%d" % i), "wb") as f:
            for _ in range(4):
                f.write(b"x" * (1 << 20))
                f.flush()

def attempt(name, f):
    try:
        f()
        print(name + ": allowed", flush=True)
    except OSError as e:
        print(name + ": " + errno.errorcode[e.errno], flush=True)

runner_uid = [int(l.split()[1]) for l in open("/proc/1/status") if l.startswith("Uid:")][0]
print("runner is pid 1 of my uid:", os.getppid() == 1 and runner_uid == os.getuid())
signals = json.load(sys.stdin)
for sig in signals:
    os.kill(1, sig)
    sigqueue(sig)
time.sleep(0.3)
print("signalled the runner with %d signals, twice each" % len(signals))
attempt("runner's RLIMIT_NOFILE", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (0, 0)))
attempt("runner's nice", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))
attempt("runner's oom_score_adj", lambda: open("/proc/1/oom_score_adj", "w").write("1000"))
attempt("fill /tmp", lambda: fill("/tmp"))
raise SystemExit(3)
`

const attackRunnerOutput = `runner is pid 1 of my uid: True
signalled the runner with %d signals, twice each
runner's RLIMIT_NOFILE: EPERM
runner's nice: EPERM
runner's oom_score_adj: EACCES
fill /tmp: ENOSPC
`

// TestProgramAttacksRunner: whatever the program does to the runner, the run ends with
// the program's own result and output, in a cold run's pod and in a warm member alike.
//
// Under gVisor, SIGKILL and SIGSTOP are left out, and TestGVisorDeliversSIGKILLToInit
// shows why.
func TestProgramAttacksRunner(t *testing.T) {
	t.Parallel()
	gvisor := underGVisor(t)
	var signals []int
	for sig := 1; sig <= 64; sig++ {
		if gvisor && (sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP)) {
			continue
		}
		signals = append(signals, sig)
	}
	stdin, err := json.Marshal(signals)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(attackRunnerOutput, len(signals))
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "attack-runner", execv1alpha1.CodeRunSpec{
				Source: attackRunnerSource,
				Stdin:  string(stdin),
				Limits: timeout(limitTimeout(t, path)),
			}, path)
			expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonNonZeroExit, ptr.To[int32](3))
			if got := run.Status.Result.Output; got != want {
				t.Errorf("output:\n%s\nwant:\n%s", got, want)
			}
			expectNextRunWorks(t)
		})
	}
}

// underGVisor reports whether run pods run under gVisor (runsc).
func underGVisor(t *testing.T) bool {
	t.Helper()
	return runtimeHandler(t) == "runsc"
}

// TestGVisorDeliversSIGKILLToInit pins a known difference of gVisor (runsc): its sentry
// does not implement the rule that a PID namespace's init receives from inside only the
// signals it handles ("We don't currently do this for child namespaces, though we should",
// pkg/sentry/kernel/task_signals.go). So under gVisor a program that sends SIGKILL to PID 1,
// its runner, ends its own run as a SystemError, where runc's kernel drops the signal. When
// gVisor fixes it, this test fails: then SIGKILL and SIGSTOP join TestProgramAttacksRunner.
func TestGVisorDeliversSIGKILLToInit(t *testing.T) {
	t.Parallel()
	if !underGVisor(t) {
		t.Skip("run pods do not run under gVisor here")
	}
	run := runProgram(t, "gvisor-sigkill", execv1alpha1.CodeRunSpec{
		Source: "import os\nprint('killing my runner', flush=True)\nos.kill(1, 9)\n",
	})
	if res := run.Status.Result; run.Status.Phase != execv1alpha1.PhaseFailed || res.Reason != execv1alpha1.ReasonSystemError {
		t.Errorf("ended %s/%s (%s): gVisor no longer delivers SIGKILL to init from inside; add SIGKILL and SIGSTOP back to TestProgramAttacksRunner under gVisor", run.Status.Phase, res.Reason, res.Message)
	}
	expectNextRunWorks(t)
}

// TestMemoryHogInManyProcesses: sixteen processes that allocate together, and fill /tmp
// (which counts toward the pod's memory) first, are stopped with MemoryLimitExceeded: the
// kernel's OOM killer, if it strikes first, picks a process of the program, never the
// runner (whose report would be lost, a SystemError).
func TestMemoryHogInManyProcesses(t *testing.T) {
	t.Parallel()
	for _, path := range bothPaths {
		t.Run(pathName(path), func(t *testing.T) {
			t.Parallel()
			run := runOnPath(t, "memory-hog-processes", execv1alpha1.CodeRunSpec{
				Source: `import errno, os, time
try:
    for i in range(1 << 20):
        with open("/tmp/fill%d" % i, "wb") as f:
            for _ in range(4):
                f.write(b"x" * (1 << 20))
                f.flush()
except OSError as e:
    print("/tmp full:", errno.errorcode[e.errno], flush=True)
for _ in range(4):
    os.fork()
chunks = []
for i in range(1, 65):
    chunks.append(b'x' * (1 << 20))
    time.sleep(0.001)
print("survived")
`,
				Limits: execv1alpha1.Limits{Memory: ptr.To(resource.MustParse("64Mi")), TimeoutSeconds: ptr.To(limitTimeout(t, path))},
			}, path)
			expectEnd(t, run, execv1alpha1.PhaseFailed, execv1alpha1.ReasonMemoryLimitExceeded, nil)
			res := run.Status.Result
			if strings.Count(res.Output, "survived") == 16 {
				t.Errorf("output %q: every process survived", res.Output)
			}
			// Under gVisor the pod's cgroup limit may kill the whole sandbox, runner included,
			// before the runner stops the program: the reason stays right (the operator reads
			// the OOM kill), the output is lost.
			if !strings.HasPrefix(res.Output, "/tmp full: ENOSPC\n") && !underGVisor(t) {
				t.Errorf("output %q: want /tmp full (ENOSPC) first", res.Output)
			}
			expectHealthyNodes(t)
			expectNextRunWorks(t)
		})
	}
}
