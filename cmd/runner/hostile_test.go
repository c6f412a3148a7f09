package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/coderun-dev/coderun/internal/report"
	"github.com/coderun-dev/coderun/internal/testneed"
)

// Programs that attack the runner they run under, as in a pod: the runner is PID 1 of its
// PID namespace and the program runs as the runner's own uid. Each attack must end with
// the program's own honest result, never with a runner gone and a SystemError.

// pidNamespace is the wrapper that runs the runner as PID 1 of a new PID namespace (and
// mount namespace, with its own /proc), as a container runtime does. It needs root.
func pidNamespace(t *testing.T) []string {
	t.Helper()
	testneed.Root(t, "for a PID namespace")
	if err := exec.Command("unshare", "-p", "-f", "--mount-proc", "true").Run(); err != nil {
		testneed.Skip(t, "cannot make a PID namespace here: %v", err)
	}
	return []string{"unshare", "-p", "-f", "--mount-proc"}
}

// asPodWrapper returns the wrapper that runs the runner as in a pod: PID 1 of a new PID
// namespace, as the sandbox's uid; before it drops root, setup (a shell command, may be
// empty) runs in the new namespaces.
func asPodWrapper(t *testing.T, s *sandbox, setup string) []string {
	t.Helper()
	wrapper := pidNamespace(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		testneed.Skip(t, "no setpriv here")
	}
	if setup != "" {
		wrapper = append(wrapper, "sh", "-ec", setup+`; exec "$@"`, "sh")
	}
	id := strconv.Itoa(s.uid)
	return append(wrapper, "setpriv", "--reuid="+id, "--regid="+id, "--clear-groups")
}

// terminationLog creates the report file as a pod's termination log is: outside the
// program's working directory, and writable by every uid.
func terminationLog(t *testing.T, s *sandbox) string {
	t.Helper()
	path := filepath.Join(s.dir, "termination-log")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return path
}

// asPod runs the runner as in a pod (see asPodWrapper), with no --uid.
func asPod(t *testing.T, s *sandbox, flags ...string) result {
	t.Helper()
	return runRunner(t, asPodWrapper(t, s, ""), s.argsWithoutUID(flags...)...)
}

// signalProgram sends signal %d to the runner in every way a program can: kill(2),
// rt_sigqueueinfo(2) with the code sigqueue(3) uses (SI_QUEUE, which the Go runtime
// would take for a fault of its own), and tgkill(2) to each of the runner's threads.
const signalProgram = `
import ctypes, os, platform, struct, sys, time
SIG = %d
RT_SIGQUEUEINFO, TGKILL = {"x86_64": (129, 234), "aarch64": (138, 131)}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)

def check(ret, what):
    if ret != 0:
        raise OSError(ctypes.get_errno(), what)

print("before", flush=True)
os.kill(1, SIG)
info = ctypes.create_string_buffer(128)
struct.pack_into("iii", info, 0, SIG, 0, -1)  # si_signo, si_errno, si_code = SI_QUEUE
struct.pack_into("II", info, 16, os.getpid(), os.getuid())  # si_pid, si_uid
check(libc.syscall(RT_SIGQUEUEINFO, 1, SIG, info), "rt_sigqueueinfo")
threads = os.listdir("/proc/1/task")
for tid in threads:
    check(libc.syscall(TGKILL, 1, int(tid), SIG), "tgkill")
time.sleep(0.2)
print("after, runner threads signalled:", len(threads) > 1)
sys.exit(3)
`

// TestProgramSignalsRunner sends each of the 64 signals to the runner from the program.
// The run must end with the program's own result: it exits 3 after sending, and all its
// output is kept. SIGKILL and SIGSTOP are dropped by the kernel (the runner is the
// namespace's init); the runner ignores every other signal it does not need.
func TestProgramSignalsRunner(t *testing.T) {
	t.Parallel()
	for sig := 1; sig <= 64; sig++ {
		t.Run(fmt.Sprintf("%d %s", sig, signalName(sig)), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t, fmt.Sprintf(signalProgram, sig))
			path := terminationLog(t, s)
			res := asPod(t, s, "--report", path)
			res.check(t, report.NonZeroExit, 3)
			if want := "before\nafter, runner threads signalled: True\n"; res.report.Output != want {
				t.Errorf("output %q, want %q (stderr %q)", res.report.Output, want, res.report.Stderr)
			}
			expectReportFile(t, path, res)
			s.checkNoProcessLeft()
		})
	}
}

func signalName(sig int) string {
	const glibcRTMin = 34 // 32 and 33 are the C library's own
	if name := syscall.Signal(sig).String(); sig < glibcRTMin {
		return name
	}
	return "SIGRTMIN+" + strconv.Itoa(sig-glibcRTMin)
}

// hinderProgram tries every other way a process of the runner's uid could cripple or
// slow it, then checks that it can still change its own settings. Each attempt prints
// "allowed" or the errno.
const hinderProgram = `
import ctypes, errno, os, platform, resource, signal, struct, time
PRLIMIT64, IOPRIO_SET = {"x86_64": (302, 251), "aarch64": (261, 30)}[platform.machine()]
IOPRIO_WHO_PROCESS, IOPRIO_WHO_USER, IOPRIO_IDLE = 1, 3, 3 << 13
libc = ctypes.CDLL(None, use_errno=True)
threads = [int(tid) for tid in os.listdir("/proc/1/task")]

def raw(nr, *args):
    if libc.syscall(nr, *args) != 0:
        raise OSError(ctypes.get_errno(), "syscall %d" % nr)

def each_thread(f):
    for tid in threads:
        f(tid)

def attempt(name, f):
    try:
        f()
        print(name + ": allowed")
    except OSError as e:
        print(name + ": " + errno.errorcode[e.errno])

zero = struct.pack("QQ", 0, 0)
attempt("runner's limits read", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE))
for name in ("NOFILE", "FSIZE", "NPROC", "AS"):
    attempt("runner's RLIMIT_" + name, lambda: resource.prlimit(1, getattr(resource, "RLIMIT_" + name), (0, 0)))
attempt("runner's RLIMIT_CPU", lambda: resource.prlimit(1, resource.RLIMIT_CPU, (1, 1)))
attempt("runner's threads' RLIMIT_NOFILE", lambda: each_thread(lambda t: resource.prlimit(t, resource.RLIMIT_NOFILE, (0, 0))))
attempt("runner's RLIMIT_NOFILE, pid with high bits", lambda: raw(PRLIMIT64, ctypes.c_long(1 | 1 << 32), resource.RLIMIT_NOFILE, zero, None))
attempt("runner's nice", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))
attempt("runner's threads' nice", lambda: each_thread(lambda t: os.setpriority(os.PRIO_PROCESS, t, 19)))
attempt("runner's process group's nice", lambda: os.setpriority(os.PRIO_PGRP, os.getpgid(1), 19))
attempt("own user's nice", lambda: os.setpriority(os.PRIO_USER, 0, 19))
attempt("runner's scheduler", lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0)))
attempt("runner's threads' scheduler", lambda: each_thread(lambda t: os.sched_setscheduler(t, os.SCHED_IDLE, os.sched_param(0))))
attempt("runner's scheduling parameters", lambda: os.sched_setparam(1, os.sched_param(0)))
attempt("runner's CPUs", lambda: os.sched_setaffinity(1, {min(os.sched_getaffinity(0))}))
attempt("runner's threads' CPUs", lambda: each_thread(lambda t: os.sched_setaffinity(t, {min(os.sched_getaffinity(0))})))
attempt("runner's I/O priority", lambda: raw(IOPRIO_SET, IOPRIO_WHO_PROCESS, 1, IOPRIO_IDLE))
attempt("own user's I/O priority", lambda: raw(IOPRIO_SET, IOPRIO_WHO_USER, 0, IOPRIO_IDLE))
attempt("runner's oom_score_adj", lambda: open("/proc/1/oom_score_adj", "w").write("1000"))
attempt("runner's memory", lambda: open("/proc/1/mem", "rb").close())
attempt("runner's environment", lambda: open("/proc/1/environ", "rb").read())
attempt("runner's fds", lambda: os.listdir("/proc/1/fd"))
attempt("SIGSTOP to the runner", lambda: os.kill(1, signal.SIGSTOP))
attempt("own nice", lambda: os.setpriority(os.PRIO_PROCESS, 0, 5))
attempt("own scheduler", lambda: os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0)))
attempt("own CPUs", lambda: os.sched_setaffinity(0, os.sched_getaffinity(0)))
attempt("own I/O priority", lambda: raw(IOPRIO_SET, IOPRIO_WHO_PROCESS, 0, IOPRIO_IDLE))
attempt("own RLIMIT_NOFILE", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32)))
fds = []
try:
    while True:
        fds.append(os.open("/dev/null", os.O_RDONLY))
except OSError as e:
    print("own fds exhausted:", errno.errorcode[e.errno])
time.sleep(0.2)
print("done")
`

const hinderOutput = `runner's limits read: allowed
runner's RLIMIT_NOFILE: EPERM
runner's RLIMIT_FSIZE: EPERM
runner's RLIMIT_NPROC: EPERM
runner's RLIMIT_AS: EPERM
runner's RLIMIT_CPU: EPERM
runner's threads' RLIMIT_NOFILE: EPERM
runner's RLIMIT_NOFILE, pid with high bits: EPERM
runner's nice: EPERM
runner's threads' nice: EPERM
runner's process group's nice: EPERM
own user's nice: EPERM
runner's scheduler: EPERM
runner's threads' scheduler: EPERM
runner's scheduling parameters: EPERM
runner's CPUs: EPERM
runner's threads' CPUs: EPERM
runner's I/O priority: EPERM
own user's I/O priority: EPERM
runner's oom_score_adj: EACCES
runner's memory: EACCES
runner's environment: EACCES
runner's fds: EACCES
SIGSTOP to the runner: allowed
own nice: allowed
own scheduler: allowed
own CPUs: allowed
own I/O priority: allowed
own RLIMIT_NOFILE: allowed
own fds exhausted: EMFILE
done
`

// TestProgramCannotHinderRunner: the program may not change the runner's limits,
// scheduling or I/O priority (the exec shim's seccomp filter), nor reach its /proc
// entries (it is non-dumpable); SIGSTOP is dropped by the kernel. It may still change
// its own, and exhausting its own descriptors is its own business. The runner then
// reports, to stdout and to the report file, exactly what happened.
func TestProgramCannotHinderRunner(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, hinderProgram)
	path := terminationLog(t, s)
	res := asPod(t, s, "--report", path)
	res.check(t, report.Completed, 0)
	if res.report.Output != hinderOutput {
		t.Errorf("output:\n%s\nwant:\n%s\nstderr: %s", res.report.Output, hinderOutput, res.report.Stderr)
	}
	expectReportFile(t, path, res)
	s.checkNoProcessLeft()
}

// TestProgramSlowsRunner: a program that tries to starve the runner of CPU (by renicing
// it, refused, and by running busy processes) still ends at its time limit with its
// output.
func TestProgramSlowsRunner(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, `
import os
try:
    os.setpriority(os.PRIO_PROCESS, 1, 19)
except PermissionError:
    pass
for _ in range(8):
    if os.fork() == 0:
        break
print("spinning", os.getpid(), flush=True)
while True:
    pass
`)
	res := asPod(t, s, "--timeout", "2s")
	if res.report.Reason != report.TimeLimitExceeded {
		t.Errorf("reason %s, want TimeLimitExceeded: %s", res.report.Reason, res.stdout)
	}
	if n := strings.Count(res.report.Output, "spinning"); n != 9 {
		t.Errorf("%d processes said they were spinning, want 9: %q", n, res.report.Output)
	}
	s.checkNoProcessLeft()
}

// TestProgramFillsTmp fills the program's working directory, a 1 MiB tmpfs as a pod's
// scratch volume is, until ENOSPC: the program gets the error, and the runner (whose
// report goes elsewhere) reports the run.
func TestProgramFillsTmp(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, `
import errno, os
tmp = os.environ["TMPDIR"]
try:
    with open(os.path.join(tmp, "fill"), "wb") as f:
        while True:
            f.write(b"x" * 65536)
            f.flush()
except OSError as e:
    print("full:", errno.errorcode[e.errno])
try:
    open(os.path.join(tmp, "more"), "w").write("y" * 100000)
except OSError as e:
    print("still full:", errno.errorcode[e.errno])
`)
	path := terminationLog(t, s)
	mount := fmt.Sprintf("mount -t tmpfs -o size=1m,mode=0777 tmpfs %s", s.workdir)
	res := runRunner(t, asPodWrapper(t, s, mount), s.argsWithoutUID("--report", path)...)
	res.check(t, report.Completed, 0)
	if want := "full: ENOSPC\nstill full: ENOSPC\n"; res.report.Output != want {
		t.Errorf("output %q, want %q (stderr %q)", res.report.Output, want, res.report.Stderr)
	}
	expectReportFile(t, path, res)
	s.checkNoProcessLeft()
}

// TestProgramStartsWithDefaultSignals: the runner ignores most signals, and the Go runtime
// of its exec shim handles them; the program must still start as a fresh process would,
// with every signal at its default and none blocked (python itself then ignores SIGPIPE
// and SIGXFSZ and handles SIGINT).
func TestProgramStartsWithDefaultSignals(t *testing.T) {
	t.Parallel()
	s := newSandbox(t, `
import signal
python_own = {signal.SIGPIPE, signal.SIGXFSZ}
print("ignored:", [s for s in range(1, 65) if s not in (9, 19) and s not in python_own and signal.getsignal(s) == signal.SIG_IGN])
print("SIGINT raises KeyboardInterrupt:", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
print("blocked:", sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
`)
	want := "ignored: []\nSIGINT raises KeyboardInterrupt: True\nblocked: []\n"
	for _, tt := range []struct {
		name string
		run  func() result
	}{
		{"as in a pod", func() result { return asPod(t, s) }},
		{"as its own uid", func() result { return runRunner(t, nil, s.args()...) }},
	} {
		res := tt.run()
		res.check(t, report.Completed, 0)
		if res.report.Output != want {
			t.Errorf("%s: output %q, want %q", tt.name, res.report.Output, want)
		}
	}
}
